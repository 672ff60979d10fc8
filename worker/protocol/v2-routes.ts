/**
 * Open Inference Protocol v2 (KServe / Triton) over HTTP: health, server and model metadata, model
 * readiness, inference (JSON and binary tensors) and the repository extension.
 * https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
 */
import { InfergateError } from '../../shared/errors.ts';
import type { ModelRepository, ServedVersion } from '../repository/model-repository.ts';
import type { Router, RequestContext } from '../http/router.ts';
import { readBody } from '../../shared/http/body.ts';
import { sendJson, sendRaw } from '../../shared/http/respond.ts';
import type { WorkerMetrics } from '../metrics.ts';
import { HEADER_BINARY_LENGTH, HEADER_TIMEOUT_MS, parseTimeoutHeader } from '../../shared/protocol/headers.ts';
import { runInference } from './inference.ts';
import { StoragePool } from './codec/storage-pool.ts';
import { decodeInferRequest, HeaderPlans, parseJsonBody, type DecodedRequest } from './v2-request.ts';
import { encodeInferResponse } from './v2-response.ts';

export const SERVER_EXTENSIONS = ['binary_tensor_data', 'classification', 'model_repository', 'schedule_policy'];

export interface ProtocolDeps {
  repository: ModelRepository;
  metrics: WorkerMetrics;
  now: () => number;
  version: string;
  limits: { bodyLimitBytes: number; maxTensorElements: number };
  isLive: () => boolean;
  isReady: () => boolean;
}

const MODEL = String.raw`/v2/models/([^/]+)(?:/versions/([^/]+))?`;
const NAME = String.raw`([^/]+)`;

export function modelMetadata(repository: ModelRepository, served: ServedVersion): object {
  return {
    name: served.name,
    versions: repository.versionsOf(served.name),
    platform: 'onnxruntime_onnx',
    inputs: served.inputs,
    outputs: served.outputs,
    ...(Object.keys(served.config.labels).length > 0 ? { parameters: { labels: served.config.labels } } : {}),
    ...(served.config.description !== undefined ? { description: served.config.description } : {}),
    max_batch_size: served.config.maxBatchSize,
  };
}

export function registerV2Routes(router: Router, deps: ProtocolDeps): void {
  const { repository } = deps;
  const storage = new StoragePool();
  const headerPlans = new HeaderPlans();
  router
    // First: the router tries routes in order, and this one carries nearly all the traffic.
    .add('POST', new RegExp(`^${MODEL}/infer$`), (ctx) => infer(ctx, deps, storage, headerPlans), { deferHeaders: true })
    .add('GET', /^\/v2\/?$/, ({ res }) => sendJson(res, 200, { name: 'infergate', version: deps.version, extensions: SERVER_EXTENSIONS }))
    .add('GET', /^\/v2\/health\/live$/, ({ res }) => sendJson(res, deps.isLive() ? 200 : 503, { live: deps.isLive() }))
    .add('GET', /^\/v2\/health\/ready$/, ({ res }) => {
      const ready = deps.isReady();
      sendJson(res, ready ? 200 : 503, { ready }, ready ? {} : { 'retry-after': '1' });
    })
    .add('GET', new RegExp(`^${MODEL}$`), ({ res, params }) => {
      sendJson(res, 200, modelMetadata(repository, repository.resolve(params[0]!, params[1] || undefined)));
    })
    .add('GET', new RegExp(`^${MODEL}/ready$`), ({ res, params }) => {
      repository.resolve(params[0]!, params[1] || undefined); // throws 404 or 503 with the reason
      sendJson(res, 200, { name: params[0], ready: true });
    })
    .add('POST', /^\/v2\/repository\/index$/, async ({ req, res }) => {
      const body = await readBody(req, { limitBytes: 64 * 1024, accept: ['application/json'] });
      const filter = body.length > 0 ? (parseJsonBody(body.toString('utf8'), 8) as { ready?: unknown } | null) : null;
      const index = await repository.index();
      sendJson(res, 200, filter?.ready === true ? index.filter((e) => e.state === 'READY') : index);
    })
    .add('POST', new RegExp(`^/v2/repository/models/${NAME}/(load|unload)$`), async ({ req, res, params }) => {
      await readBody(req, { limitBytes: 64 * 1024, accept: ['application/json'] });
      const [name, action] = params as [string, string];
      if (action === 'load') await repository.load(name);
      else await repository.unload(name);
      sendJson(res, 200, { name, action, ok: true });
    });
}

const INFER_BODY_TYPES = ['application/json', 'application/octet-stream'];

async function infer(ctx: RequestContext, deps: ProtocolDeps, storage: StoragePool, headerPlans: HeaderPlans): Promise<void> {
  const { req, res, params, signal } = ctx;
  const served = deps.repository.resolve(params[0]!, params[1] || undefined);
  deps.metrics.inflight.inc();
  let request: DecodedRequest | undefined;
  try {
    const body = await readBody(req, { limitBytes: deps.limits.bodyLimitBytes, accept: INFER_BODY_TYPES });
    const headerLength = req.headers[HEADER_BINARY_LENGTH];
    request = decodeInferRequest(body, typeof headerLength === 'string' ? headerLength : undefined, served, {
      maxElements: deps.limits.maxTensorElements,
      maxJsonDepth: 40,
      storage,
      headerPlans,
    });
    const outputs = await runInference({
      model: served,
      inputs: request.inputs,
      outputs: request.outputs,
      timeoutMs: parseTimeoutHeader(req.headers[HEADER_TIMEOUT_MS]),
      signal,
      now: deps.now,
    });
    const encoded = encodeInferResponse(served, request.id, outputs, request.outputs);
    if (!res.headersSent && !res.destroyed) {
      // The route defers its common headers (RouteOptions.deferHeaders): status line and every
      // header in one writeHead, the body in one end.
      const headers = ctx.headers;
      headers.push('content-type', encoded.contentType, 'content-length', String(encoded.body.length));
      if (encoded.headerLength !== undefined) headers.push(HEADER_BINARY_LENGTH, String(encoded.headerLength));
      res.writeHead(200, headers);
      res.end(encoded.body);
    }
    deps.metrics.succeeded(served.name, served.version).inc();
  } catch (err) {
    deps.metrics.requests.inc({ model: served.name, version: served.version, outcome: err instanceof InfergateError ? err.code : 'ERR_INTERNAL' });
    throw err;
  } finally {
    deps.metrics.inflight.dec();
    // Answered or failed: the scheduler and the session ring hold no view on the inputs any more.
    if (request !== undefined) for (const buffer of request.storage) storage.release(buffer);
  }
}
