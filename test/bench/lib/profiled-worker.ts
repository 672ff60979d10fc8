/**
 * Starts a worker with extra node flags (e.g. --cpu-prof, which NODE_OPTIONS refuses), the way
 * test/helpers/processes.ts startWorker does otherwise: same CLI, same readiness wait.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { CLI, REPO_ROOT, waitFor, type RunningProcess } from '../../helpers/processes.ts';

/** A measured window of a profiled worker, relative to its spawn; written to <prof dir>/windows.json. */
export interface ProfileWindow {
  label: string;
  pid: number;
  fromMs: number;
  toMs: number;
}

export interface ProfiledProcess extends RunningProcess {
  /** performance.now() of this process when the worker was spawned. */
  spawnedAt: number;
}

export async function startWorkerWithNodeArgs(models: string, nodeArgs: readonly string[], timeoutMs = 60_000): Promise<ProfiledProcess> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'worker', '--models', models, '--port', '0', '--host', '127.0.0.1'], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const logs: Array<Record<string, unknown>> = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('worker did not announce a URL in time')), timeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        entry = { raw: line };
      }
      logs.push(entry);
      if (typeof entry.url === 'string' && /listening/.test(String(entry.msg))) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`worker exited early (code ${code}, signal ${signal})`));
    });
  });
  await waitFor(async () => (await fetch(`${url}/v2/health/ready`)).status === 200, timeoutMs);
  const stop = async (graceMs = 10_000): Promise<number | string | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const [code, signal] = (await exited) as [number | null, string | null];
    clearTimeout(timer);
    return code ?? signal;
  };
  return { child, url, logs, stop, spawnedAt };
}
