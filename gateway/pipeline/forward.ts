/**
 * Forward stage: sends the buffered request to the chosen worker through http-proxy (keep-alive
 * agent per worker, `error` always handled), inside that worker's circuit breaker, holding an
 * in-flight lease until the response ends. The response streams back as the worker sends it.
 *
 * Retries: a request is tried once more, on another worker, only when it provably never reached
 * the first one — connection refused or reset before the connection was established, or the
 * breaker refused it — and only within the retry budget and the deadline. Never once a worker may
 * have seen it, and never after response bytes.
 *
 * Deadline: the worker is told the remaining budget (X-Infergate-Timeout-Ms); if it has not
 * answered by then the upstream request is aborted and the client gets 504. A client that goes
 * away aborts the upstream request too.
 *
 * Cost: this is the gateway's hot path, so http-proxy is driven the cheapest way its API allows
 * (docs/performance-gateway.md): one ProxyServer with its listeners registered once, each event
 * finding its attempt on the proxy's own ClientRequest; a target parsed once per worker; the
 * request path passed as is (`toProxy`, no `url.parse` per request); the buffered body handed over
 * with one `end()` instead of a stream; the outgoing headers built once per request into a fresh
 * object rather than `delete`d from the incoming one (a delete turns an object into a slow
 * dictionary); one deadline timer per request; one object per attempt, with methods; the response
 * written by the attempt itself (`selfHandleResponse`): one writeHead with the filtered headers, then
 * the body piped, where http-proxy would run five passes and a setHeader per header. That also leaves
 * the Connection header to node:http, which honours the client's own `Connection: close` (http-proxy
 * set `keep-alive` from the forwarded headers, which carry no Connection).
 */
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Stream } from 'node:stream';
import httpProxy from 'http-proxy';
import { InfergateError } from '../../shared/errors.ts';
import { HEADER_QUEUE_DEPTH, HEADER_REQUEST_ID, HEADER_TIMEOUT_MS, HEADER_WORKER } from '../../shared/protocol/headers.ts';
import { SECURITY_HEADER_NAMES } from '../routes/browser-headers.ts';
import { UpstreamFailure } from '../upstreams/breaker.ts';
import type { Lease } from '../upstreams/lease.ts';
import type { Waiter } from '../upstreams/pool.ts';
import type { Upstream } from '../upstreams/upstream.ts';
import type { RequestContext } from './context.ts';
import type { RetryBudget } from './retry-budget.ts';
import type { Selector } from './select-upstream.ts';

/**
 * Never forwarded to a worker: credentials and hop-by-hop headers (RFC 9110 §7.6.1); the
 * X-Forwarded-* the gateway sets itself from the real peer; and a client's own claims about where
 * it came from (`Forwarded`, `X-Real-IP`, `X-Forwarded-Host`), which a worker behind the gateway
 * could not tell from the gateway's.
 */
const DROPPED_REQUEST_HEADERS = new Set([
  'authorization', 'x-api-key', 'proxy-authorization', 'cookie',
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect',
  'x-forwarded-for', 'x-forwarded-proto', 'forwarded', 'x-real-ip', 'x-forwarded-host',
]);
/**
 * Never passed on from a worker's response: hop-by-hop headers (transfer-encoding too: node:http
 * re-frames the body, chunked or close-delimited for HTTP/1.0), cookies, the queue depth (the
 * gateway's own signal), and what the gateway decides for browsers itself (routes/browser-headers.ts):
 * its security headers, and CORS (`access-control-*`, by prefix) for the origins its config allows.
 */
const DROPPED_RESPONSE_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'trailer', 'transfer-encoding', 'upgrade', 'set-cookie', HEADER_QUEUE_DEPTH,
  ...SECURITY_HEADER_NAMES,
]);

export interface ForwardDeps {
  select: Selector;
  budget: RetryBudget;
  now: () => number;
  /** A worker that accepts no connection within this is treated as unreachable (safe to retry). */
  connectTimeoutMs: number;
  onRetry?(ctx: RequestContext, reason: string): void;
  onUpstreamResponse?(ctx: RequestContext, upstream: Upstream, status: number, latencyMs: number): void;
}

/** The attempt an http-proxy event belongs to, kept on the ClientRequest http-proxy made for it. */
const ATTEMPT = Symbol('infergate.attempt');
type TaggedRequest = ClientRequest & { [ATTEMPT]?: Attempt };
type AttemptOptions = httpProxy.ServerOptions & { attempt: Attempt };

function attemptOf(proxyRes: IncomingMessage): Attempt | undefined {
  return ((proxyRes as IncomingMessage & { req?: TaggedRequest }).req)?.[ATTEMPT];
}

