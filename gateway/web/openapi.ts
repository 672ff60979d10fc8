/**
 * The OpenAPI 3.1 document of every endpoint the gateway serves, public and admin, served at
 * `GET /openapi.json` on both ports and rendered by the API reference page. Written as data here
 * (schemas in openapi-schemas.ts), never kept by hand as JSON; test/integration/web/openapi.test.ts
 * checks that it lists exactly the routes the gateway serves and that real responses match it.
 *
 * `servers`: the port the document was fetched from is the relative `/`, so "try it out" works
 * within the page's Content-Security-Policy (`connect-src 'self'`); the other port is given from
 * the configuration, with its host and port as editable variables. Admin paths carry their own
 * `servers`, as the admin API listens on its own port.
 *
 * @example
 *   const doc = openApiDocument({ side: 'public', version: '1.2.0', listen, admin, tls: false });
 */
import { ERROR_CATALOGUE, type ErrorCode } from '../../shared/errors.ts';
import { ref, SCHEMAS } from './openapi-schemas.ts';

type Json = Record<string, unknown>;

export interface OpenApiOptions {
  /** The port this copy of the document is served on. */
  side: 'public' | 'admin';
  version: string;
  listen: { host: string; port: number };
  admin: { host: string; port: number };
  /** The public port serves HTTPS. */
  tls: boolean;
}

const json = (schema: Json): Json => ({ 'application/json': { schema } });
const ok = (description: string, schema: Json, headers?: Json): Json => ({ description, content: json(schema), ...(headers && { headers }) });
const body = (schema: Json, description?: string): Json => ({ required: true, content: json(schema), ...(description && { description }) });
const param = (name: string, description: string): Json => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });

const MODEL = param('model', 'model name');
const VERSION = param('version', 'model version (a positive integer)');
const WORKER_ID = param('id', 'worker id (from GET /admin/workers)');
const KEY_ID = param('id', 'API key id (the 12 characters after `igk_`)');

/** Error responses by status, each naming the codes it can carry. */
function errors(...statuses: number[]): Json {
  const out: Json = {};
  for (const status of statuses) out[String(status)] = { $ref: `#/components/responses/E${status}` };
  return out;
}

function errorResponses(): Json {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const [code, { status }] of Object.entries(ERROR_CATALOGUE) as Array<[ErrorCode, { status: number }]>) byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  const extraHeaders: Record<number, Json> = {
    401: { 'WWW-Authenticate': { description: 'RFC 6750 challenge: `Bearer realm="infergate"`, with `error="invalid_token"` when a credential was sent', schema: { type: 'string' } } },
    403: { 'WWW-Authenticate': { description: '`Bearer …, error="insufficient_scope"`', schema: { type: 'string' } } },
    429: Object.fromEntries(['Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'].map((h) => [h, { schema: { type: 'integer' } }])),
    503: { 'Retry-After': { description: 'seconds', schema: { type: 'integer' } } },
  };
  const out: Json = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[`E${status}`] = {
      description: codes.map((c) => `\`${c}\`: ${ERROR_CATALOGUE[c].summary}`).join('; '),
      content: json(ref('Error')),
      headers: { 'X-Request-Id': { schema: { type: 'string' } }, ...extraHeaders[status] },
    };
  }
  return out;
}

const CALLER = [{ bearer: [] }, { apiKey: [] }];
const ADMIN = [{ adminToken: [] }];
const OPEN: unknown[] = [];

function op(summary: string, tags: string[], security: unknown[], responses: Json, extra: Json = {}): Json {
  return { summary, tags, security, responses, ...extra };
}

