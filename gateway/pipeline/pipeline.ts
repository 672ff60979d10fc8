/**
 * The inference pipeline, in order. Each stage is a factory `(options, deps) => stage` that checks
 * its options when built; a stage either returns (next stage runs) or throws an InfergateError
 * (the error responder answers). docs/gateway.md draws the same list with each stage's errors.
 *
 *   request-id → deadline → authenticate → authorize → throttle → read-body → select-upstream
 *   → forward → (error responder)
 *
 * With `throttle.cost: batch` the throttle reads the batch size from the body, so it moves after
 * read-body; with cost 1 it runs first, so a throttled client never makes the gateway buffer a body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InfergateError, toInfergateError } from '../../shared/errors.ts';
import { bodyDiscardable, readBody } from '../../shared/http/body.ts';
import { sendError } from '../../shared/http/respond.ts';
import type { Logger } from '../../shared/logger.ts';
import { HEADER_REQUEST_ID, HEADER_TIMEOUT_MS, parseTimeoutHeader } from '../../shared/protocol/headers.ts';
import type { GatewayConfig } from '../config/schema.ts';
import { RequestContext, type InferenceRoute } from './context.ts';
import { requestIdOf } from './request-id.ts';

/**
 * A stage returns nothing when it is done at once, or a promise when it has to wait: the pipeline
 * goes straight on after a synchronous stage (no `await`, no microtask).
 */
export type Stage = (ctx: RequestContext) => void | Promise<void>;

/** Deadline: the configured default, lowered (never raised) by the client's X-Infergate-Timeout-Ms. */
export function deadlineStage(options: { requestMs: number }, deps: { now: () => number }): Stage {
  if (!(options.requestMs > 0)) throw new Error('deadline stage: requestMs must be positive');
  return (ctx) => {
    const asked = parseTimeoutHeader(ctx.req.headers[HEADER_TIMEOUT_MS]);
    const ms = Math.min(options.requestMs, asked ?? Infinity);
    ctx.deadlineFromClient = asked !== undefined && asked < options.requestMs;
    ctx.deadline = ctx.startedAt + ms;
    ctx.armDeadline(ms);
  };
}

/** Reads the whole body (so a retry can resend it), enforcing the size limit while reading. */
export function readBodyStage(options: { bodyBytes: number }): Stage {
  if (!(options.bodyBytes > 0)) throw new Error('read-body stage: bodyBytes must be positive');
  const accept = ['application/json', 'application/octet-stream'];
  const bodyOptions = { limitBytes: options.bodyBytes, accept, inflate: false };
  return (ctx) => {
    if (ctx.req.method === 'GET' || ctx.req.method === 'HEAD') return undefined;
    return readBody(ctx.req, bodyOptions).then((body) => {
      ctx.body = body;
    });
  };
}

export interface PipelineDeps {
  logger: Logger;
  now: () => number;
  forward: Stage;
  /** Authentication and authorization, run before the body is read. */
  authenticate: Stage[];
  /** Undefined when throttling is off. */
  throttle: Stage | undefined;
  onDone?(ctx: RequestContext, status: number): void;
}

export function buildInferencePipeline(config: GatewayConfig, deps: PipelineDeps): (req: IncomingMessage, res: ServerResponse, route: InferenceRoute) => void {
  const throttle = deps.throttle === undefined ? [] : [deps.throttle];
  const costFromBody = config.throttle.cost === 'batch';
  const stages: Stage[] = [
    deadlineStage(config.timeouts, deps),
    ...deps.authenticate,
    ...(costFromBody ? [] : throttle),
    readBodyStage(config.limits),
    ...(costFromBody ? throttle : []),
    deps.forward,
  ];
  const { logger } = deps;
  const stopped = (ctx: RequestContext): boolean => ctx.res.writableEnded || ctx.clientGone;

  /** Runs the stages from `first` on; a promise only once a stage had to wait. */
  function runFrom(ctx: RequestContext, first: number): Promise<void> | undefined {
    for (let i = first; i < stages.length; i++) {
      const pending = stages[i]!(ctx);
      if (pending !== undefined) return pending.then(() => (stopped(ctx) ? undefined : runFrom(ctx, i + 1)));
      if (stopped(ctx)) return undefined;
    }
    return undefined;
  }

  function fail(ctx: RequestContext, err: unknown): void {
    const error = toInfergateError(err);
    const fields = { request_id: ctx.requestId, model: ctx.route.model, status: error.status, code: error.code, worker: ctx.upstream?.id, subject: ctx.principal?.subject };
    if (error.status >= 500) logger.error({ ...fields, err: err instanceof InfergateError ? undefined : err }, error.message);
    else logger.info(fields, error.message);
    const { req, res } = ctx;
    if (res.headersSent || res.destroyed) return;
    if (!req.complete && !bodyDiscardable(req, DISCARDABLE_BODY_BYTES)) res.setHeader('connection', 'close'); // an unread body must not become the next request
    sendError(res, error, ctx.requestId);
  }

  // One listener for every request (the context rides on the response): 'close' comes after
  // 'finish' for a complete response, and alone when the response was cut off — by the client
  // going away (recorded as 499, NGINX's "client closed request") or by the gateway itself after
  // the worker broke off mid-body (502) or the deadline passed mid-body (504). Every request is
  // recorded exactly once, so metrics and the access log see the broken ones too.
  function onResponseClose(this: ServerResponse): void {
    const ctx = (this as ContextCarrier)[CONTEXT]!;
    ctx.disarmDeadline();
    if (this.writableFinished) {
      deps.onDone?.(ctx, this.statusCode);
      return;
    }
    ctx.markClientGone();
    deps.onDone?.(ctx, ctx.cutOffStatus ?? STATUS_CLIENT_CLOSED);
  }

  return (req, res, route) => {
    const requestId = requestIdOf(req);
    res.setHeader(HEADER_REQUEST_ID, requestId);
    const now = deps.now();
    const ctx = new RequestContext(req, res, route, requestId, now, now + config.timeouts.requestMs);
    (res as ContextCarrier)[CONTEXT] = ctx;
    res.on('close', onResponseClose);
    let pending: Promise<void> | undefined;
    try {
      pending = runFrom(ctx, 0);
    } catch (err) {
      fail(ctx, err);
      return;
    }
    pending?.then(undefined, (err: unknown) => fail(ctx, err));
  };
}

/**
 * Up to this many unread body bytes (declared by Content-Length) are read and thrown away after an
 * early answer (401, 429...), so the client's connection stays open: refusing a request must not
 * cost a new TCP connection, or a flood of refusals becomes a flood of handshakes. Node discards
 * an unconsumed body itself once the response is finished. A bigger or chunked body closes the
 * connection instead, as NGINX's lingering close does.
 */
const DISCARDABLE_BODY_BYTES = 64 * 1024;

/** NGINX's non-standard status for a request the client abandoned before its response was complete. */
const STATUS_CLIENT_CLOSED = 499;
const CONTEXT = Symbol('infergate.requestContext');
type ContextCarrier = ServerResponse & { [CONTEXT]?: RequestContext };
