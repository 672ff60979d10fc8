/**
 * Starts real infergate processes for integration tests, through the same CLI a user runs, and ties
 * their lifetime to the test context so nothing outlives a test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../../shared/cli/bin.js', import.meta.url));
export const DEMO_MODELS = fileURLToPath(new URL('../../models/', import.meta.url));

export interface RunningProcess {
  child: ChildProcess;
  /** Base URL the process announced, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Every log line the process wrote to stdout, parsed (non-JSON lines kept as { raw }). */
  logs: Array<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code or signal. */
  stop(graceMs?: number): Promise<number | string | null>;
}

export interface StartOptions {
  args?: string[];
  env?: Record<string, string>;
  /** How long to wait for the "listening" log line. */
  startTimeoutMs?: number;
}

/** Spawns `infergate <command> ...args` and waits for the log line that carries its URL. */
export async function startProcess(t: TestContext | undefined, command: string, options: StartOptions = {}): Promise<RunningProcess> {
  const child = spawn(process.execPath, [CLI, command, ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 64_000) stderr = stderr.slice(-32_000);
  });
  const exited = once(child, 'exit');
  const stop = async (graceMs = 5000): Promise<number | string | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const [code, signal] = (await exited) as [number | null, string | null];
    clearTimeout(timer);
    return code ?? signal;
  };
  t?.after(() => stop());

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not announce a URL in time\n${stderr}`)), options.startTimeoutMs ?? 30_000);
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
      reject(new Error(`${command} exited early (code ${code}, signal ${signal})\n${stderr}`));
    });
  });
  return { child, url, logs, stop };
}

/** Starts a worker on a free port serving `models` and waits until it reports ready. */
export async function startWorker(t: TestContext | undefined, models: string, options: StartOptions = {}): Promise<RunningProcess> {
  const proc = await startProcess(t, 'worker', {
    ...options,
    args: ['--models', models, '--port', '0', '--host', '127.0.0.1', ...(options.args ?? [])],
  });
  await waitFor(async () => (await fetch(`${proc.url}/v2/health/ready`)).status === 200, 60_000);
  return proc;
}

/** Polls `check` until it returns true, or throws after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet: the process may still be starting
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
