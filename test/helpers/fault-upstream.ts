/**
 * A programmable stand-in for a worker, for gateway tests: it speaks just enough of the worker's V2
 * protocol to be admitted (live, ready, repository index, model metadata, an `echo` model whose
 * inference returns its inputs) and fails on cue — refuses connections, stalls, resets, answers
 * 500 or reports not ready — switchable at run time. (undici `test/node-test/balanced-pool.js`
 * drives its pool against servers like this.)
 *
 * @example
 *   const worker = await startFaultUpstream(t, { id: 'w1' });
 *   // ... point the gateway at worker.url, send traffic ...
 *   await worker.setMode('reset-mid-body');
 *   assert.equal(worker.requestsTo('/v2/models/echo/infer'), 3);
 *
 * Modes:
 * - `ok`: answers like a healthy worker.
 * - `delay`: answers normally after `delayMs`.
 * - `refuse`: stops listening and drops every open connection, so new connections are refused
 *   (ECONNREFUSED), as with a dead process; any other mode listens again on the same port. A
 *   client's pooled keep-alive socket may see a reset on its next request instead, as it would
 *   with a worker that just died.
 * - `stall`: accepts the request and never answers (the socket stays open until `close`).
 * - `reset-before-response`: resets the connection (TCP RST) as soon as the request arrives.
 * - `reset-mid-body`: sends the status, the headers (with the full content-length) and half of the
 *   body, then closes the socket: the client sees a truncated body.
 * - `5xx`: 500 with a JSON error body in the worker's shape (or another worker error: `errorCode`).
 * - `not-ready`: live but not ready — readiness 503, the index lists nothing as READY, inference 503.
 * - `malformed-status`: answers with a status line node:http's client accepts but no server may send
 *   on (`statusLine`, default a reason phrase holding a control character), written on the raw socket.
 *
 * `delay`, `stall`, the resets and `5xx` apply to inference requests only by default (scope
 * `infer`), so a faulty worker still passes readiness checks and it is the breaker's job to notice;
 * scope `all` applies them to every route, as for a hung process. `refuse` and `not-ready` are
 * whole-worker states and ignore the scope.
 *
 * Every request that reaches the server is counted by path, faulty or not; refused connections
 * never reach it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { ERROR_CATALOGUE, type ErrorCode } from '../../shared/errors.ts';
import { HEADER_QUEUE_DEPTH, HEADER_REQUEST_ID, HEADER_WORKER } from '../../shared/protocol/headers.ts';

export const FAULT_MODES = ['ok', 'delay', 'refuse', 'stall', 'reset-before-response', 'reset-mid-body', '5xx', 'not-ready', 'malformed-status'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

/** Which requests a fault applies to: inference only, or every route. */
export type FaultScope = 'infer' | 'all';

export interface ModeOptions {
  /** For `delay`; default: the upstream's `delayMs`. */
  delayMs?: number;
  /** Default: the upstream's `scope`. */
  scope?: FaultScope;
  /** For `malformed-status`; default `HTTP/1.1 200 O\x01K`. */
  statusLine?: string;
  /** For `5xx`: the worker error to answer with; default `ERR_INTERNAL` (500). */
  errorCode?: ErrorCode;
}

export interface FaultUpstreamOptions {
  /** Sent as X-Infergate-Worker; default `fault-<port>`. */
  id?: string;
  /** Initial mode; default `ok`. */
  mode?: FaultMode;
  /** Default delay of the `delay` mode; default 200 ms. */
  delayMs?: number;
  /** Default scope of faults; default `infer`. */
  scope?: FaultScope;
  /** Reported as X-Infergate-Queue-Depth; default 0. */
  queueDepth?: number;
  /** Model versions served; default one: echo, version 1. */
  models?: ReadonlyArray<{ name: string; version: string }>;
}

export interface FaultUpstream {
  /** `http://127.0.0.1:<port>`, stable across `refuse` and back. */
  readonly url: string;
  readonly port: number;
  readonly id: string;
  readonly mode: FaultMode;
  /** Requests received so far, all paths. */
  readonly requests: number;
  /** Requests received so far on `path` (query string excluded). */
  requestsTo(path: string): number;
  /** Switches mode; resolves once the change is in force (for `refuse`: the port is closed). */
  setMode(mode: FaultMode, options?: ModeOptions): Promise<void>;
  /** The queue depth reported from now on. */
  setQueueDepth(depth: number): void;
  /** Stops listening and destroys every connection, stalled ones included. Idempotent. */
  close(): Promise<void>;
}

