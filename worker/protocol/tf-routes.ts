/**
 * TensorFlow Serving's REST dialect, for clients written against it:
 * `POST /v1/models/{m}[/versions/{v}]:predict` with row (`instances`) or columnar (`inputs`) data and
 * `{"b64": ...}` for bytes; `GET /v1/models/{m}[/versions/{v}]` (status) and `.../metadata`.
 * https://www.tensorflow.org/tfx/serving/api_rest
 * Tensors go through the same validation, scheduler and codec as V2 requests.
 */
import { InfergateError } from '../../shared/errors.ts';
import type { Tensor, V2Datatype } from '../../shared/protocol/datatypes.ts';
import type { Router, RequestContext } from '../http/router.ts';
import { readBody } from '../../shared/http/body.ts';
import { sendJson, sendRaw } from '../../shared/http/respond.ts';
import type { ServedVersion } from '../repository/model-repository.ts';
import type { TensorSpec } from '../repository/session-protocol.ts';
import { decodeJsonValues, jsonElementTexts } from './codec/json-tensor.ts';
import { HEADER_TIMEOUT_MS, parseTimeoutHeader } from '../../shared/protocol/headers.ts';
import { canonicalVersion } from '../../shared/protocol/version.ts';
import { runInference } from './inference.ts';
import { needsExactIntegers, parseJsonBody } from './v2-request.ts';
import { checkDeclaredInput, checkInputSet, checkStringElements, MAX_RANK } from './validate.ts';
import type { ProtocolDeps } from './v2-routes.ts';

const TF_DTYPES: Readonly<Record<V2Datatype, string>> = {
  BOOL: 'DT_BOOL', UINT8: 'DT_UINT8', UINT16: 'DT_UINT16', UINT32: 'DT_UINT32', UINT64: 'DT_UINT64',
  INT8: 'DT_INT8', INT16: 'DT_INT16', INT32: 'DT_INT32', INT64: 'DT_INT64',
  FP16: 'DT_HALF', FP32: 'DT_FLOAT', FP64: 'DT_DOUBLE', BYTES: 'DT_STRING',
};

const MODEL = String.raw`/v1/models/([^/:]+)(?:/versions/(\d+))?`;

export function registerTfRoutes(router: Router, deps: ProtocolDeps): void {
  const { repository } = deps;
  router
    .add('GET', new RegExp(`^${MODEL}$`), async ({ res, params }) => {
      const [name, asked] = params as [string, string];
      const version = asked ? canonicalVersion(asked) : undefined;
      // Every version's state, loaded or not: a version that failed to load is reported (END, with
      // its error), as TF-Serving does, not refused as "not ready".
      const all = (await repository.index()).filter((e) => e.name === name);
      if (all.length === 0) throw new InfergateError('WK_ERR_MODEL_NOT_FOUND', `model '${name}' is not served here`);
      const index = version === undefined ? all : all.filter((e) => e.version === version);
      if (index.length === 0) throw new InfergateError('WK_ERR_VERSION_NOT_FOUND', `model '${name}' has no version '${version}'`);
      sendJson(res, 200, {
        model_version_status: index.map((e) => ({
          version: e.version,
          state: e.state === 'READY' ? 'AVAILABLE' : e.state === 'UNLOADING' ? 'UNLOADING' : e.state === 'LOADING' ? 'LOADING' : 'END',
          status: { error_code: e.reason ? 'UNKNOWN' : 'OK', error_message: e.reason },
        })),
      });
    })
    .add('GET', new RegExp(`^${MODEL}/metadata$`), ({ res, params }) => {
      const served = repository.resolve(params[0]!, params[1] || undefined);
      const signature = (specs: readonly TensorSpec[]): object => Object.fromEntries(specs.map((s) => [s.name, {
        dtype: TF_DTYPES[s.datatype],
        tensor_shape: { dim: s.shape.map((d) => ({ size: String(d), name: '' })), unknown_rank: false },
        name: s.name,
      }]));
      sendJson(res, 200, {
        model_spec: { name: served.name, signature_name: '', version: served.version },
        metadata: { signature_def: { signature_def: { serving_default: {
          inputs: signature(served.inputs), outputs: signature(served.outputs), method_name: 'tensorflow/serving/predict',
        } } } },
      });
    })
    .add('POST', new RegExp(`^${MODEL}:predict$`), (ctx) => predict(ctx, deps));
}

