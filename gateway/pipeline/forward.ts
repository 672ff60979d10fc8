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
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import httpProxy from 'http-proxy';
import { InfergateError } from '../../shared/errors.ts';
import { HEADER_QUEUE_DEPTH, HEADER_REQUEST_ID, HEADER_TIMEOUT_MS, HEADER_WORKER } from '../../shared/protocol/headers.ts';
import { UpstreamFailure } from '../upstreams/breaker.ts';
import type { Upstream } from '../upstreams/upstream.ts';
import type { RequestContext } from './context.ts';
import type { RetryBudget } from './retry-budget.ts';
import type { Selector } from './select-upstream.ts';

/** Never forwarded to a worker: credentials and hop-by-hop headers (RFC 9110 §7.6.1). */
const DROPPED_REQUEST_HEADERS = [
  'authorization', 'x-api-key', 'proxy-authorization', 'cookie',
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect',
];
const DROPPED_RESPONSE_HEADERS = ['connection', 'keep-alive', 'proxy-connection', 'trailer', 'upgrade', 'set-cookie', HEADER_QUEUE_DEPTH];

export interface ForwardDeps {
  select: Selector;
  budget: RetryBudget;
  now: () => number;
  /** A worker that accepts no connection within this is treated as unreachable (safe to retry). */
  connectTimeoutMs: number;
  onRetry?(ctx: RequestContext, reason: string): void;
  onUpstreamResponse?(ctx: RequestContext, upstream: Upstream, status: number, latencyMs: number): void;
}

interface Attempt {
  ctx: RequestContext;
  upstream: Upstream;
  onRequest(proxyReq: ClientRequest): void;
  onResponse(proxyRes: IncomingMessage): void;
}

type AttemptOptions = httpProxy.ServerOptions & { attempt: Attempt };

/** How one attempt ended, when the client has not been answered by the worker. */
class AttemptError extends Error {
  constructor(readonly failure: UpstreamFailure | Error, readonly reachedWorker: boolean) {
    super(failure.message);
  }
}