/**
 * The already buffered body as http-proxy's `buffer` option, which it only ever `pipe`s into the
 * upstream request: one `end(body)`, where a Readable would add a stream, a flow of events and a tick.
 */
class BufferedBody {
  readonly #body: Buffer;

  constructor(body: Buffer) {
    this.#body = body;
  }

  pipe<W extends NodeJS.WritableStream>(destination: W): W {
    destination.end(this.#body);
    return destination;
  }
}

/** One send of the request to one worker: holds the lease until the response ends, fails or is aborted. */
class Attempt implements Waiter {
  readonly ctx: RequestContext;
  readonly upstream: Upstream;
  readonly promise: Promise<void>;
  readonly #deps: ForwardDeps;
  readonly #lease: Lease;
  #resolve!: () => void;
  #reject!: (err: Error) => void;
  #proxyReq: ClientRequest | undefined = undefined;
  #connectTimer: NodeJS.Timeout | undefined = undefined;
  #connected = false;
  #responded = false;
  #settled = false;
  #status = 0;

  constructor(ctx: RequestContext, upstream: Upstream, deps: ForwardDeps) {
    this.ctx = ctx;
    this.upstream = upstream;
    this.#deps = deps;
    this.promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#lease = upstream.lease();
    ctx.waitOn(this);
  }

  /** http-proxy's `proxyReq`, emitted from the request's own 'socket' event: the socket is here now. */
  onRequest(proxyReq: ClientRequest): void {
    this.#proxyReq = proxyReq;
    (proxyReq as TaggedRequest)[ATTEMPT] = this;
    if (this.#settled) {
      proxyReq.destroy(); // the deadline or the client went first
      return;
    }
    const socket = proxyReq.socket!;
    if (!socket.connecting) {
      this.#connected = true; // a reused keep-alive socket: the worker may see this request
      return;
    }
    const timeoutMs = this.#deps.connectTimeoutMs;
    this.#connectTimer = setTimeout(() => proxyReq.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(this.#connectTimer);
      this.#connected = true;
    });
    socket.once('close', () => clearTimeout(this.#connectTimer));
  }

  /**
   * http-proxy's `proxyRes` (selfHandleResponse): the worker's status and headers go to the client
   * in one writeHead, and its body streams after them.
   */
  onResponse(proxyRes: IncomingMessage): void {
    const status = proxyRes.statusCode ?? 0;
    const headers = proxyRes.headers;
    const depth = Number(headers[HEADER_QUEUE_DEPTH]);
    if (Number.isFinite(depth)) this.upstream.queueDepth = depth;
    proxyRes.on('aborted', onProxyResBroken);
    proxyRes.on('error', onProxyResBroken);
    const res = this.ctx.res;
    if (this.#settled || res.destroyed) {
      proxyRes.resume(); // nobody to send it to: the deadline or the client went first
      return;
    }
    // node:http's client takes any three digits; its server only sends 100–999, and a gateway only
    // passes on a final answer (1xx never reach here). The worker's reason phrase is not repeated:
    // clients ignore it (RFC 9112 §4), and one with a control character would make writeHead throw.
    if (status < 200 || status > 599) {
      this.#malformed(proxyRes, `the worker answered with status ${status}`);
      return;
    }
    const outgoing = responseHeaders(headers, this.upstream.id, this.ctx.requestId);
    const vary = res.getHeader('vary'); // set by CORS: the worker's own Vary adds to it, not replaces it
    if (vary !== undefined && outgoing.vary !== undefined) outgoing.vary = `${String(vary)}, ${String(outgoing.vary)}`;
    try {
      res.writeHead(status, outgoing);
    } catch (err) {
      // A header node:http's parser let through but its server refuses: nothing went out yet, so
      // clear what writeHead set and let the client have a 502 instead.
      for (const name of Object.keys(outgoing)) res.removeHeader(name);
      res.setHeader(HEADER_REQUEST_ID, this.ctx.requestId);
      this.#malformed(proxyRes, `the worker's response headers cannot be passed on: ${(err as Error).message}`);
      return;
    }
    this.#responded = true;
    this.#status = status;
    proxyRes.pipe(res);
  }

  #malformed(proxyRes: IncomingMessage, message: string): void {
    proxyRes.resume();
    this.#proxyReq?.destroy(); // the connection carried something broken: do not reuse it
    this.#finish(new UpstreamFailure(message, 'malformed'));
  }

