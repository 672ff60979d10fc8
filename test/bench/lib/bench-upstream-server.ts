/**
 * A worker-shaped upstream for gateway benchmarks, run as a child process by bench-upstream.ts (so
 * its CPU is its own, not the load generator's). It speaks just enough of the worker's V2 protocol
 * for the gateway to admit it — `/v2/health/live|ready`, `GET /v2`, `POST /v2/repository/index`
 * (model `echo` version 1 READY), `GET /v2/models/echo[/versions/1]` — and answers
 * `POST /v2/models/echo[/versions/1]/infer` with a fixed small V2 JSON response after reading the body.
 * No parsing, no JSON work per request: what a proxy in front of it costs is the proxy's doing.
 *
 * Timing (options, JSON in argv[2]):
 * - `serviceMs` 0: answer at once (the proxy-overhead scenario).
 * - `serviceMs` > 0, `slots` 0: every request waits `serviceMs` on a timer, all in parallel (like the
 *   fault upstream's `delay` mode: a fixed latency that load does not change).
 * - `serviceMs` > 0, `slots` n ≥ 1: a worker with n execution slots, e.g. one onnxruntime session:
 *   at most n requests are served at a time, each taking `serviceMs`, the rest wait in a FIFO queue
 *   whose length is reported in X-Infergate-Queue-Depth, as the real worker does. Latency then grows
 *   with the load a balancer sends, which is what latency- and load-aware strategies react to.
 *
 * IPC: sends `{ port }` once listening; answers `{ type: 'counts' }` with `{ type: 'counts', infer,
 * connections }` (inference requests answered and TCP connections accepted so far, to tell whether a
 * proxy in front reuses its connections). Exits when the parent disconnects.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface BenchUpstreamOptions {
  /** Sent as X-Infergate-Worker. */
  id: string;
  serviceMs?: number;
  slots?: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as BenchUpstreamOptions;
const serviceMs = options.serviceMs ?? 0;
const slots = options.slots ?? 0;
const id = options.id ?? `bench-${process.pid}`;

const INFER = /^\/v2\/models\/echo(?:\/versions\/1)?\/infer$/;
const INFER_BODY = Buffer.from(
  JSON.stringify({ model_name: 'echo', model_version: '1', outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: [1, 4], data: [0.25, 0.5, 0.125, 0.125] }] }),
);
const METADATA = Buffer.from(
  JSON.stringify({
    name: 'echo',
    versions: ['1'],
    platform: 'bench_upstream',
    inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [-1, 4] }],
    outputs: [{ name: 'OUTPUT0', datatype: 'FP32', shape: [-1, 4] }],
  }),
);
const INDEX = Buffer.from(JSON.stringify([{ name: 'echo', version: '1', state: 'READY', reason: '' }]));

let answered = 0;
let connections = 0;
let busy = 0;
const queue: ServerResponse[] = [];

function send(res: ServerResponse, status: number, body: Buffer): void {
  if (res.destroyed) return;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(body.length),
    'x-infergate-worker': id,
    'x-infergate-queue-depth': String(queue.length),
  });
  res.end(body);
}

function finishInfer(res: ServerResponse): void {
  answered++;
  send(res, 200, INFER_BODY);
}

/** Starts queued requests while a slot is free; a request whose client went away is skipped. */
function drain(): void {
  while (busy < slots && queue.length > 0) {
    const res = queue.shift()!;
    if (res.destroyed) continue;
    busy++;
    setTimeout(() => {
      busy--;
      finishInfer(res);
      drain();
    }, serviceMs);
  }
}

function infer(res: ServerResponse): void {
  if (serviceMs <= 0) finishInfer(res);
  else if (slots <= 0) setTimeout(() => finishInfer(res), serviceMs);
  else {
    queue.push(res);
    drain();
  }
}

function route(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (req.method === 'POST' && INFER.test(path)) return infer(res);
  if (req.method === 'GET' && (path === '/v2/health/live' || path === '/v2/health/ready')) return send(res, 200, Buffer.from('{"ready":true}'));
  if (req.method === 'GET' && path === '/v2') return send(res, 200, Buffer.from('{"name":"bench-upstream","version":"0.0.0","extensions":["model_repository"]}'));
  if (req.method === 'POST' && path === '/v2/repository/index') return send(res, 200, INDEX);
  if (req.method === 'GET' && (path === '/v2/models/echo' || path === '/v2/models/echo/versions/1')) return send(res, 200, METADATA);
  if (req.method === 'GET' && (path === '/v2/models/echo/ready' || path === '/v2/models/echo/versions/1/ready')) return send(res, 200, Buffer.from('{"name":"echo","ready":true}'));
  send(res, 404, Buffer.from(`{"error":"no route for ${req.method} ${path}","code":"ERR_NOT_FOUND"}`));
}

const server = createServer((req, res) => {
  // Read (and drop) the whole body before answering, as a worker must.
  req.on('data', () => undefined);
  req.on('end', () => route(req, res));
});
server.on('connection', () => connections++);
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.on('message', (message: { type?: string }) => {
  if (message.type === 'counts') process.send!({ type: 'counts', infer: answered, connections });
});
process.on('disconnect', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
