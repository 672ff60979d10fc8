/**
 * Shared fixtures for the gateway integration tests: a one-model repository (so workers start in
 * well under a second), config files in a temp dir, and small request helpers. Not a test file.
 */
import { cp, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { stringify as toYaml } from 'yaml';
import { DEMO_MODELS, startGateway, waitFor, type RunningGateway, type StartOptions } from '../../helpers/processes.ts';

/** A temp dir removed when the test ends. */
export async function tempDir(t: TestContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `infergate-${prefix}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A model repository holding only the demo `iris` model: the cheapest real model to serve, so a
 * worker starts in well under a second. Dynamic batching is switched off: its 1 ms queue delay is
 * a third of a sequential request's round trip, and these tests are about the gateway.
 * `alsoServe` adds other demo models (a worker whose last model is unloaded is not ready).
 */
export async function irisRepository(t: TestContext, alsoServe: string[] = []): Promise<string> {
  const dir = await tempDir(t, 'repo');
  for (const model of ['iris', ...alsoServe]) await cp(join(DEMO_MODELS, model), join(dir, model), { recursive: true });
  const configPath = join(dir, 'iris', 'config.json');
  const { dynamicBatching: _batching, ...config } = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(configPath, JSON.stringify(config));
  return dir;
}

/**
 * Writes a gateway config file (YAML unless the name ends in .json) and returns its path. Written
 * to a temp name and renamed, so a watching gateway never reads a half-written file.
 */
export async function writeConfig(path: string, config: object): Promise<string> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, path.endsWith('.json') ? JSON.stringify(config, null, 2) : toYaml(config));
  await rename(temp, path);
  return path;
}

/**
 * Short intervals so failures are noticed in tens of milliseconds, not seconds. Tests spread their
 * own overrides on top (one level deep).
 */
export const FAST_CONFIG = {
  health: { intervalMs: 100, timeoutMs: 300, unhealthyThreshold: 2, healthyThreshold: 1, indexRefreshMs: 500 },
  breaker: { errorThresholdPercentage: 50, volumeThreshold: 3, resetTimeoutMs: 500, rollingWindowMs: 2000 },
} as const;

export function mergeConfig(base: Record<string, object>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const prev = out[key];
    out[key] = prev !== null && typeof prev === 'object' && !Array.isArray(prev) && value !== null && typeof value === 'object' && !Array.isArray(value)
      ? { ...prev, ...value }
      : value;
  }
  return out;
}

/** Starts a gateway with a config file (FAST_CONFIG plus `config`) written to a temp dir. */
export async function startConfiguredGateway(
  t: TestContext,
  workers: string[],
  config: Record<string, unknown> = {},
  options: StartOptions & { waitForWorkers?: boolean; file?: string } = {},
): Promise<RunningGateway & { configPath: string }> {
  const dir = await tempDir(t, 'gwconf');
  const configPath = await writeConfig(join(dir, options.file ?? 'gateway.yaml'), mergeConfig(FAST_CONFIG, config));
  const gateway = await startGateway(t, workers, { ...options, args: ['--config', configPath, ...(options.args ?? [])] });
  return { ...gateway, configPath };
}

export const IRIS_BODY = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] });

/** POST one iris inference (JSON) to `base` (a gateway or a worker). */
export function inferIris(base: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: IRIS_BODY, ...init });
}

export interface WorkerView {
  id: string;
  url: string;
  ready: boolean;
  draining: boolean;
  breaker: 'closed' | 'open' | 'half-open';
  inFlight: number;
}

export async function adminWorkers(gateway: RunningGateway): Promise<WorkerView[]> {
  const res = await gateway.admin('/admin/workers');
  return ((await res.json()) as { workers: WorkerView[] }).workers;
}

export async function workerIdOf(gateway: RunningGateway, url: string): Promise<string> {
  const found = (await adminWorkers(gateway)).find((w) => w.url === new URL(url).origin);
  if (found === undefined) throw new Error(`worker ${url} is not in the pool`);
  return found.id;
}

/** Waits until the admin API shows the worker at `url` satisfying `check`. */
export async function waitForWorker(gateway: RunningGateway, url: string, check: (w: WorkerView) => boolean, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => {
    const w = (await adminWorkers(gateway)).find((x) => x.url === new URL(url).origin);
    return w !== undefined && check(w);
  }, timeoutMs);
}

/** Sends `text` on a fresh TCP connection and collects everything until the server closes it. */
export function rawExchange(url: string, text: string | Buffer, timeoutMs = 5000): Promise<{ response: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let response = '';
    const socket = connect(Number(port), hostname, () => socket.write(text));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ response, closed: false });
    }, timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => { response += chunk; });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ response, closed: true });
    });
  });
}

/** Splits a raw HTTP/1.1 response into status, headers (lower-case) and body. */
export function parseRawResponse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0), headers, body: end < 0 ? '' : raw.slice(end + 4) };
}

/**
 * A request through node:http (not fetch), for headers fetch refuses to send (Connection, TE,
 * Keep-Alive, ...) and for bodies the server may refuse before reading them all.
 */
export function nodeRequest(url: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    // The server may answer (413) and close before the whole body is written: the answer counts.
    req.on('error', reject);
    req.end(options.body);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface SeenRequest {
  method: string;
  path: string;
  /** Header names in lower case, as the gateway sent them. */
  headers: IncomingHttpHeaders;
}

export interface Recorder {
  /** Point the gateway here; requests are passed on to the target. */
  readonly url: string;
  /** Every request that came through, in order. */
  readonly seen: SeenRequest[];
  /** Headers added to every response passed back (to see which the gateway drops). */
  responseHeaders: Record<string, string>;
  /** Requests whose connection the gateway closed before the response was complete. */
  readonly aborted: number;
  /** Answer with chunked framing (no Content-Length), as a streaming worker would. */
  chunked: boolean;
}

/**
 * A recording pass-through in front of an upstream (the fault upstream does not keep the headers it
 * receives): it notes each request's method, path and headers exactly as the gateway sent them,
 * forwards it unchanged, and may add headers to the response.
 */
export async function startRecorder(t: TestContext, target: string): Promise<Recorder> {
  const seen: SeenRequest[] = [];
  const recorder = { url: '', seen, responseHeaders: {} as Record<string, string>, aborted: 0, chunked: false };
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    seen.push({ method: req.method ?? 'GET', path, headers: req.headers });
    const headers = { ...req.headers };
    for (const name of ['connection', 'keep-alive', 'host', 'te', 'transfer-encoding']) delete headers[name];
    const out = httpRequest(new URL(path, target), { method: req.method, headers, agent: false }, (upstream) => {
      const answer = { ...upstream.headers, ...recorder.responseHeaders };
      if (recorder.chunked) delete answer['content-length'];
      res.writeHead(upstream.statusCode ?? 502, answer);
      upstream.pipe(res);
      upstream.on('error', () => res.destroy());
    });
    out.on('error', () => res.destroy());
    res.on('close', () => {
      if (res.writableFinished) return;
      recorder.aborted++;
      out.destroy();
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  recorder.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }));
  return recorder;
}