/** Starts a fault upstream on 127.0.0.1 and an ephemeral port; closed by `t.after` when `t` is given. */
export async function startFaultUpstream(t?: TestContext, options: FaultUpstreamOptions = {}): Promise<FaultUpstream> {
  const upstream = new FaultUpstreamServer(options);
  t?.after(() => upstream.close());
  await upstream.start(options.mode ?? 'ok');
  return upstream;
}

/** A reply as a healthy worker would send it; the fault layer decides how (or whether) it goes out. */
interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const INFER = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/infer$/;
const MODEL = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready)?$/;

class FaultUpstreamServer implements FaultUpstream {
  readonly #server: Server;
  readonly #counts = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #models: ReadonlyArray<{ name: string; version: string }>;
  readonly #defaultDelayMs: number;
  readonly #defaultScope: FaultScope;
  #id: string | undefined;
  #port = 0;
  #mode: FaultMode = 'ok';
  #delayMs: number;
  #scope: FaultScope;
  #statusLine = 'HTTP/1.1 200 O\x01K';
  #errorCode: ErrorCode = 'ERR_INTERNAL';
  #queueDepth: number;
  #total = 0;
  #closed = false;

  constructor(options: FaultUpstreamOptions) {
    this.#id = options.id;
    this.#defaultDelayMs = this.#delayMs = options.delayMs ?? 200;
    this.#defaultScope = this.#scope = options.scope ?? 'infer';
    this.#queueDepth = options.queueDepth ?? 0;
    this.#models = options.models ?? [{ name: 'echo', version: '1' }];
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  get id(): string {
    return this.#id ?? `fault-${this.#port}`;
  }

  get mode(): FaultMode {
    return this.#mode;
  }

  get requests(): number {
    return this.#total;
  }

  requestsTo(path: string): number {
    return this.#counts.get(path) ?? 0;
  }

  setQueueDepth(depth: number): void {
    this.#queueDepth = depth;
  }

  async start(mode: FaultMode): Promise<void> {
    await this.#listen(0);
    this.#port = (this.#server.address() as AddressInfo).port;
    await this.setMode(mode);
  }

  async setMode(mode: FaultMode, options: ModeOptions = {}): Promise<void> {
    if (this.#closed) throw new Error(`fault upstream ${this.id} is closed`);
    this.#mode = mode;
    this.#delayMs = options.delayMs ?? this.#defaultDelayMs;
    this.#scope = options.scope ?? this.#defaultScope;
    this.#statusLine = options.statusLine ?? 'HTTP/1.1 200 O\x01K';
    this.#errorCode = options.errorCode ?? 'ERR_INTERNAL';
    if (mode === 'refuse') await this.#stopListening();
    else if (!this.#server.listening) await this.#listen(this.#port);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await this.#stopListening();
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  #stopListening(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    this.#counts.set(path, (this.#counts.get(path) ?? 0) + 1);
    this.#total++;
    const faulty = this.#scope === 'all' || (req.method === 'POST' && INFER.test(path));
    const mode = faulty ? this.#mode : 'ok';
    if (mode === 'stall') return; // the socket stays open until close() or the client gives up
    if (mode === 'reset-before-response') {
      req.socket.resetAndDestroy();
      return;
    }
    void this.#readBody(req).then((body) => {
      if (mode === 'malformed-status') {
        res.socket?.end(Buffer.from(`${this.#statusLine}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n${HEADER_WORKER}: ${this.id}\r\nConnection: close\r\n\r\n{}`, 'latin1'));
        return;
      }
      const reply = mode === '5xx' ? errorReply(this.#errorCode, 'injected fault (fault upstream mode 5xx)') : this.#route(req.method ?? 'GET', path, body);
      if (mode === 'delay') {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          this.#send(res, reply, req, false);
        }, this.#delayMs);
        this.#timers.add(timer);
      } else {
        this.#send(res, reply, req, mode === 'reset-mid-body');
      }
    }, () => req.socket.destroy());
  }

  #readBody(req: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  #send(res: ServerResponse, reply: Reply, req: IncomingMessage, truncate: boolean): void {
    if (res.destroyed || res.headersSent) return;
    const body = Buffer.from(JSON.stringify(reply.body));
    const requestId = req.headers[HEADER_REQUEST_ID];
    res.writeHead(reply.status, {
      'content-type': 'application/json',
      'content-length': String(body.length),
      [HEADER_WORKER]: this.id,
      [HEADER_QUEUE_DEPTH]: String(this.#queueDepth),
      ...(typeof requestId === 'string' ? { [HEADER_REQUEST_ID]: requestId } : {}),
      ...reply.headers,
    });
    if (!truncate) {
      res.end(body);
      return;
    }
    // Headers and half the body, flushed, then the connection goes: a graceful close (FIN) rather
    // than a reset, so the partial body is sure to arrive before the end of the stream.
    res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.socket?.destroy());
  }

