/**
 * Decodes a V2 inference request (JSON, or JSON header + binary tensors) into validated tensors in
 * the model's input order. Nothing is allocated for a tensor until its declaration has passed.
 */
import { InfergateError } from '../../shared/errors.ts';
import type { Tensor } from '../../shared/protocol/datatypes.ts';
import type { ServedVersion } from '../repository/model-repository.ts';
import { decodeBinaryTensor } from './codec/binary-tensor.ts';
import type { StoragePool } from './codec/storage-pool.ts';
import { decodeJsonValues, describe, flattenData } from './codec/json-tensor.ts';
import { mayHoldUnsafeIntegers, parseJsonPrecise } from './codec/precise-json.ts';
import { checkDeclaredInput, checkInputSet, checkStringElements, MAX_RANK, type DeclaredInput } from './validate.ts';

export interface RequestedOutput {
  name: string;
  binary: boolean;
  /** Top-k classification (Triton's classification extension), 0 = raw tensor. */
  classification: number;
}

export interface DecodedRequest {
  id: string | undefined;
  inputs: Tensor[];
  outputs: RequestedOutput[];
  /** Buffers taken from `DecodeLimits.storage` for the inputs, to release when the request is over. */
  storage: ArrayBuffer[];
}

export interface DecodeLimits {
  maxElements: number;
  maxJsonDepth: number;
  /**
   * Where binary inputs are decoded into (default: new storage). With a StoragePool the caller
   * releases `DecodedRequest.storage` once the request is over.
   */
  storage?: StoragePool | undefined;
  /** Remembers what the last all-binary header of each model decided (see HeaderPlans). */
  headerPlans?: HeaderPlans | undefined;
}

/**
 * What a JSON header alone decides when every input is binary: each input's declaration (checked
 * against the model) and byte count, and the requested outputs. The rest (byte counts against the
 * body, BYTES elements, leftover bytes) depends on the body and is checked on every request.
 */
interface HeaderPlan {
  id: string | undefined;
  /** In header order, which is the order of the binary data. */
  inputs: Array<{ declared: DeclaredInput; binarySize: number }>;
  /** For each model input, its index in `inputs`. */
  order: number[];
  /** Shared by every request replaying the plan: read only. */
  outputs: RequestedOutput[];
}

/**
 * The last all-binary header each model version was sent, byte for byte, and what it decided.
 * Binary clients send the same header with every request of a shape: the next such request skips
 * JSON.parse and the declaration checks, and replays the plan (docs/performance-worker.md). One
 * entry per model version; a different header takes the full path and replaces it.
 *
 * @example
 *   const plans = new HeaderPlans();
 *   decodeInferRequest(body, headerLength, model, { ...limits, headerPlans: plans });
 */
export class HeaderPlans {
  readonly #entries = new WeakMap<ServedVersion, { header: Buffer; plan: HeaderPlan }>();

  /** Headers longer than this are not remembered (they are rare and would cost a long compare). */
  static readonly MAX_HEADER_BYTES = 4096;

  lookup(model: ServedVersion, header: Buffer): HeaderPlan | undefined {
    const entry = this.#entries.get(model);
    return entry !== undefined && entry.header.equals(header) ? entry.plan : undefined;
  }

  remember(model: ServedVersion, header: Buffer, plan: HeaderPlan): void {
    if (header.length <= HeaderPlans.MAX_HEADER_BYTES) this.#entries.set(model, { header: Buffer.from(header), plan });
  }
}

type Json = Record<string, unknown>;

function badRequest(message: string): InfergateError {
  return new InfergateError('ERR_BAD_REQUEST', message);
}

