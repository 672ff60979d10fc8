/**
 * Builds the demo models and writes them in repository layout: <outDir>/<name>/config.json and
 * <outDir>/<name>/1/model.onnx. build-all.ts runs it on models/; the determinism test runs it on
 * a temporary directory and compares bytes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseModelConfig } from '../../worker/repository/model-config.ts';
import { buildCifar10 } from './cifar10.ts';
import type { DemoModel } from './demo-model.ts';
import { buildHousePrice } from './house-price.ts';
import { buildIris } from './iris.ts';
import { buildMnist } from './mnist.ts';
import { encodeModel } from './onnx-writer.ts';

export type Log = (line: string) => void;

export const DEMO_MODEL_BUILDERS: Record<string, (log: Log) => DemoModel> = {
  iris: buildIris,
  mnist: buildMnist,
  'house-price': buildHousePrice,
  cifar10: buildCifar10,
};

export interface WrittenModel {
  model: DemoModel;
  modelPath: string;
  bytes: number;
  buildSeconds: number;
}

export interface WriteOptions {
  /** Default: every model in DEMO_MODEL_BUILDERS. */
  only?: string[];
  /** Where model fixtures (DemoModel.fixtures) go; absent = not written. */
  fixturesRoot?: string;
  log?: Log;
}

export async function writeDemoModels(outDir: string, options: WriteOptions = {}): Promise<WrittenModel[]> {
  const log = options.log ?? (() => {});
  const written: WrittenModel[] = [];
  for (const name of options.only ?? Object.keys(DEMO_MODEL_BUILDERS)) {
    const build = DEMO_MODEL_BUILDERS[name];
    if (!build) throw new Error(`unknown demo model '${name}'`);
    const started = performance.now();
    const model = build(log);
    const bytes = encodeModel(model.graph);
    const buildSeconds = (performance.now() - started) / 1000;

    const configPath = join(outDir, name, 'config.json');
    // Fail here, not when a worker boots, if the config drifts from the worker's schema.
    parseModelConfig(model.config, configPath);
    const modelPath = join(outDir, name, '1', 'model.onnx');
    await mkdir(dirname(modelPath), { recursive: true });
    await writeFile(modelPath, bytes);
    await writeFile(configPath, formatJson(model.config));
    for (const [path, content] of Object.entries(options.fixturesRoot ? (model.fixtures ?? {}) : {})) {
      const target = join(options.fixturesRoot as string, path);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, formatJson(content));
    }
    log(`${name}: built in ${buildSeconds.toFixed(1)} s, ${bytes.length} bytes`);
    written.push({ model, modelPath, bytes: bytes.length, buildSeconds });
  }
  return written;
}

/** Two-space JSON, but an array of plain values stays on one line (labels, batch sizes, pixels). */
function formatJson(value: unknown): string {
  const text = JSON.stringify(value, null, 2).replace(/\[\s+([^[\]{}]*?)\s+\]/g, (_, items: string) => `[${items.split(/,\s+/).join(', ')}]`);
  // The regex only touches whitespace, but a string holding "[ " could fool it: prove the round trip.
  if (!isDeepStrictEqual(JSON.parse(text), value)) throw new Error('formatJson changed the value');
  return `${text}\n`;
}