  /** http-proxy's `end`: the whole response went through. */
  onEnd(): void {
    if (this.#settled) return;
    const status = this.#status;
    this.#deps.onUpstreamResponse?.(this.ctx, this.upstream, status, this.#deps.now() - this.ctx.startedAt);
    // A worker's own 504 on a deadline the client shortened is the client's doing, as when the
    // gateway's timer fires first (deadlinePassed): it must not count against the worker.
    if (status >= 500) this.#finish(new UpstreamFailure(`the worker answered ${status}`, 'status', !(status === 504 && this.ctx.deadlineFromClient)));
    else this.#finish(undefined);
  }

  /** The worker's response broke off after its headers went out. */
  broken(): void {
    if (this.#settled) return;
    this.ctx.cutOffStatus = 502;
    this.ctx.res.destroy();
    this.#finish(new UpstreamFailure('the worker dropped the connection mid-response', 'reset'));
  }

  deadlinePassed(): void {
    if (this.#settled) return;
    this.#proxyReq?.destroy();
    if (this.#responded) { // headers already went out: only a broken connection can tell the client
      this.ctx.cutOffStatus = 504;
      this.ctx.res.destroy();
    }
    // A deadline the client shortened says nothing about the worker: counting it would let any
    // client open a healthy worker's breaker with X-Infergate-Timeout-Ms: 1.
    this.#finish(new UpstreamFailure('the deadline passed before the worker answered', 'timeout', !this.ctx.deadlineFromClient));
  }

  /** http-proxy's error callback for this attempt (its request, or the client's request, failed). */
  proxyError(err: Error): void {
    if (this.#settled) return;
    if (this.#responded) {
      this.ctx.cutOffStatus = 502;
      this.ctx.res.destroy();
      this.#finish(new UpstreamFailure(`the worker dropped the connection mid-response: ${err.message}`, 'reset'));
    } else {
      this.#finish(new UpstreamFailure(err.message, this.#connected ? 'reset' : 'connect'));
    }
  }

  clientGone(): void {
    if (this.#settled) return;
    this.#proxyReq?.destroy();
    this.#finish(new UpstreamFailure('the client went away', 'aborted', false));
  }

  #finish(failure: UpstreamFailure | undefined): void {
    this.#settled = true;
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    this.ctx.waitOn(undefined);
    this.#lease.release(failure === undefined ? this.#deps.now() : undefined);
    if (failure === undefined) this.#resolve();
    else this.#reject(failure);
  }
}

function onProxyResBroken(this: IncomingMessage): void {
  attemptOf(this)?.broken();
}

/**
 * http-proxy's error callback, shared by every request: the attempt under way on the client's
 * request, if it goes to the target that failed. A retry always goes to another worker, so an
 * error of an earlier attempt can never be taken for the current one's.
 */
function onProxyError(err: Error, req: IncomingMessage, _res: unknown, target: unknown): void {
  const attempt = (req as IncomingMessage & { [ATTEMPT]?: Attempt })[ATTEMPT];
  if (attempt !== undefined && attempt.upstream.proxyTarget === target) attempt.proxyError(err);
}

/** Per request: what goes to the worker, the same for every attempt. */
class Forwarding {
  readonly body: BufferedBody;
  readonly headers: OutgoingHttpHeaders;

  constructor(ctx: RequestContext) {
    this.body = new BufferedBody(ctx.body);
    this.headers = requestHeaders(ctx);
  }
}

export function createForwarder(deps: ForwardDeps): { forward(ctx: RequestContext): Promise<void>; close(): void } {
  // toProxy: the request path goes out as the client sent it (the inference routes matched it
  // already), instead of through url.parse on every request.
  // selfHandleResponse: the attempt writes the response itself (Attempt.onResponse) instead of
  // http-proxy's five per-response passes and a setHeader per header; 'end' still comes from http-proxy.
  const proxy = httpProxy.createProxyServer({ toProxy: true, prependPath: false, selfHandleResponse: true });
  proxy.on('error', () => undefined); // every call passes its own error callback; this guards a stray emit
  proxy.on('proxyReq', (proxyReq: ClientRequest, _req: IncomingMessage, _res: unknown, options: httpProxy.ServerOptions) => {
    (options as AttemptOptions).attempt.onRequest(proxyReq);
  });
  proxy.on('proxyRes', (proxyRes: IncomingMessage) => attemptOf(proxyRes)?.onResponse(proxyRes));
  proxy.on('end', (_req: IncomingMessage, _res: unknown, proxyRes: IncomingMessage) => attemptOf(proxyRes)?.onEnd());

  function send(ctx: RequestContext, upstream: Upstream, forwarding: Forwarding): Promise<void> {
    const attempt = new Attempt(ctx, upstream, deps);
    (ctx.req as IncomingMessage & { [ATTEMPT]?: Attempt })[ATTEMPT] = attempt;
    if (ctx.expired) {
      attempt.deadlinePassed();
      return attempt.promise;
    }
    forwarding.headers[HEADER_TIMEOUT_MS] = String(Math.max(1, Math.floor(ctx.deadline - deps.now())));
    const options: AttemptOptions = {
      target: upstream.proxyTarget,
      agent: upstream.agent,
      buffer: forwarding.body as unknown as Stream, // only ever piped: see BufferedBody
      attempt,
    };
    proxy.web(ctx.req, ctx.res, options, onProxyError);
    return attempt.promise;
  }

  async function forward(ctx: RequestContext): Promise<void> {
    deps.budget.recordRequest(deps.now());
    const forwarding = new Forwarding(ctx);
    // http-proxy copies the incoming request's headers for each attempt: give it the ones to send.
    ctx.req.headers = forwarding.headers as IncomingHttpHeaders;
    for (;;) {
      const selected = deps.select(ctx);
      const upstream = selected instanceof Promise ? await selected : selected;
      ctx.upstream = upstream;
      try {
        await upstream.breaker.fire(() => send(ctx, upstream, forwarding));
        return;
      } catch (err) {
        if (ctx.res.headersSent || ctx.clientGone) return; // the worker's own answer went out, or nobody is listening
        const neverReached = isBreakerRejection(err) || (err instanceof UpstreamFailure && err.reason === 'connect');
        if (neverReached && ctx.retries < 1 && ctx.deadline > deps.now() && deps.budget.tryRetry(deps.now())) {
          ctx.retryElsewhere();
          deps.onRetry?.(ctx, isBreakerRejection(err) ? 'breaker_open' : 'connect');
          continue;
        }
        throw toClientError(err, neverReached);
      }
    }
  }

  return { forward, close: () => proxy.close() };
}

function isBreakerRejection(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'EOPENBREAKER';
}

/**
 * What goes to the worker: the client's headers minus credentials and hop-by-hop ones (RFC 9110
 * §7.6.1, including those its Connection header names), plus the gateway's own. The timeout header
 * is filled in per attempt.
 */
function requestHeaders(ctx: RequestContext): OutgoingHttpHeaders {
  const incoming = ctx.req.headers;
  const named = connectionTokens(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in incoming) {
    if (!DROPPED_REQUEST_HEADERS.has(name) && !named.includes(name)) out[name] = incoming[name];
  }
  out['content-length'] = String(ctx.body.length);
  out[HEADER_REQUEST_ID] = ctx.requestId;
  const socket = ctx.req.socket;
  out['x-forwarded-for'] = socket.remoteAddress ?? '';
  out['x-forwarded-proto'] = 'encrypted' in socket ? 'https' : 'http';
  out[HEADER_TIMEOUT_MS] = '';
  return out;
}

/** The worker's response headers minus hop-by-hop ones and its queue depth, plus which worker and request it was. */
function responseHeaders(incoming: IncomingHttpHeaders, workerId: string, requestId: string): OutgoingHttpHeaders {
  const named = connectionTokens(incoming.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in incoming) {
    if (!DROPPED_RESPONSE_HEADERS.has(name) && !named.includes(name) && !name.startsWith('access-control-')) out[name] = incoming[name];
  }
  out[HEADER_WORKER] = workerId;
  out[HEADER_REQUEST_ID] = requestId;
  return out;
}

const NO_TOKENS: readonly string[] = [];
const KEEP_ALIVE: readonly string[] = ['keep-alive'];
const CLOSE: readonly string[] = ['close'];

/** The header names a Connection header lists (lower case); the two usual values without splitting. */
export function connectionTokens(value: string | string[] | undefined): readonly string[] {
  if (value === undefined) return NO_TOKENS;
  if (value === 'keep-alive') return KEEP_ALIVE;
  if (value === 'close') return CLOSE;
  if (Array.isArray(value)) value = value.join(',');
  return value.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0);
}

function toClientError(err: unknown, neverReached: boolean): InfergateError {
  if (err instanceof UpstreamFailure && err.reason === 'timeout') {
    return new InfergateError('GW_ERR_DEADLINE_EXCEEDED', 'the deadline passed before the worker answered');
  }
  if (neverReached) return new InfergateError('GW_ERR_UPSTREAM_UNREACHABLE', 'no worker could be reached for this request', { 'Retry-After': '1' });
  if (err instanceof UpstreamFailure && err.reason === 'malformed') return new InfergateError('GW_ERR_UPSTREAM_BROKEN', 'the worker answered with a malformed response');
  return new InfergateError('GW_ERR_UPSTREAM_BROKEN', 'the worker dropped the connection before answering');
}
