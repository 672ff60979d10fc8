/**
 * A simulated worker: the Open Inference Protocol v2 surface the gateway relies on — health, server
 * metadata, model metadata and readiness, the repository index, inference — with no model behind
 * it. An inference request is read and checked (content type, size, a JSON object with `inputs`),
 * waits for an execution slot, holds it for `delayMs`, and gets a fixed well-formed V2 response.
 * It loads no onnxruntime, so benchmarks and capacity tests can put many cheap workers with a known
 * service time behind a gateway (`infergate worker --simulate-delay-ms 2 --simulate-concurrency 1`).
 *
 * @example
 *   const worker = buildSimulatedWorker(config, { logger, now: performance.now, version: '1.0.0' });
 *   http.createServer(worker.handle).listen(config.port);
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InfergateError, toInfergateError } from '../../shared/errors.ts';
import { readBody } from '../../shared/http/body.ts';
import { sendError, sendJson } from '../../shared/http/respond.ts';
import type { Logger } from '../../shared/logger.ts';
import { HEADER_BINARY_LENGTH, HEADER_QUEUE_DEPTH, HEADER_REQUEST_ID, HEADER_TIMEOUT_MS, HEADER_WORKER, parseTimeoutHeader } from '../../shared/protocol/headers.ts';
import { Router, type RequestContext } from '../http/router.ts';
import { parseJsonBody, splitBinaryBody } from '../protocol/v2-request.ts';
import type { CancelSignal } from '../scheduler/scheduler.ts';
import type { SimulatedWorkerConfig } from './config.ts';
import { ExecutionSlots } from './slots.ts';

export interface SimulatedWorkerDeps {
  logger: Logger;
  version: string;
}

export interface SimulatedWorker {
  handle(req: IncomingMessage, res: ServerResponse): void;
  workerId: string;
  /** Fails readiness so balancers stop sending; requests still arriving are served. */
  startDraining(): void;
  /** Resolves once no inference is in flight. */
  idle(): Promise<void>;
}

const VERSION = '1';
const VALID_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;
const MODEL = String.raw`/v2/models/([^/]+)(?:/versions/([^/]+))?`;