async function predict(ctx: RequestContext, deps: ProtocolDeps): Promise<void> {
  const { req, res, params, signal } = ctx;
  const served = deps.repository.resolve(params[0]!, params[1] || undefined);
  const labels = { model: served.name, version: served.version };
  try {
    const body = await readBody(req, { limitBytes: deps.limits.bodyLimitBytes, accept: ['application/json'] });
    const request = parseJsonBody(body.toString('utf8'), MAX_RANK + 8, needsExactIntegers(served)) as Record<string, unknown> | null;
    if (request === null || typeof request !== 'object' || Array.isArray(request)) throw badRequest('the request must be a JSON object');
    const rowFormat = 'instances' in request;
    if (rowFormat === 'inputs' in request) throw badRequest('send exactly one of "instances" (row format) or "inputs" (columnar format)');
    const values = rowFormat ? rowsToColumns(request.instances, served.inputs) : columns(request.inputs, served.inputs);
    const inputs = served.inputs.map((spec) => toTensor(spec, values.get(spec.name), served, deps.limits.maxTensorElements));
    checkInputSet(inputs.map((t) => ({ ...t, count: 0 })), { inputs: served.inputs, maxBatchSize: served.config.maxBatchSize });
    const outputs = await runInference({
      model: served,
      inputs,
      outputs: served.outputs.map((s) => ({ name: s.name, binary: false, classification: 0 })),
      timeoutMs: parseTimeoutHeader(req.headers[HEADER_TIMEOUT_MS]),
      signal,
      now: deps.now,
    });
    sendRaw(res, 200, rowFormat ? predictionsJson(outputs) : outputsJson(outputs), 'application/json');
    deps.metrics.succeeded(served.name, served.version).inc();
  } catch (err) {
    deps.metrics.requests.inc({ ...labels, outcome: err instanceof InfergateError ? err.code : 'ERR_INTERNAL' });
    throw err;
  }
}

function badRequest(message: string): InfergateError {
  return new InfergateError('ERR_BAD_REQUEST', message);
}

/** Row format: one entry per batch row; with several inputs each row is an object of named values. */
function rowsToColumns(instances: unknown, specs: readonly TensorSpec[]): Map<string, unknown[]> {
  if (!Array.isArray(instances) || instances.length === 0) throw badRequest('"instances" must be a non-empty list of rows');
  const out = new Map<string, unknown[]>(specs.map((s) => [s.name, []]));
  for (const [i, row] of instances.entries()) {
    if (specs.length === 1 && !isNamedRow(row, specs)) {
      out.get(specs[0]!.name)!.push(row);
      continue;
    }
    if (!isNamedRow(row, specs)) throw badRequest(`instance ${i} must be an object naming the model's inputs`);
    for (const [name, value] of Object.entries(row as Record<string, unknown>)) {
      const column = out.get(name);
      if (column === undefined) throw new InfergateError('WK_ERR_BAD_TENSOR', `unknown input '${name}'; the model takes ${specs.map((s) => `'${s.name}'`).join(', ')}`);
      column.push(value);
    }
  }
  for (const [name, column] of out) {
    if (column.length !== instances.length) throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}' is missing from some instances`);
  }
  return out;
}

function isNamedRow(row: unknown, specs: readonly TensorSpec[]): boolean {
  return row !== null && typeof row === 'object' && !Array.isArray(row) && !('b64' in row) && Object.keys(row).every((k) => specs.some((s) => s.name === k) || specs.length > 1);
}

/** Columnar format: the value itself for a single input, else an object of named values. */
function columns(inputs: unknown, specs: readonly TensorSpec[]): Map<string, unknown> {
  if (specs.length === 1 && !(inputs !== null && typeof inputs === 'object' && !Array.isArray(inputs) && specs[0]!.name in inputs)) {
    return new Map([[specs[0]!.name, inputs]]);
  }
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) throw badRequest('"inputs" must name the model\'s inputs');
  for (const name of Object.keys(inputs)) {
    if (!specs.some((s) => s.name === name)) throw new InfergateError('WK_ERR_BAD_TENSOR', `unknown input '${name}'; the model takes ${specs.map((s) => `'${s.name}'`).join(', ')}`);
  }
  return new Map(Object.entries(inputs));
}