/** Parses JSON text; the precise parser only when a long integer literal could be rounded by JSON.parse. */
export function parseJsonBody(text: string, maxDepth: number, exactIntegers = true): unknown {
  try {
    return exactIntegers && mayHoldUnsafeIntegers(text) ? parseJsonPrecise(text, maxDepth) : JSON.parse(text);
  } catch (err) {
    throw new InfergateError('ERR_BAD_JSON', `the body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

/** Only 64-bit integer inputs can lose precision in JSON.parse: other models skip the scan for them. */
export function needsExactIntegers(model: ServedVersion): boolean {
  return model.inputs.some((s) => s.datatype === 'INT64' || s.datatype === 'UINT64');
}

/** Splits a body into its JSON header and binary tail per Inference-Header-Content-Length. */
export function splitBinaryBody(body: Buffer, headerLength: string | undefined): { json: string; binary: Buffer | undefined } {
  if (headerLength === undefined) return { json: body.toString('utf8'), binary: undefined };
  const length = jsonHeaderLength(body, headerLength);
  return { json: body.subarray(0, length).toString('utf8'), binary: body.subarray(length) };
}

function jsonHeaderLength(body: Buffer, headerLength: string): number {
  // Digits only: Number() would also take "0x10", "1e1", "-0" and "" (as 0).
  const length = /^\d{1,15}$/.test(headerLength) ? Number(headerLength) : Number.NaN;
  if (!Number.isSafeInteger(length) || length > body.length) {
    throw badRequest(`Inference-Header-Content-Length ${JSON.stringify(headerLength)} does not fit a body of ${body.length} bytes`);
  }
  return length;
}

type Allocate = ((bytes: number) => ArrayBuffer) | undefined;

/** One binary input's bytes at `offset`: checked against the body, decoded, BYTES elements checked. */
function decodeBinaryInput(d: DeclaredInput, binarySize: number, binary: Buffer, offset: number, allocate: Allocate): Tensor['data'] {
  if (offset + binarySize > binary.length) {
    throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${d.name}': binary_data_size ${String(binarySize)} runs past the end of the body`);
  }
  const data = decodeBinaryTensor(d.name, d.datatype, d.count, binary.subarray(offset, offset + binarySize), allocate);
  if (d.datatype === 'BYTES') checkStringElements(d.name, data as Uint8Array[]);
  return data;
}

function leftOver(binary: Buffer, used: number): InfergateError {
  return badRequest(`${binary.length - used} bytes of binary data follow the tensors and belong to none`);
}

/** A request whose header is byte for byte the one `plan` came from: only the body-dependent checks run. */
function replayPlan(plan: HeaderPlan, binary: Buffer, allocate: Allocate, storage: ArrayBuffer[]): DecodedRequest {
  const data = new Array<Tensor['data']>(plan.inputs.length);
  let offset = 0;
  for (let i = 0; i < plan.inputs.length; i++) {
    const { declared, binarySize } = plan.inputs[i]!;
    data[i] = decodeBinaryInput(declared, binarySize, binary, offset, allocate);
    offset += binarySize;
  }
  if (offset !== binary.length) throw leftOver(binary, offset);
  const inputs = new Array<Tensor>(plan.order.length);
  for (let i = 0; i < plan.order.length; i++) {
    const k = plan.order[i]!;
    const d = plan.inputs[k]!.declared;
    inputs[i] = { name: d.name, datatype: d.datatype, shape: d.shape, data: data[k]! };
  }
  return { id: plan.id, inputs, outputs: plan.outputs, storage };
}