export function createForwarder(deps: ForwardDeps): { forward(ctx: RequestContext): Promise<void>; close(): void } {
  const proxy = httpProxy.createProxyServer({ ws: false, xfwd: false, changeOrigin: false });
  const current = new WeakMap<IncomingMessage, Attempt>();
  proxy.on('error', () => undefined); // every call passes its own error callback; this guards a stray emit
  proxy.on('proxyReq', (proxyReq: ClientRequest, _req: IncomingMessage, _res: unknown, options: httpProxy.ServerOptions) => {
    (options as AttemptOptions).attempt.onRequest(proxyReq);
  });
  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage) => current.get(req)?.onResponse(proxyRes));

  function send(ctx: RequestContext, upstream: Upstream): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const lease = upstream.lease();
      let proxyReq: ClientRequest | undefined;
      let connected = false;
      let responded = false;
      let settled = false;
      const finish = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ctx.clientGone.removeEventListener('abort', onClientGone);
        lease.release(error === undefined ? deps.now() : undefined);
        if (error === undefined) resolve();
        else reject(error);
      };
      const timer = setTimeout(() => {
        proxyReq?.destroy();
        if (responded) ctx.res.destroy(); // headers already went out: only a broken connection can tell the client
        // A deadline the client shortened says nothing about the worker: counting it would let any
        // client open a healthy worker's breaker with X-Infergate-Timeout-Ms: 1.
        finish(new AttemptError(new UpstreamFailure('the deadline passed before the worker answered', 'timeout', !ctx.deadlineFromClient), true));
      }, Math.max(0, ctx.deadline - deps.now()));
      const onClientGone = (): void => {
        proxyReq?.destroy();
        finish(new AttemptError(new UpstreamFailure('the client went away', 'aborted', false), connected));
      };
      ctx.clientGone.addEventListener('abort', onClientGone, { once: true });

      const attempt: Attempt = {
        ctx,
        upstream,
        onRequest(req) {
          // Called from the request's own 'socket' event (that is when http-proxy emits proxyReq),
          // so the socket is here now: a listener for that event would never fire.
          proxyReq = req;
          const socket = req.socket!;
          if (!socket.connecting) {
            connected = true; // a reused keep-alive socket: the worker may see this request
            return;
          }
          const connectTimer = setTimeout(() => req.destroy(new Error(`no connection within ${deps.connectTimeoutMs} ms`)), deps.connectTimeoutMs);
          socket.once('connect', () => {
            clearTimeout(connectTimer);
            connected = true;
          });
          socket.once('close', () => clearTimeout(connectTimer));
        },
        onResponse(res) {
          responded = true;
          const status = res.statusCode ?? 502;
          const depth = Number(res.headers[HEADER_QUEUE_DEPTH]);
          if (Number.isFinite(depth)) upstream.queueDepth = depth;
          for (const name of connectionTokens(res.headers.connection)) delete res.headers[name];
          for (const name of DROPPED_RESPONSE_HEADERS) delete res.headers[name];
          res.headers[HEADER_WORKER] = upstream.id;
          res.headers[HEADER_REQUEST_ID] = ctx.requestId;
          const broken = (): void => {
            ctx.res.destroy();
            finish(new AttemptError(new UpstreamFailure('the worker dropped the connection mid-response', 'reset'), true));
          };
          res.once('aborted', broken);
          res.once('error', broken);
          res.once('end', () => {
            deps.onUpstreamResponse?.(ctx, upstream, status, deps.now() - ctx.startedAt);
            if (status >= 500) finish(new AttemptError(new UpstreamFailure(`the worker answered ${status}`, 'status'), true));
            else finish();
          });
        },
      };
      current.set(ctx.req, attempt);
      const options: AttemptOptions = {
        target: upstream.url.origin,
        agent: upstream.agent,
        buffer: bodyStream(ctx.body),
        headers: {
          'content-length': String(ctx.body.length),
          [HEADER_REQUEST_ID]: ctx.requestId,
          'x-forwarded-for': ctx.req.socket.remoteAddress ?? '',
          'x-forwarded-proto': 'encrypted' in ctx.req.socket ? 'https' : 'http',
          [HEADER_TIMEOUT_MS]: String(Math.max(1, Math.floor(ctx.deadline - deps.now()))),
        },
        attempt,
      };
      proxy.web(ctx.req, ctx.res, options, (err: Error) => {
        if (responded) {
          ctx.res.destroy();
          finish(new AttemptError(new UpstreamFailure(`the worker dropped the connection mid-response: ${err.message}`, 'reset'), true));
        } else {
          finish(new AttemptError(new UpstreamFailure(err.message, connected ? 'reset' : 'connect'), connected));
        }
      });
    });
  }

  async function forward(ctx: RequestContext): Promise<void> {
    deps.budget.recordRequest(deps.now());
    stripRequestHeaders(ctx.req);
    for (;;) {
      const upstream = await deps.select(ctx);
      ctx.upstream = upstream;
      ctx.tried.add(upstream.id);
      try {
        await upstream.breaker.fire(() => send(ctx, upstream).catch((err: unknown) => {
          throw err instanceof AttemptError ? err.failure : err;
        }));
        return;
      } catch (err) {
        if (ctx.res.headersSent || ctx.clientGone.aborted) return; // the worker's own answer went out, or nobody is listening
        const neverReached = isBreakerRejection(err) || (err instanceof UpstreamFailure && err.reason === 'connect');
        if (neverReached && ctx.retries < 1 && ctx.deadline > deps.now() && deps.budget.tryRetry(deps.now())) {
          ctx.retries++;
          deps.onRetry?.(ctx, isBreakerRejection(err) ? 'breaker_open' : 'connect');
          continue;
        }
        throw toClientError(err, neverReached);
      }
    }
  }

  return { forward, close: () => proxy.close() };
}

/**
 * The buffered body as a stream for http-proxy to pipe. A PassThrough already ended with the data
 * hands it over in one write; Readable.from goes through an async iterator, a promise per chunk.
 */
function bodyStream(body: Buffer): PassThrough {
  const stream = new PassThrough();
  stream.end(body);
  return stream;
}

function isBreakerRejection(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'EOPENBREAKER';
}

/**
 * Removes credentials and hop-by-hop headers from the incoming request's own header object, which
 * http-proxy copies for every attempt. Done here rather than in its `proxyReq` event, which
 * http-proxy skips for requests carrying `Expect` (web-incoming.js), so no request can bypass it.
 */
function stripRequestHeaders(req: IncomingMessage): void {
  const headers = req.headers;
  for (const name of connectionTokens(headers.connection)) delete headers[name];
  for (const name of DROPPED_REQUEST_HEADERS) delete headers[name];
  delete headers['x-forwarded-for']; // replaced with the real peer, never trusted from the client
  delete headers['x-forwarded-proto'];
}

function connectionTokens(value: string | string[] | undefined): string[] {
  if (Array.isArray(value)) value = value.join(',');
  return value === undefined ? [] : value.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0);
}

function toClientError(err: unknown, neverReached: boolean): InfergateError {
  if (err instanceof UpstreamFailure && err.reason === 'timeout') {
    return new InfergateError('GW_ERR_DEADLINE_EXCEEDED', 'the deadline passed before the worker answered');
  }
  if (neverReached) return new InfergateError('GW_ERR_UPSTREAM_UNREACHABLE', 'no worker could be reached for this request', { 'Retry-After': '1' });
  return new InfergateError('GW_ERR_UPSTREAM_BROKEN', 'the worker dropped the connection before answering');
}
