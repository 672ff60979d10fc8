/**
 * Builds the worker: repository + scheduler + protocol routes behind one request listener.
 * Never listens and never reads the environment: worker/main.ts does both, tests build their own.
 *
 * @example
 *   const worker = buildWorker(config, { logger, now: performance.now });
 *   await worker.start();
 *   http.createServer(worker.handle).listen(config.port);
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InfergateError, toInfergateError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import type { WorkerConfig } from './config.ts';
import { ClientDisconnect } from './http/disconnect.ts';
import { InFlightRequests } from './http/in-flight.ts';
import { Router } from './http/router.ts';
import { bodyDiscardable } from '../shared/http/body.ts';
import { sendError, sendRaw } from '../shared/http/respond.ts';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.ts';
import { HEADER_QUEUE_DEPTH, HEADER_REQUEST_ID, HEADER_WORKER } from '../shared/protocol/headers.ts';
import { registerTfRoutes } from './protocol/tf-routes.ts';
import { registerV2Routes } from './protocol/v2-routes.ts';
import { ModelRepository } from './repository/model-repository.ts';
import { loadSession as loadOrtSession } from './repository/session-runner.ts';

export interface WorkerDeps {
  logger: Logger;
  now: () => number;
  /** Replaced in tests to serve fake models; defaults to onnxruntime sessions on worker threads. */
  loadSession?: typeof loadOrtSession;
  version?: string;
}

export interface Worker {
  handle(req: IncomingMessage, res: ServerResponse): void;
  repository: ModelRepository;
  metrics: WorkerMetrics;
  workerId: string;
  /** Scans the repository and loads every model; resolves when each has loaded or failed. */
  start(): Promise<void>;
  /** Fails readiness so balancers stop sending; requests still arriving are served. */
  startDraining(): void;
  /** Waits for every accepted request to be answered, then releases every model. */
  close(): Promise<void>;
}

const VALID_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;
const DISCONNECT = Symbol('infergate.disconnect');
type Tagged = { [DISCONNECT]?: ClientDisconnect };

function setHeaders(res: ServerResponse, headers: readonly string[]): void {
  for (let i = 0; i < headers.length; i += 2) res.setHeader(headers[i]!, headers[i + 1]!);
}

export function buildWorker(config: WorkerConfig, deps: WorkerDeps): Worker {
  const { logger, now } = deps;
  const workerId = config.workerId ?? `worker-${randomUUID().slice(0, 8)}`;
  let draining = false;
  let closing = false;
  let started = false;
  const inFlight = new InFlightRequests();
  const repository = new ModelRepository(config.modelsDir, {
    logger,
    now,
    loadSession: deps.loadSession ?? loadOrtSession,
    observerFor: (model, version) => metrics.observerFor(model, version),
  });
  const metrics = createWorkerMetrics(() => repository.servedVersions().map((s) => ({ model: s.name, version: s.version, depth: s.scheduler.queueDepth })));
  const router = new Router();
  const protocolDeps = {
    repository,
    metrics,
    now,
    version: deps.version ?? '0.0.0',
    limits: { bodyLimitBytes: config.bodyLimitBytes, maxTensorElements: config.maxTensorElements },
    isLive: () => true,
    // Ready once the first scan has settled every model (as Triton's strict readiness), not while draining.
    isReady: () => started && !draining && repository.servedVersions().length > 0,
  };
  registerV2Routes(router, protocolDeps);
  registerTfRoutes(router, protocolDeps);
  router.add('GET', /^\/metrics$/, async ({ res }) => {
    sendRaw(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
  });

  /** Shared by every response (a closure per request costs more): see handle(). */
  function onResponseClose(this: ServerResponse & Tagged): void {
    inFlight.end();
    if (!this.writableFinished) this[DISCONNECT]!.abort();
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const incomingId = req.headers[HEADER_REQUEST_ID];
    const requestId = typeof incomingId === 'string' && VALID_REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    const headers = [HEADER_REQUEST_ID, requestId, HEADER_WORKER, workerId, HEADER_QUEUE_DEPTH, String(repository.queueDepth())];
    // The listener is closed: keep-alive clients must not send another request on this connection.
    if (closing) headers.push('connection', 'close');
    inFlight.begin();
    const disconnect = new ClientDisconnect();
    (res as ServerResponse & Tagged)[DISCONNECT] = disconnect;
    res.on('close', onResponseClose);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    let result: Promise<void> | void;
    try {
      const { handler, params, deferHeaders } = router.match(req.method ?? 'GET', path);
      if (!deferHeaders) setHeaders(res, headers);
      result = handler({ req, res, params, requestId, signal: disconnect, headers });
    } catch (err) {
      fail(err, req, res, requestId, headers);
      return;
    }
    if (result instanceof Promise) result.catch((err: unknown) => fail(err, req, res, requestId, headers));
  }

  function fail(err: unknown, req: IncomingMessage, res: ServerResponse, requestId: string, headers: string[]): void {
    const error = toInfergateError(err);
    const fields = { request_id: requestId, method: req.method, url: req.url, status: error.status, code: error.code };
    if (error.status >= 500) logger.error({ ...fields, err: err instanceof InfergateError ? undefined : err }, error.message);
    else logger.info(fields, error.message);
    if (res.headersSent || res.destroyed) return;
    setHeaders(res, headers); // a route with deferHeaders has not set them
    // A body we did not read must not be parsed as the next request on this connection. One within
    // the body limit is read and thrown away once the answer is out (bodyDiscardable: closing on a
    // client still writing it resets the connection, and a gateway loses this answer to the reset);
    // a bigger or unbounded one closes the connection.
    if (!req.complete && !bodyDiscardable(req, config.bodyLimitBytes)) res.setHeader('connection', 'close');
    sendError(res, error, requestId);
  }

  return {
    handle,
    repository,
    metrics,
    workerId,
    async start() {
      await repository.start(config.pollIntervalMs);
      started = true;
    },
    startDraining() {
      draining = true;
    },
    async close() {
      draining = true;
      closing = true;
      // Bounded by the caller: worker/main.ts exits after --drain-timeout-ms whatever is left.
      await inFlight.settled();
      await repository.close();
    },
  };
}