function toTensor(spec: TensorSpec, value: unknown, served: ServedVersion, maxElements: number): Tensor {
  if (value === undefined) throw new InfergateError('WK_ERR_BAD_TENSOR', `missing input '${spec.name}'`);
  // In row format `value` is the list of rows, so its outer dimension is the batch dimension.
  const { shape, flat } = shapeOf(spec.name, value);
  const declared = checkDeclaredInput({ name: spec.name, datatype: spec.datatype, shape }, spec, { inputs: served.inputs, maxBatchSize: served.config.maxBatchSize }, maxElements);
  const data = spec.datatype === 'BYTES' ? flat.map((v) => decodeB64(spec.name, v)) : decodeJsonValues(spec.name, spec.datatype, flat);
  if (spec.datatype === 'BYTES') checkStringElements(spec.name, data as Uint8Array[]);
  return { name: spec.name, datatype: spec.datatype, shape: declared.shape, data };
}

/** A nested list's shape (it must be rectangular) and its elements in row-major order. */
function shapeOf(name: string, value: unknown): { shape: number[]; flat: unknown[] } {
  const shape: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) {
    shape.push(v.length);
    if (shape.length > MAX_RANK) throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}' is nested deeper than ${MAX_RANK} levels`);
    if (v.length === 0) break;
  }
  const flat: unknown[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(v)) throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}' is not a rectangular list: shape [${shape.join(',')}] expected`);
      flat.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}' is not a rectangular list: shape [${shape.join(',')}] expected`);
    for (const item of v) walk(item, depth + 1);
  };
  walk(value, 0);
  return { shape, flat };
}

function decodeB64(name: string, v: unknown): Uint8Array {
  if (typeof v === 'string') return new TextEncoder().encode(v);
  if (v !== null && typeof v === 'object' && typeof (v as { b64?: unknown }).b64 === 'string') {
    const text = (v as { b64: string }).b64;
    // Padded or not, a base64 text never has a length of 1 mod 4 (Buffer.from would drop the odd character).
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}': "b64" is not valid base64`);
    return Buffer.from(text, 'base64');
  }
  throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}': bytes elements must be strings or {"b64": "..."}`);
}

/** A tensor as nested JSON lists of its shape. */
function nestedJson(tensor: Tensor, dims: readonly number[] = tensor.shape, texts = jsonElementTexts(tensor.datatype, tensor.data)): string {
  let offset = 0;
  const build = (depth: number): string => {
    if (depth === dims.length) return texts[offset++]!;
    const items: string[] = [];
    for (let i = 0; i < dims[depth]!; i++) items.push(build(depth + 1));
    return `[${items.join(',')}]`;
  };
  return build(0);
}

/** Row format answer: one prediction per batch row (an object of outputs when there are several). */
function predictionsJson(outputs: readonly Tensor[]): string {
  if (outputs.length === 1) return `{"predictions":${nestedJson(outputs[0]!)}}`;
  const rows = outputs[0]!.shape[0] ?? 1;
  // One row per instance needs every output to have one entry per instance (TF-Serving refuses the same).
  const ragged = outputs.find((t) => (t.shape[0] ?? 1) !== rows);
  if (ragged !== undefined) {
    throw new InfergateError('ERR_BAD_REQUEST', `outputs '${outputs[0]!.name}' and '${ragged.name}' differ in their first dimension (${rows} and ${ragged.shape[0] ?? 1}), so they cannot be split into rows; send "inputs" (the columnar format) instead of "instances"`);
  }
  const perOutput = outputs.map((t) => {
    const texts = jsonElementTexts(t.datatype, t.data);
    const rowSize = rows === 0 ? 0 : texts.length / rows;
    return Array.from({ length: rows }, (_, r) => nestedJson(t, t.shape.slice(1), texts.slice(r * rowSize, (r + 1) * rowSize)));
  });
  const items = Array.from({ length: rows }, (_, r) => `{${outputs.map((t, i) => `${JSON.stringify(t.name)}:${perOutput[i]![r]}`).join(',')}}`);
  return `{"predictions":[${items.join(',')}]}`;
}

/** Columnar answer: the output itself, or an object of outputs. */
function outputsJson(outputs: readonly Tensor[]): string {
  if (outputs.length === 1) return `{"outputs":${nestedJson(outputs[0]!)}}`;
  return `{"outputs":{${outputs.map((t) => `${JSON.stringify(t.name)}:${nestedJson(t)}`).join(',')}}}`;
}
