/**
 * The JSON Schemas (OpenAPI 3.1, i.e. JSON Schema 2020-12) of every body the gateway takes or
 * gives, referenced from the document in openapi.ts as `#/components/schemas/<name>`. They follow
 * what the code sends: the error body of shared/errors.ts, the V2 and TF-Serving shapes of
 * docs/protocol.md, the admin views of gateway/admin/. test/integration/web/openapi.test.ts
 * validates real responses against them.
 */
import { ERROR_CATALOGUE } from '../../shared/errors.ts';
import { STRATEGY_NAMES } from '../balancing/registry.ts';

type Schema = Record<string, unknown>;

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const num: Schema = { type: 'number' };
const bool: Schema = { type: 'boolean' };
const arrayOf = (items: Schema): Schema => ({ type: 'array', items });
const nullableNumber: Schema = { type: ['number', 'null'] };

/** An object with these properties, all required unless listed in `optional`; no others unless `open`. */
function object(properties: Record<string, Schema>, optional: string[] = [], open = false): Schema {
  return {
    type: 'object',
    properties,
    required: Object.keys(properties).filter((p) => !optional.includes(p)),
    ...(open ? {} : { additionalProperties: false }),
  };
}

const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'];
const tensorData: Schema = { description: 'Row-major elements, flat or nested; INT64/UINT64 as exact integer literals, non-finite floats as "NaN", "Infinity", "-Infinity", BYTES as strings', type: 'array' };

const rolling = {
  reqPerSec: { ...num, description: 'requests finished per second over the last 10 complete seconds' },
  errorsPerSec: { ...num, description: '5xx answers per second over the same window' },
  p50Ms: { ...nullableNumber, description: 'median latency (ms) in the window; null without requests' },
  p99Ms: { ...nullableNumber, description: '99th-percentile latency (ms) in the window; null without requests' },
};

const worker = {
  id: { ...str, description: 'opaque, stable id (the X-Infergate-Worker header names it)' },
  url: str,
  source: { type: 'string', enum: ['static', 'admin', 'registry', 'dns'] },
  ready: { ...bool, description: 'admitted by the readiness checks' },
  draining: bool,
  breaker: { type: 'string', enum: ['closed', 'open', 'half-open'] },
  inFlight: int,
  queueDepth: { ...int, description: 'the queue depth the worker last reported' },
  latencyMs: { ...num, description: 'peak-EWMA latency' },
  weight: num,
  lastCheckError: str,
  models: { type: 'object', additionalProperties: arrayOf(str), description: 'model → versions' },
};

const keyRecord = object({
  id: str,
  name: str,
  displayPrefix: str,
  models: { oneOf: [{ const: '*' }, arrayOf(str)] },
  ratePerSec: num,
  burst: int,
  plan: str,
  createdAt: int,
  lastUsedAt: int,
  expiresAt: int,
  revokedAt: int,
  graceUntil: int,
  replacedBy: str,
  rotatedFrom: str,
}, ['ratePerSec', 'burst', 'plan', 'lastUsedAt', 'expiresAt', 'revokedAt', 'graceUntil', 'replacedBy', 'rotatedFrom']);