export function buildSimulatedWorker(config: SimulatedWorkerConfig, deps: SimulatedWorkerDeps): SimulatedWorker {
  const { logger } = deps;
  const workerId = config.workerId ?? `simulated-${randomUUID().slice(0, 8)}`;
  const models = new Set(config.models);
  const slots = new ExecutionSlots({ concurrency: config.concurrency, maxQueueSize: config.maxQueueSize });
  let draining = false;
  let inFlight = 0;
  const idleWaiters: Array<() => void> = [];

  /** The served model, or 404 naming what is missing. */
  function resolve(name: string, version: string | undefined): string {
    if (!models.has(name)) throw new InfergateError('WK_ERR_MODEL_NOT_FOUND', `model '${name}' is not served`);
    if (version !== undefined && version !== VERSION) throw new InfergateError('WK_ERR_VERSION_NOT_FOUND', `model '${name}' has no version '${version}'`);
    return name;
  }

  const metadata = (name: string): object => ({
    name,
    versions: [VERSION],
    platform: 'infergate_simulated',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, -1] }],
    outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 1] }],
    parameters: { simulated: true, delay_ms: config.delayMs, concurrency: config.concurrency },
  });

  /**
   * Waits for a slot and holds it for delayMs. Settles early with 503 when the queue is full, 504
   * when the caller's deadline passes (queued or running, as the real scheduler does), or quietly
   * when the client goes away; a run that has started keeps its slot for the whole delay, like a
   * model run that cannot be interrupted.
   */
  function simulateRun(timeoutMs: number | undefined, signal: CancelSignal): Promise<void> {
    return new Promise<void>((resolveRun, reject) => {
      let settled = false;
      let withdraw: (() => void) | undefined;
      const settle = (err?: InfergateError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadlineTimer);
        signal.removeEventListener('abort', onAbort);
        if (err === undefined) resolveRun();
        else reject(err);
      };
      const onAbort = (): void => {
        withdraw?.();
        settle(); // nobody reads the answer
      };
      const deadlineTimer = timeoutMs === undefined ? undefined : setTimeout(() => {
        withdraw?.();
        settle(new InfergateError('WK_ERR_DEADLINE_EXCEEDED', `the ${timeoutMs} ms deadline passed before the simulated run ended`));
      }, timeoutMs);
      signal.addEventListener('abort', onAbort); // settle() removes it
      withdraw = slots.acquire((release) => {
        setTimeout(() => {
          release();
          settle();
        }, config.delayMs);
      });
      if (withdraw === undefined) settle(new InfergateError('WK_ERR_QUEUE_FULL', `the queue is full (${config.maxQueueSize} waiting)`, { 'Retry-After': '1' }));
    });
  }

  async function infer({ req, res, params, signal }: RequestContext): Promise<void> {
    const name = resolve(params[0]!, params[1] || undefined);
    const body = await readBody(req, { limitBytes: config.bodyLimitBytes, accept: ['application/json', 'application/octet-stream'] });
    const headerLength = req.headers[HEADER_BINARY_LENGTH];
    const { json } = splitBinaryBody(body, typeof headerLength === 'string' ? headerLength : undefined);
    const request = parseJsonBody(json, 40, false);
    if (request === null || typeof request !== 'object' || Array.isArray(request)) throw new InfergateError('ERR_BAD_REQUEST', 'the request must be a JSON object');
    const { id, inputs } = request as { id?: unknown; inputs?: unknown };
    if (id !== undefined && typeof id !== 'string') throw new InfergateError('ERR_BAD_REQUEST', '"id" must be a string');
    if (!Array.isArray(inputs) || inputs.length === 0) throw new InfergateError('ERR_BAD_REQUEST', '"inputs" must be a non-empty array of tensors');
    inFlight++;
    try {
      await simulateRun(parseTimeoutHeader(req.headers[HEADER_TIMEOUT_MS]), signal);
    } finally {
      if (--inFlight === 0) for (const wake of idleWaiters.splice(0)) wake();
    }
    sendJson(res, 200, {
      model_name: name,
      model_version: VERSION,
      ...(id !== undefined ? { id } : {}),
      outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 1], data: [0.5] }],
    });
  }

  const router = new Router()
    .add('GET', /^\/v2\/?$/, ({ res }) => sendJson(res, 200, { name: 'infergate', version: deps.version, extensions: ['model_repository'], simulated: true }))
    .add('GET', /^\/v2\/health\/live$/, ({ res }) => sendJson(res, 200, { live: true }))
    .add('GET', /^\/v2\/health\/ready$/, ({ res }) => sendJson(res, draining ? 503 : 200, { ready: !draining }, draining ? { 'retry-after': '1' } : {}))
    .add('GET', new RegExp(`^${MODEL}$`), ({ res, params }) => sendJson(res, 200, metadata(resolve(params[0]!, params[1] || undefined))))
    .add('GET', new RegExp(`^${MODEL}/ready$`), ({ res, params }) => sendJson(res, 200, { name: resolve(params[0]!, params[1] || undefined), ready: true }))
    .add('POST', new RegExp(`^${MODEL}/infer$`), infer)
    .add('POST', /^\/v2\/repository\/index$/, async ({ req, res }) => {
      await readBody(req, { limitBytes: 64 * 1024, accept: ['application/json'] });
      sendJson(res, 200, config.models.map((name) => ({ name, version: VERSION, state: 'READY', reason: '' })));
    })
    .add('POST', /^\/v2\/repository\/models\/([^/]+)\/(load|unload)$/, async ({ req, res, params }) => {
      await readBody(req, { limitBytes: 64 * 1024, accept: ['application/json'] });
      const [name, action] = params as [string, string];
      if (action === 'load' && models.has(name)) return sendJson(res, 200, { name, action, ok: true });
      throw new InfergateError('WK_ERR_LOAD_FAILED', `a simulated worker serves a fixed set of models (${config.models.join(', ')}): ${action} '${name}' is not possible`);
    });

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const incomingId = req.headers[HEADER_REQUEST_ID];
    const requestId = typeof incomingId === 'string' && VALID_REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    const headers = [HEADER_REQUEST_ID, requestId, HEADER_WORKER, workerId, HEADER_QUEUE_DEPTH, String(slots.queueDepth)];
    for (let i = 0; i < headers.length; i += 2) res.setHeader(headers[i]!, headers[i + 1]!);
    const aborter = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) aborter.abort();
    });
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const fail = (err: unknown): void => {
      const error = toInfergateError(err);
      if (error.status >= 500 && !(err instanceof InfergateError)) logger.error({ request_id: requestId, err }, error.message);
      if (res.headersSent || res.destroyed) return;
      if (!req.complete) res.setHeader('connection', 'close');
      sendError(res, error, requestId);
    };
    try {
      const { handler, params } = router.match(req.method ?? 'GET', q < 0 ? url : url.slice(0, q));
      const result = handler({ req, res, params, requestId, signal: aborter.signal, headers });
      if (result instanceof Promise) result.catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  return {
    handle,
    workerId,
    startDraining() {
      draining = true;
    },
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((wake) => idleWaiters.push(wake))),
  };
}