export function decodeInferRequest(body: Buffer, headerLength: string | undefined, model: ServedVersion, limits: DecodeLimits): DecodedRequest {
  const storage: ArrayBuffer[] = [];
  const pool = limits.storage;
  const allocate: Allocate = pool === undefined
    ? undefined
    : (bytes: number): ArrayBuffer => {
      const buffer = pool.acquire(bytes);
      storage.push(buffer);
      return buffer;
    };
  const plans = limits.headerPlans;
  if (plans !== undefined && headerLength !== undefined) {
    const length = jsonHeaderLength(body, headerLength);
    const plan = plans.lookup(model, body.subarray(0, length));
    if (plan !== undefined) return replayPlan(plan, body.subarray(length), allocate, storage);
  }
  const { json, binary } = splitBinaryBody(body, headerLength);
  const request = parseJsonBody(json, limits.maxJsonDepth, needsExactIntegers(model));
  if (request === null || typeof request !== 'object' || Array.isArray(request)) throw badRequest('the request must be a JSON object');
  const { id, inputs, outputs, parameters } = request as Json;
  if (id !== undefined && typeof id !== 'string') throw badRequest('"id" must be a string');
  if (!Array.isArray(inputs)) throw badRequest('"inputs" must be an array of tensors');
  if (outputs !== undefined && !Array.isArray(outputs)) throw badRequest('"outputs" must be an array');
  if (parameters !== undefined && (parameters === null || typeof parameters !== 'object')) throw badRequest('"parameters" must be an object');

  const target = { inputs: model.inputs, maxBatchSize: model.config.maxBatchSize };
  const declared: DeclaredInput[] = [];
  const tensors = new Map<string, Tensor>();
  let binaryOffset = 0;
  const binarySizes: number[] = [];
  for (const raw of inputs) {
    if (raw === null || typeof raw !== 'object') throw badRequest('every input must be an object');
    const input = raw as Json;
    const spec = model.inputs.find((s) => s.name === input.name);
    const d = checkDeclaredInput(input, spec, target, limits.maxElements);
    declared.push(d);
    const binarySize = (input.parameters as Json | undefined)?.binary_data_size;
    let data: Tensor['data'];
    if (binarySize !== undefined) {
      if (binary === undefined) throw badRequest(`input '${d.name}' declares binary_data_size but the request has no Inference-Header-Content-Length header`);
      if (!Number.isSafeInteger(binarySize) || (binarySize as number) < 0) {
        throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${d.name}': binary_data_size must be a non-negative integer, got ${describe(binarySize)}`);
      }
      data = decodeBinaryInput(d, binarySize as number, binary, binaryOffset, allocate);
      binaryOffset += binarySize as number;
      binarySizes.push(binarySize as number);
    } else {
      if (input.data === undefined) throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${d.name}' has neither "data" nor binary_data_size`);
      const values = flattenData(d.name, input.data, MAX_RANK);
      if (values.length !== d.count) {
        throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${d.name}': shape [${d.shape.join(',')}] needs ${d.count} elements, got ${values.length}`);
      }
      data = decodeJsonValues(d.name, d.datatype, values);
      if (d.datatype === 'BYTES') checkStringElements(d.name, data as Uint8Array[]);
    }
    tensors.set(d.name, { name: d.name, datatype: d.datatype, shape: d.shape, data });
  }
  if (binary !== undefined && binaryOffset !== binary.length) throw leftOver(binary, binaryOffset);
  checkInputSet(declared, target);
  const requested = decodeRequestedOutputs(outputs as unknown[] | undefined, (parameters as Json | undefined)?.binary_data_output === true, model);
  if (plans !== undefined && binary !== undefined && binarySizes.length === declared.length) {
    const names = declared.map((d) => d.name);
    plans.remember(model, body.subarray(0, body.length - binary.length), {
      id: id as string | undefined,
      inputs: declared.map((d, i) => ({ declared: d, binarySize: binarySizes[i]! })),
      order: model.inputs.map((s) => names.indexOf(s.name)),
      outputs: requested,
    });
  }
  return {
    id,
    inputs: model.inputs.map((s) => tensors.get(s.name)!),
    outputs: requested,
    storage,
  };
}

function decodeRequestedOutputs(outputs: unknown[] | undefined, binaryByDefault: boolean, model: ServedVersion): RequestedOutput[] {
  if (outputs === undefined || outputs.length === 0) {
    return model.outputs.map((s) => ({ name: s.name, binary: binaryByDefault, classification: 0 }));
  }
  const seen = new Set<string>();
  return outputs.map((raw) => {
    const name = (raw as Json | null)?.name;
    if (typeof name !== 'string') throw badRequest('every requested output needs a string "name"');
    if (!model.outputs.some((s) => s.name === name)) {
      throw badRequest(`unknown output '${name}'; the model has ${model.outputs.map((s) => `'${s.name}'`).join(', ')}`);
    }
    if (seen.has(name)) throw badRequest(`output '${name}' is requested more than once`);
    seen.add(name);
    const params = ((raw as Json).parameters ?? {}) as Json;
    const binary = params.binary_data === undefined ? binaryByDefault : params.binary_data === true;
    const classification = params.classification ?? 0;
    if (!Number.isSafeInteger(classification) || (classification as number) < 0) throw badRequest(`output '${name}': classification must be a non-negative integer`);
    const datatype = model.outputs.find((s) => s.name === name)!.datatype;
    if ((classification as number) > 0 && (datatype === 'BOOL' || datatype === 'BYTES')) {
      throw badRequest(`output '${name}': classification needs numeric scores, and this output is ${datatype}`);
    }
    return { name, binary, classification: classification as number };
  });
}