export const SCHEMAS: Record<string, Schema> = {
  Error: {
    ...object({
      error: { ...str, description: 'human-readable message (V2 and TF clients read it as a string)' },
      code: { type: 'string', enum: Object.keys(ERROR_CATALOGUE), description: 'stable code: see docs/errors.md' },
      request_id: { ...str, description: 'the X-Request-Id of the request, for the logs' },
    }, ['request_id']),
  },
  ServerMetadata: object({ name: str, version: str, extensions: arrayOf(str) }),
  Live: object({ live: bool }),
  Ready: object({ ready: bool }),
  TensorMetadata: object({ name: str, datatype: { type: 'string', enum: DATATYPES }, shape: { ...arrayOf(int), description: '-1 for a dynamic dimension' } }, [], true),
  ModelMetadata: object({
    name: str,
    versions: arrayOf(str),
    platform: str,
    inputs: arrayOf(ref('TensorMetadata')),
    outputs: arrayOf(ref('TensorMetadata')),
    max_batch_size: int,
    parameters: { type: 'object', description: '`labels`: class labels of the first output, when the model has them' },
  }, ['versions', 'platform', 'max_batch_size', 'parameters'], true),
  ModelReady: object({ name: str, ready: bool }),
  RepositoryIndexEntry: object({
    name: str,
    version: str,
    state: { type: 'string', enum: ['LOADING', 'READY', 'UNLOADING', 'UNAVAILABLE'], description: 'READY when ready on at least one worker' },
    reason: str,
    workers: { type: 'object', additionalProperties: str, description: 'worker id → its state of this version' },
  }),
  RepositoryIndex: arrayOf(ref('RepositoryIndexEntry')),
  RepositoryAction: object({
    name: str,
    action: { type: 'string', enum: ['load', 'unload'] },
    ok: { ...bool, description: 'true when every worker succeeded' },
    workers: arrayOf(object({ worker: str, url: str, status: { ...int, description: 'the worker\'s HTTP status; 0 when it could not be reached' }, ok: bool, error: str }, ['error'])),
  }),
  InferenceRequest: object({
    id: str,
    parameters: { type: 'object', description: '`binary_data_output: true` asks for every output in binary form' },
    inputs: arrayOf(object({ name: str, datatype: { type: 'string', enum: DATATYPES }, shape: arrayOf(int), data: tensorData, parameters: { type: 'object', description: '`binary_data_size` for a binary input (then no `data`)' } }, ['data', 'parameters'])),
    outputs: arrayOf(object({ name: str, parameters: { type: 'object', description: '`binary_data`, `classification: k` (top k as "score:index:label")' } }, ['parameters'])),
  }, ['id', 'parameters', 'outputs']),
  InferenceResponse: object({
    model_name: str,
    model_version: str,
    id: str,
    parameters: { type: 'object' },
    outputs: arrayOf(object({ name: str, datatype: { type: 'string', enum: DATATYPES }, shape: arrayOf(int), data: { ...tensorData, description: 'flat, row-major' }, parameters: { type: 'object', description: '`binary_data_size` for a binary output (then no `data`)' } }, ['data', 'parameters'])),
  }, ['model_version', 'id', 'parameters']),
  TfPredictRequest: {
    description: 'Row format `{"instances": [...]}` or columnar `{"inputs": ...}`; binary values as `{"b64": "..."}`',
    oneOf: [object({ signature_name: str, instances: { type: 'array' } }, ['signature_name']), object({ signature_name: str, inputs: {} }, ['signature_name'])],
  },
  TfPredictResponse: { oneOf: [object({ predictions: { type: 'array' } }), object({ outputs: {} })] },
  TfModelStatus: object({
    model_version_status: arrayOf(object({ version: str, state: str, status: object({ error_code: str, error_message: str }) }, [], true)),
  }),
  TfModelMetadata: object({ model_spec: object({ name: str, version: str, signature_name: str }, ['version', 'signature_name'], true), metadata: object({ signature_def: { type: 'object' } }) }),
  Worker: object(worker, ['lastCheckError']),
  WorkerList: object({ strategy: { type: 'string', enum: [...STRATEGY_NAMES] }, workers: arrayOf(ref('Worker')) }),
  AddWorker: object({ url: { ...str, format: 'uri' }, weight: { ...num, exclusiveMinimum: 0, maximum: 1000, default: 1 } }, ['weight']),
  Strategy: object({ strategy: { type: 'string', enum: [...STRATEGY_NAMES] }, available: arrayOf({ type: 'string', enum: [...STRATEGY_NAMES] }) }),
  StrategyChange: object({ strategy: { type: 'string', enum: [...STRATEGY_NAMES] } }),
  StrategyChanged: object({ strategy: { type: 'string', enum: [...STRATEGY_NAMES] } }),
  Config: { type: 'object', description: 'the effective gateway configuration (docs/configuration.md), every token, secret, password and key masked as "***"' },
  KeyRecord: keyRecord,
  KeyList: object({ keys: arrayOf(ref('KeyRecord')) }),
  CreateKey: object({
    name: { type: 'string', minLength: 1, maxLength: 200 },
    models: { oneOf: [{ const: '*' }, { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }], default: '*' },
    ratePerSec: { ...num, exclusiveMinimum: 0 },
    burst: { ...int, minimum: 1 },
    plan: str,
    expiresAt: { ...int, description: 'epoch milliseconds' },
  }, ['models', 'ratePerSec', 'burst', 'plan', 'expiresAt']),
  CreatedKey: object({ key: { ...str, description: 'the full key: shown this once, never again' }, record: ref('KeyRecord'), note: str }),
  RotateKey: object({ graceMs: { ...int, minimum: 0, maximum: 30 * 86_400_000, default: 3_600_000 } }, ['graceMs']),
  PoolWorker: object({ ...worker, ...rolling }, ['lastCheckError']),
  PoolSnapshot: object({
    time: { ...int, description: 'epoch milliseconds' },
    strategy: { type: 'string', enum: [...STRATEGY_NAMES] },
    strategies: arrayOf({ type: 'string', enum: [...STRATEGY_NAMES] }),
    totals: object({ ...rolling, inFlight: int }),
    workers: arrayOf(ref('PoolWorker')),
  }),
};