  #route(method: string, path: string, rawBody: string): Reply {
    const notReady = this.#mode === 'not-ready';
    if (method === 'GET' && path === '/v2/health/live') return { status: 200, body: { live: true } };
    if (method === 'GET' && path === '/v2/health/ready') {
      return notReady ? { status: 503, body: { ready: false }, headers: { 'retry-after': '1' } } : { status: 200, body: { ready: true } };
    }
    if (method === 'GET' && path === '/v2') return { status: 200, body: { name: 'fault-upstream', version: '0.0.0', extensions: ['model_repository'] } };
    if (method === 'POST' && path === '/v2/repository/index') {
      const filter = parseJson(rawBody);
      const readyOnly = typeof filter === 'object' && filter !== null && (filter as { ready?: unknown }).ready === true;
      const state = notReady ? 'UNAVAILABLE' : 'READY';
      const index = this.#models.map((m) => ({ name: m.name, version: m.version, state, reason: notReady ? 'not ready (fault injection)' : '' }));
      return { status: 200, body: readyOnly ? index.filter((e) => e.state === 'READY') : index };
    }
    const infer = INFER.exec(path);
    if (infer !== null) {
      if (method !== 'POST') return errorReply('ERR_METHOD_NOT_ALLOWED', `${method} not allowed on ${path}`);
      const served = this.#resolve(infer[1]!, infer[2]);
      if ('status' in served) return served;
      if (notReady) return errorReply('WK_ERR_MODEL_NOT_READY', `model '${served.name}' is not ready`);
      return echo(served, rawBody);
    }
    const model = MODEL.exec(path);
    if (model !== null && method === 'GET') {
      const served = this.#resolve(model[1]!, model[2]);
      if ('status' in served) return served;
      if (model[3] !== undefined) {
        return notReady ? errorReply('WK_ERR_MODEL_NOT_READY', `model '${served.name}' is not ready`) : { status: 200, body: { name: served.name, ready: true } };
      }
      return {
        status: 200,
        body: {
          name: served.name,
          versions: this.#models.filter((m) => m.name === served.name).map((m) => m.version),
          platform: 'fault_upstream',
          inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [-1] }],
          outputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [-1] }],
        },
      };
    }
    return errorReply('ERR_NOT_FOUND', `no route for ${method} ${path}`);
  }

  #resolve(name: string, version: string | undefined): { name: string; version: string } | Reply {
    const versions = this.#models.filter((m) => m.name === decodeURIComponent(name));
    if (versions.length === 0) return errorReply('WK_ERR_MODEL_NOT_FOUND', `unknown model '${name}'`);
    if (version === undefined) return versions.reduce((a, b) => (Number(b.version) > Number(a.version) ? b : a));
    return versions.find((m) => m.version === decodeURIComponent(version)) ?? errorReply('WK_ERR_VERSION_NOT_FOUND', `model '${name}' has no version '${version}'`);
  }
}

function errorReply(code: ErrorCode, message: string): Reply {
  return { status: ERROR_CATALOGUE[code].status, body: { error: message, code } };
}

function parseJson(text: string): unknown {
  try {
    return text.length === 0 ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A V2 inference response whose outputs are the request's inputs, unchanged (name, shape, datatype, data). */
function echo(model: { name: string; version: string }, rawBody: string): Reply {
  let request: unknown;
  try {
    request = JSON.parse(rawBody);
  } catch {
    return errorReply('ERR_BAD_JSON', 'the body is not valid JSON');
  }
  const inputs = (request as { inputs?: unknown } | null)?.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0) return errorReply('ERR_BAD_REQUEST', "'inputs' must be a non-empty array");
  const outputs = [];
  for (const input of inputs as Array<Record<string, unknown>>) {
    const { name, shape, datatype, data } = input ?? {};
    if (typeof name !== 'string' || !Array.isArray(shape) || typeof datatype !== 'string' || !Array.isArray(data)) {
      return errorReply('ERR_BAD_REQUEST', 'each input needs name, shape, datatype and data');
    }
    outputs.push({ name, datatype, shape, data });
  }
  const id = (request as { id?: unknown }).id;
  return {
    status: 200,
    body: { model_name: model.name, model_version: model.version, ...(typeof id === 'string' ? { id } : {}), outputs },
  };
}