function v2Paths(): Json {
  const modelMetadata = op('Model metadata: inputs, outputs (name, datatype, shape), labels', ['V2'], CALLER, { 200: ok('the model\'s metadata, as its workers report it', ref('ModelMetadata')), ...errors(401, 403, 404, 503) });
  const modelReady = op('Whether a ready worker serves the model', ['V2'], CALLER, { 200: ok('ready', ref('ModelReady')), ...errors(401, 403, 404, 503) });
  const infer = op('Inference (Open Inference Protocol v2)', ['V2'], CALLER, {
    200: {
      description: 'the outputs, from the worker named in `X-Infergate-Worker`',
      headers: {
        'X-Infergate-Worker': { description: 'the worker that served the request', schema: { type: 'string' } },
        'Inference-Header-Content-Length': { description: 'binary outputs: the JSON header\'s length in bytes', schema: { type: 'integer' } },
      },
      content: { ...json(ref('InferenceResponse')), 'application/octet-stream': { schema: { type: 'string', format: 'binary' }, description: 'binary outputs: the JSON header, then the raw output bytes' } },
    },
    ...errors(400, 401, 403, 404, 413, 415, 429, 502, 503, 504),
  }, {
    description: 'Tensors as JSON, or with Triton\'s binary tensor extension: Content-Type `application/octet-stream`, the JSON header\'s byte length in `Inference-Header-Content-Length`, then each binary input\'s raw little-endian bytes in order (`parameters.binary_data_size` per input). A gzip or deflate body (`Content-Encoding`) is passed to the worker as it came.',
    parameters: [
      { name: 'Inference-Header-Content-Length', in: 'header', required: false, schema: { type: 'integer', minimum: 0 }, description: 'binary tensor extension: length of the JSON header' },
      { name: 'X-Infergate-Timeout-Ms', in: 'header', required: false, schema: { type: 'integer', minimum: 1 }, description: 'lowers the request deadline (never raises it)' },
      { name: 'X-Request-Id', in: 'header', required: false, schema: { type: 'string' }, description: 'echoed, logged and passed to the worker; replaced when not a safe id' },
    ],
    requestBody: { required: true, content: { ...json(ref('InferenceRequest')), 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
  });
  const action = (summary: string): Json => ({
    post: op(summary, ['Repository'], ADMIN, { 200: ok('each worker\'s answer', ref('RepositoryAction')), ...errors(401, 403, 404) }, {
      description: 'Fanned out to every worker. Changes what every worker serves, so it needs the admin token (an ordinary credential gets 403 `GW_ERR_ADMIN_REQUIRED`).',
      parameters: [MODEL],
    }),
  });
  return {
    '/v2': { get: op('Server metadata', ['Health'], OPEN, { 200: ok('name, version, protocol extensions', ref('ServerMetadata')) }) },
    '/v2/health/live': { get: op('Liveness: the gateway process is up', ['Health'], OPEN, { 200: ok('live', ref('Live')) }) },
    '/v2/health/ready': { get: op('Readiness: at least one worker is admitted', ['Health'], OPEN, { 200: ok('ready', ref('Ready')), 503: ok('no admitted worker (with Retry-After)', ref('Ready')) }) },
    '/v2/models/{model}': { get: { ...modelMetadata, parameters: [MODEL] } },
    '/v2/models/{model}/versions/{version}': { get: { ...modelMetadata, parameters: [MODEL, VERSION] } },
    '/v2/models/{model}/ready': { get: { ...modelReady, parameters: [MODEL] } },
    '/v2/models/{model}/versions/{version}/ready': { get: { ...modelReady, parameters: [MODEL, VERSION] } },
    '/v2/models/{model}/infer': { post: { ...infer, parameters: [MODEL, ...(infer.parameters as Json[])] } },
    '/v2/models/{model}/versions/{version}/infer': { post: { ...infer, parameters: [MODEL, VERSION, ...(infer.parameters as Json[])] } },
    '/v2/repository/index': {
      post: op('The models the caller may use, merged across workers, with each worker\'s state', ['Repository'], CALLER, { 200: ok('one entry per model version', ref('RepositoryIndex')), ...errors(401, 503) }, {
        requestBody: { required: false, content: json({ type: 'object' }) },
      }),
    },
    '/v2/repository/models/{model}/load': action('Load (or reload) a model on every worker'),
    '/v2/repository/models/{model}/unload': action('Unload a model on every worker'),
  };
}

function tfPaths(): Json {
  const predict = op('TF-Serving predict', ['TF-Serving'], CALLER, { 200: ok('predictions (row format) or outputs (columnar)', ref('TfPredictResponse')), ...errors(400, 401, 403, 404, 413, 415, 429, 502, 503, 504) }, {
    requestBody: body(ref('TfPredictRequest')),
  });
  const status = op('TF-Serving model status', ['TF-Serving'], CALLER, { 200: ok('the version\'s state', ref('TfModelStatus')), ...errors(401, 403, 404, 502, 503, 504) });
  const metadata = op('TF-Serving model metadata (signature)', ['TF-Serving'], CALLER, { 200: ok('the serving signature', ref('TfModelMetadata')), ...errors(401, 403, 404, 502, 503, 504) });
  return {
    '/v1/models/{model}:predict': { post: { ...predict, parameters: [MODEL] } },
    '/v1/models/{model}/versions/{version}:predict': { post: { ...predict, parameters: [MODEL, VERSION] } },
    '/v1/models/{model}': { get: { ...status, parameters: [MODEL] } },
    '/v1/models/{model}/versions/{version}': { get: { ...status, parameters: [MODEL, VERSION] } },
    '/v1/models/{model}/metadata': { get: { ...metadata, parameters: [MODEL] } },
    '/v1/models/{model}/versions/{version}/metadata': { get: { ...metadata, parameters: [MODEL, VERSION] } },
  };
}

function adminPaths(): Json {
  const admin = (summary: string, responses: Json, extra: Json = {}): Json => op(summary, ['Admin'], ADMIN, { ...responses, ...errors(401) }, extra);
  return {
    '/admin/workers': {
      get: admin('Every worker with its state and load', { 200: ok('the pool', ref('WorkerList')) }),
      post: admin('Add a worker', { 201: ok('the worker added', ref('Worker')), ...errors(400, 409) }, { requestBody: body(ref('AddWorker')) }),
    },
    '/admin/workers/{id}': { delete: admin('Remove a worker (its in-flight requests finish)', { 204: { description: 'removed' }, ...errors(404) }, { parameters: [WORKER_ID] }) },
    '/admin/workers/{id}/drain': { post: admin('Drain a worker: no new requests go to it', { 200: ok('the worker', ref('Worker')), ...errors(404) }, { parameters: [WORKER_ID] }) },
    '/admin/workers/{id}/undrain': { post: admin('Undo a drain', { 200: ok('the worker', ref('Worker')), ...errors(404) }, { parameters: [WORKER_ID] }) },
    '/admin/strategy': {
      get: admin('The balancing strategy in force and the available ones', { 200: ok('strategy', ref('Strategy')) }),
      put: admin('Switch the balancing strategy at once (and on every replica sharing Redis)', { 200: ok('the strategy now in force', ref('StrategyChanged')), ...errors(400) }, { requestBody: body(ref('StrategyChange')) }),
    },
    '/admin/config': { get: admin('The effective configuration, secrets masked', { 200: ok('configuration', ref('Config')) }) },
    '/admin/keys': {
      get: admin('Every API key (never its digest or secret); 404 when API keys are disabled', { 200: ok('keys', ref('KeyList')), ...errors(404, 503) }),
      post: admin('Create an API key: the answer shows it once', { 201: ok('the key and its record', ref('CreatedKey')), ...errors(400, 404, 503) }, { requestBody: body(ref('CreateKey')) }),
    },
    '/admin/keys/{id}': { delete: admin('Revoke an API key (every replica refuses it within seconds)', { 200: ok('the revoked record', ref('KeyRecord')), ...errors(404, 503) }, { parameters: [KEY_ID] }) },
    '/admin/keys/{id}/rotate': {
      post: admin('Rotate an API key: a new key now, the old one valid for the grace period', { 201: ok('the new key and its record', ref('CreatedKey')), ...errors(400, 404, 409, 503) }, { parameters: [KEY_ID], requestBody: { required: false, content: json(ref('RotateKey')) } }),
    },
    '/admin/pool': { get: admin('The pool dashboard\'s figures, once', { 200: ok('strategy, totals and workers with rolling figures', ref('PoolSnapshot')) }) },
    '/admin/pool/stream': {
      get: admin('The pool dashboard\'s figures as server-sent events, one a second', {
        200: {
          description: '`retry: 2000`, then `event: pool` with `data:` one PoolSnapshot JSON line, the first at once and then every second. Send the token in the `Authorization` header (read the stream with fetch(); EventSource cannot send headers).',
          content: { 'text/event-stream': { schema: { type: 'string' }, 'x-event-data': ref('PoolSnapshot') } },
        },
      }),
    },
  };
}

function webPaths(): Json {
  const html = (description: string): Json => ({ description, headers: { 'Content-Security-Policy': { schema: { type: 'string' } } }, content: { 'text/html': { schema: { type: 'string' } } } });
  const redirect = { 302: { description: 'to `/ui/`', headers: { Location: { schema: { type: 'string' } } } } };
  const file = op('A file of the web application', ['Web'], OPEN, {
    200: { description: 'the file, with its content type, ETag and Last-Modified; `Cache-Control: no-cache`', content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
    304: { description: 'not modified (If-None-Match / If-Modified-Since)' },
    ...errors(404),
  }, { parameters: [param('path', 'file path under gateway/web/public/ (assets/… for shared scripts and styles)')] });
  const vendor = op('Swagger UI\'s files (from the swagger-ui-dist package)', ['Web'], OPEN, {
    200: { description: 'swagger-ui.css, swagger-ui-bundle.js, swagger-ui-standalone-preset.js or their source maps', content: { '*/*': { schema: { type: 'string', format: 'binary' } } } },
    304: { description: 'not modified' },
    ...errors(404),
  }, { parameters: [param('file', 'file name')] });
  return {
    '/': { get: op('Redirects to the web application', ['Web'], OPEN, redirect) },
    '/ui': { get: op('Redirects to the web application', ['Web'], OPEN, redirect) },
    '/ui/': { get: op('The web application: the model playground on the public port, the pool dashboard on the admin port', ['Web'], OPEN, { 200: html('the page') }) },
    '/ui/{path}': { get: file },
    '/ui/vendor/swagger-ui/{file}': { get: vendor },
    '/openapi.json': { get: op('This document', ['Web'], OPEN, { 200: ok('OpenAPI 3.1', { type: 'object' }) }) },
  };
}

/** Builds the document as served on `options.side`. */
export function openApiDocument(options: OpenApiOptions): Json {
  const here = { url: '/', description: `this gateway's ${options.side} port (where this document came from)` };
  const publicAddress = address('the public port', options.tls ? 'https' : 'http', options.listen);
  const adminAddress = address('the admin port', 'http', options.admin);
  const [publicServers, adminServers] = options.side === 'public' ? [[here], [adminAddress]] : [[publicAddress], [here]];
  const bothServers = [here, options.side === 'public' ? adminAddress : publicAddress];
  const withServers = (paths: Json, servers: unknown[]): Json => Object.fromEntries(Object.entries(paths).map(([p, item]) => [p, { servers, ...(item as Json) }]));
  return {
    openapi: '3.1.0',
    info: {
      title: 'infergate',
      version: options.version,
      description: 'An inference gateway in front of ONNX workers: the Open Inference Protocol v2 (KServe / Triton, with the binary tensor and classification extensions) and TF-Serving REST on the public port, the admin API on the admin port (default 127.0.0.1:8081). Every error body is `{"error", "code", "request_id"}` with a stable code (docs/errors.md).',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: publicServers,
    tags: [
      { name: 'V2', description: 'Open Inference Protocol v2' },
      { name: 'TF-Serving', description: 'TensorFlow Serving REST' },
      { name: 'Repository', description: 'V2 model repository extension, fanned out to every worker' },
      { name: 'Health', description: 'Probes and server metadata (no credential)' },
      { name: 'Admin', description: 'Admin API, on the admin port, with the admin token' },
      { name: 'Web', description: 'The web application and this document, on both ports' },
    ],
    paths: {
      ...v2Paths(),
      ...tfPaths(),
      '/metrics': { get: op('Prometheus metrics', ['Health'], OPEN, { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } }) },
      ...withServers(adminPaths(), adminServers),
      ...withServers(webPaths(), bothServers),
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or API key', description: '`Authorization: Bearer <JWT or igk_… API key>`. Anonymous access, when the configuration enables it, needs none.' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'an API key (igk_…)' },
        adminToken: { type: 'http', scheme: 'bearer', description: '`Authorization: Bearer <admin token>` (INFERGATE_ADMIN_TOKEN)' },
      },
      schemas: SCHEMAS,
      responses: errorResponses(),
    },
  };
}

function address(description: string, scheme: string, at: { host: string; port: number }): Json {
  const host = at.host === '0.0.0.0' || at.host === '::' ? '127.0.0.1' : at.host;
  return {
    url: '{scheme}://{host}:{port}',
    description: `${description} (from the configuration; edit the host if you reach it by another name)`,
    variables: { scheme: { default: scheme, enum: ['http', 'https'] }, host: { default: host.includes(':') ? `[${host}]` : host }, port: { default: String(at.port) } },
  };
}
