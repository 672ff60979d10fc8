/**
 * Throw-away model repositories for benchmarks: the same model.onnx files (symlinked, not copied)
 * under a config.json of the benchmark's choosing, so one run can compare worker configurations.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempRepository {
  dir: string;
  remove(): Promise<void>;
}

/**
 * Creates <tmp>/<name>/1/model.onnx -> <source>/<name>/<version>/model.onnx and writes `config`
 * as <tmp>/<name>/config.json, for each model name.
 */
export async function createRepository(
  source: string,
  models: ReadonlyArray<{ name: string; version?: string; config: Record<string, unknown> }>,
  label = 'repo',
): Promise<TempRepository> {
  const dir = await mkdtemp(join(tmpdir(), `infergate-bench-${label}-`));
  for (const model of models) {
    const versionDir = join(dir, model.name, '1');
    await mkdir(versionDir, { recursive: true });
    await symlink(join(source, model.name, model.version ?? '1', 'model.onnx'), join(versionDir, 'model.onnx'));
    await writeFile(join(dir, model.name, 'config.json'), `${JSON.stringify(model.config, null, 2)}\n`);
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
