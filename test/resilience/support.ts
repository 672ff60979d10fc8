/**
 * The three checks every resilience case makes, as helpers: (a) what the client saw — a catalogued
 * JSON error whose status matches the catalogue ({@link expectCatalogued}), within a bounded time;
 * (b) that no process crashed or hung ({@link assertAlive}, {@link assertNoWarnings}); (c) that the
 * metric that should move moved (test/helpers/metrics.ts `scrapeMetrics`, {@link waitForIdle},
 * {@link heapAfterGc}). Not a test file.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERROR_CATALOGUE, type ErrorCode } from '../../shared/errors.ts';
import type { TestContext } from 'node:test';
import { startLoad, type RunningLoad } from '../helpers/load.ts';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { waitFor, type RunningProcess } from '../helpers/processes.ts';

/**
 * How long any single request may take in these tests before it counts as hung: far above every
 * deadline configured here (≤ 2 s), so only a request nobody answers trips it, not a slow machine.
 */
export const HANG_MS = 15_000;

/** What a client saw: the status, the error code when the body is a JSON error, and how long it took. */
export interface Seen {
  status: number;
  code: string | undefined;
  body: string;
  headers: Headers;
  ms: number;
}

/** Sends one request (with the {@link HANG_MS} limit) and records what came back. */
export async function see(url: string, init: RequestInit = {}): Promise<Seen> {
  const started = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(HANG_MS), ...init });
  const body = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(body) as { code?: unknown }).code as string | undefined;
  } catch {
    code = undefined;
  }
  return { status: res.status, code, body, headers: res.headers, ms: performance.now() - started };
}

export interface CataloguedOptions {
  /** Codes this case allows; default: any catalogued code. */
  codes?: readonly ErrorCode[];
}

/**
 * Asserts that a response is a JSON error of the catalogue — `{"error": string, "code", "request_id"}`,
 * `code` in shared/errors.ts with exactly this status, never ERR_INTERNAL — and returns its code.
 */
export function expectCatalogued(status: number, body: string, options: CataloguedOptions = {}): ErrorCode {
  let parsed: { error?: unknown; code?: unknown; request_id?: unknown };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    assert.fail(`status ${status} with a body that is not JSON: ${body.slice(0, 200)}`);
  }
  const code = parsed.code as ErrorCode;
  assert.equal(typeof parsed.error, 'string', `the error message is a string: ${body.slice(0, 200)}`);
  assert.ok(Object.hasOwn(ERROR_CATALOGUE, code), `code ${String(parsed.code)} is in the catalogue: ${body.slice(0, 200)}`);
  assert.equal(status, ERROR_CATALOGUE[code].status, `${code} comes with status ${ERROR_CATALOGUE[code].status}, not ${status}`);
  assert.notEqual(code, 'ERR_INTERNAL', `never an internal error: ${body.slice(0, 200)}`);
  if (options.codes !== undefined) assert.ok(options.codes.includes(code), `${code} is one of ${options.codes.join(', ')}`);
  assert.equal(typeof parsed.request_id, 'string', `the error names its request: ${body.slice(0, 200)}`);
  return code;
}

/**
 * No crash, no hang: each process is still running (no exit code, no signal) and answers
 * `/v2/health/live` with 200 within {@link HANG_MS}.
 */
export async function assertAlive(...processes: RunningProcess[]): Promise<void> {
  for (const proc of processes) {
    assert.equal(proc.child.exitCode, null, `${proc.url} exited with code ${proc.child.exitCode}`);
    assert.equal(proc.child.signalCode, null, `${proc.url} was killed by ${proc.child.signalCode}`);
    const res = await fetch(`${proc.url}/v2/health/live`, { signal: AbortSignal.timeout(HANG_MS) });
    assert.equal(res.status, 200, `${proc.url} is live`);
    await res.body?.cancel();
  }
}

/** Everything the process writes to stderr from now on (its logs go to stdout). */
export function captureStderr(proc: RunningProcess): () => string {
  let text = '';
  proc.child.stderr!.on('data', (chunk: Buffer | string) => {
    text += chunk.toString();
    if (text.length > 200_000) text = text.slice(-100_000);
  });
  return () => text;
}

/** Node prints a warning for a listener leak (MaxListenersExceededWarning) or an unhandled rejection. */
export function assertNoWarnings(stderr: string, what: string): void {
  assert.doesNotMatch(stderr, /MaxListenersExceededWarning|UnhandledPromiseRejection|Warning:/, `${what} printed a warning:\n${stderr.slice(-2000)}`);
}

/** Waits until the gateway's in-flight gauge (every worker) is back to 0: every lease was released. */
export async function waitForIdle(gatewayUrl: string, timeoutMs = 5000): Promise<void> {
  await waitFor(async () => (await scrapeMetrics(gatewayUrl)).sum('infergate_gateway_inflight_requests') === 0, timeoutMs);
}

const GC_PRELOAD = fileURLToPath(new URL('./fixtures/gc-on-signal.mjs', import.meta.url));

/** Environment for a process whose heap {@link heapAfterGc} will measure. */
export function gcPreloadEnv(): Record<string, string> {
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --expose-gc --import ${GC_PRELOAD}`.trim() };
}

/**
 * The heap in use right after a full collection, read from the process's own `/metrics`
 * (`<prefix>nodejs_heap_size_used_bytes`). The process must run with {@link gcPreloadEnv}.
 */
export async function heapAfterGc(proc: RunningProcess, prefix: string): Promise<number> {
  proc.child.kill('SIGUSR2');
  await sleep(300); // the collection runs on the process's next turn; a full one takes tens of ms
  return (await scrapeMetrics(proc.url)).sum(`${prefix}nodejs_heap_size_used_bytes`);
}

/**
 * `startLoad`, stopped when the test `t` ends, however it ends: a failed assertion must not leave
 * loops sending to processes that are being torn down (they would spin, and the file never exit).
 */
export function loadFor(t: TestContext, send: () => Promise<Response>, concurrency: number): RunningLoad {
  const load = startLoad(send, concurrency);
  t.after(() => load.stop());
  return load;
}

/** Counts of a list of statuses ("200: 5, 503: 2"), for diagnostics. */
export function tally(statuses: Record<string, number>): string {
  return Object.entries(statuses).map(([status, n]) => `${status}: ${n}`).join(', ');
}
