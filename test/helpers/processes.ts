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
export async function startWorker(t: TestContext | undefined, models: string, options: StartOptions & { readyTimeoutMs?: number } = {}): Promise<RunningProcess> {
  const proc = await startProcess(t, 'worker', {
    ...options,
    args: ['--models', models, '--port', '0', '--host', '127.0.0.1', ...(options.args ?? [])],
  });
  await waitFor(async () => (await fetch(`${proc.url}/v2/health/ready`)).status === 200, options.readyTimeoutMs ?? 60_000);
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

export interface RunningGateway extends RunningProcess {
  adminUrl: string;
  adminToken: string;
  /** fetch on the admin API with the admin token. */
  admin(path: string, init?: RequestInit): Promise<Response>;
}

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789';

/**
 * Starts `infergate gateway` on free ports in front of `workers` and waits until every worker is
 * admitted. `args` may add --config, --strategy, etc.
 */
export async function startGateway(t: TestContext | undefined, workers: string[], options: StartOptions & { waitForWorkers?: boolean; requireAuth?: boolean } = {}): Promise<RunningGateway> {
  const proc = await startProcess(t, 'gateway', {
    ...options,
    args: [
      '--port', '0', '--host', '127.0.0.1', '--admin-port', '0',
      // Tests of balancing and failures send no credentials; authentication tests opt out of this.
      ...(options.requireAuth ? [] : ['--allow-anonymous']),
      ...(workers.length > 0 ? ['--workers', workers.join(',')] : []),
      ...(options.args ?? []),
    ],
    env: { INFERGATE_ADMIN_TOKEN: TEST_ADMIN_TOKEN, ...options.env },
  });
  const listening = proc.logs.find((l) => typeof l.admin === 'string')!;
  const adminUrl = listening.admin as string;
  const admin = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(adminUrl + path, { ...init, headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) } });
  if (options.waitForWorkers ?? true) {
    await waitFor(async () => {
      const body = (await (await admin('/admin/workers')).json()) as { workers: Array<{ ready: boolean }> };
      return body.workers.length === workers.length && body.workers.every((w) => w.ready);
    }, 30_000);
  }
  return { ...proc, adminUrl, adminToken: TEST_ADMIN_TOKEN, admin };
}
