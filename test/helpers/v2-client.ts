/**
 * A small, strict client for the Open Inference Protocol V2 `infer` endpoint (KServe V2 / Triton),
 * written independently of the worker's codec so that tests check the worker against the protocol
 * rather than against itself.
 *
 * Two encodings, both exact for every V2 datatype:
 * - {@link inferJson}: tensors in the JSON body. INT64/UINT64 are written as exact integer literals
 *   (BigInt → text) and the response is read with a lossless JSON parser ({@link parseJsonPrecise}),
 *   so values beyond 2^53 survive; FP16 travels as numbers (half ↔ double is exact); non-finite
 *   floats as the strings "NaN", "Infinity", "-Infinity"; BOOL as true/false; BYTES as UTF-8 strings.
 * - {@link inferBinary}: Triton's binary tensor extension
 *   (https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md):
 *   a JSON header whose byte length is in `Inference-Header-Content-Length`, followed by each tensor's
 *   raw little-endian bytes in order; BOOL one byte, FP16 the 16-bit pattern, BYTES elements as a
 *   4-byte little-endian length plus the bytes.
 *
 * Tensors use infergate's in-memory representation (shared/protocol/datatypes.ts): typed arrays,
 * FP16 as Uint16Array bit patterns, INT64/UINT64 as BigInt arrays, BOOL as Uint8Array of 0/1, BYTES
 * as one Uint8Array per element. Inputs may also be given as plain arrays (see {@link toTensorData}).
 * Responses are validated (shape vs element count, value ranges, binary sizes) and any violation
 * throws {@link V2ProtocolError}; a non-2xx status throws {@link V2HttpError}.
 *
 * Example:
 *   const res = await inferJson(worker.url, 'iris', [
 *     { name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] },
 *   ]);
 *   values(res.output('probabilities')); // → [0.97, 0.02, 0.01]
 *   await inferBinary(gatewayUrl, 'iris', inputs, { headers: { authorization: `Bearer ${key}` } });
 */
import { endianness } from 'node:os';
import type { Tensor, TensorData, V2Datatype } from '../../shared/protocol/datatypes.ts';

export type { Tensor, TensorData, V2Datatype };

/** Plain-JS element values accepted for inputs and returned by {@link values}. */
export type LooseValue = number | bigint | boolean | string | Uint8Array;

/** An input tensor: `data` is either infergate's representation or a flat plain array. */
export interface InputTensor {
  name: string;
  datatype: V2Datatype;
  shape: readonly number[];
  data: TensorData | readonly LooseValue[];
  /** Extra per-input parameters, sent as is. */
  parameters?: Record<string, unknown>;
}

/** An output tensor as decoded from a response. */
export interface OutputTensor extends Tensor {
  /** The output's `parameters` from the response header, if any (e.g. `binary_data_size`). */
  parameters?: Record<string, unknown>;
}

export interface RequestedOutput {
  name: string;
  parameters?: Record<string, unknown>;
}

export interface InferOptions {
  /** Request id, echoed by the server. */
  id?: string;
  /** Model version: `/v2/models/{m}/versions/{version}/infer`. */
  version?: string;
  /** Outputs to ask for (all, when omitted). */
  outputs?: Array<string | RequestedOutput>;
  /**
   * Ask for outputs in binary form: per requested output (`parameters.binary_data: true`) when
   * `outputs` is given, else with the top-level `parameters.binary_data_output: true`.
   * Default: false for {@link inferJson}, true for {@link inferBinary}.
   */
  binaryOutputs?: boolean;
  /** Top-level request parameters (merged with `binary_data_output` when that applies). */
  parameters?: Record<string, unknown>;
  /** Extra HTTP headers (credentials, `x-request-id`, ...). */
  headers?: Record<string, string>;
  /** Abort the request after this many milliseconds (default 30 000). */
  timeoutMs?: number;
}

export interface InferResponse {
  status: number;
  headers: Headers;
  modelName: string;
  modelVersion: string | undefined;
  id: string | undefined;
  outputs: OutputTensor[];
  parameters: Record<string, unknown> | undefined;
  /** The JSON (header) part of the response, parsed losslessly; big integers are BigInt. */
  body: Record<string, unknown>;
  /** The output with this name; throws if absent. */
  output(name: string): OutputTensor;
}

/** The server answered with a non-2xx status. */
export class V2HttpError extends Error {
  constructor(
    readonly status: number,
    /** Raw response body. */
    readonly bodyText: string,
    /** `code` and `error` from a JSON error body, when present. */
    readonly code: string | undefined,
    readonly errorMessage: string | undefined,
  ) {
    super(`HTTP ${status}${code ? ` ${code}` : ''}: ${errorMessage ?? bodyText.slice(0, 500)}`);
    this.name = 'V2HttpError';
  }
}

/** The response (or a request being built) does not follow the protocol. */
export class V2ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'V2ProtocolError';
  }
}

// ---------------------------------------------------------------------------------------------
// Datatypes

const BYTE_SIZE: Readonly<Record<V2Datatype, number>> = {
  BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, UINT32: 4, INT32: 4, FP32: 4,
  UINT64: 8, INT64: 8, FP64: 8, BYTES: 0,
};

/** Inclusive ranges of the integer types that fit in a double. */
const INT_RANGE: Partial<Record<V2Datatype, readonly [number, number]>> = {
  UINT8: [0, 0xff], INT8: [-0x80, 0x7f], UINT16: [0, 0xffff], INT16: [-0x8000, 0x7fff],
  UINT32: [0, 0xffffffff], INT32: [-0x80000000, 0x7fffffff],
};

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function assertLittleEndianHost(): void {
  // Typed arrays use host byte order; the wire format is little-endian.
  if (endianness() !== 'LE') throw new Error('v2-client: big-endian hosts are not supported');
}

/** Element count of a shape; 1 for a scalar. */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** IEEE 754 binary16 bit pattern → number (exact). */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (0x400 + frac) * 2 ** (exp - 25);
}

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** number → nearest IEEE 754 binary16 bit pattern (round half to even, straight from the double). */
export function numberToHalf(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  // 65520 is halfway between the largest half (65504) and 2^16: ties go to even, i.e. infinity.
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal; 1024 rounds up to the smallest normal
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp -= 1;
  else if (2 ** (exp + 1) <= a) exp += 1;
  let mant = roundHalfEven((a / 2 ** exp) * 1024);
  if (mant === 2048) {
    mant = 1024;
    exp += 1;
  }
  if (exp > 15) return sign | 0x7c00;
  return sign | ((exp + 15) << 10) | (mant - 1024);
}

function newArray(datatype: Exclude<V2Datatype, 'BYTES'>, count: number): Exclude<TensorData, Uint8Array[]> {
  switch (datatype) {
    case 'BOOL': case 'UINT8': return new Uint8Array(count);
    case 'INT8': return new Int8Array(count);
    case 'UINT16': case 'FP16': return new Uint16Array(count);
    case 'INT16': return new Int16Array(count);
    case 'UINT32': return new Uint32Array(count);
    case 'INT32': return new Int32Array(count);
    case 'UINT64': return new BigUint64Array(count);
    case 'INT64': return new BigInt64Array(count);
    case 'FP32': return new Float32Array(count);
    case 'FP64': return new Float64Array(count);
  }
}

function describe(v: unknown): string {
  return typeof v === 'bigint' ? `${v}n` : typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * Converts one element from its plain-JS/JSON form into storage form, strictly: the error names the
 * element. FP16 numbers become bit patterns; non-finite floats may be the V2 strings "NaN",
 * "Infinity", "-Infinity"; 64-bit integers may be bigint, safe-integer numbers or decimal strings.
 */
function convertElement(datatype: V2Datatype, v: unknown, where: string): number | bigint | Uint8Array {
  const fail = (why: string): never => {
    throw new V2ProtocolError(`${where}: ${describe(v)} is not a valid ${datatype} (${why})`);
  };
  switch (datatype) {
    case 'BOOL':
      if (typeof v === 'boolean') return v ? 1 : 0;
      return fail('expected true or false');
    case 'BYTES':
      if (typeof v === 'string') return utf8.encode(v);
      if (v instanceof Uint8Array) return v;
      return fail('expected a string');
    case 'FP16': case 'FP32': case 'FP64': {
      let n: number;
      if (typeof v === 'number') n = v;
      else if (v === 'NaN') n = NaN;
      else if (v === 'Infinity') n = Infinity;
      else if (v === '-Infinity') n = -Infinity;
      else return fail('expected a number or "NaN"/"Infinity"/"-Infinity"');
      return datatype === 'FP16' ? numberToHalf(n) : n;
    }
    case 'INT64': case 'UINT64': {
      let b: bigint;
      if (typeof v === 'bigint') b = v;
      else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
      else if (typeof v === 'string' && /^-?\d+$/.test(v)) b = BigInt(v);
      else return fail('expected an exact integer');
      const [lo, hi] = datatype === 'INT64' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
      if (b < lo || b > hi) fail('out of range');
      return b;
    }
    default: {
      const [lo, hi] = INT_RANGE[datatype]!;
      const n = typeof v === 'bigint' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) return fail('expected an integer');
      if (n < lo || n > hi) fail('out of range');
      return n;
    }
  }
}

function fromElements(datatype: V2Datatype, elements: readonly unknown[], where: string): TensorData {
  if (datatype === 'BYTES') return elements.map((v, i) => convertElement(datatype, v, `${where}[${i}]`) as Uint8Array);
  const out = newArray(datatype, elements.length);
  for (let i = 0; i < elements.length; i++) {
    (out as unknown as Array<number | bigint>)[i] = convertElement(datatype, elements[i], `${where}[${i}]`) as number | bigint;
  }
  return out;
}

function isTensorData(datatype: V2Datatype, data: unknown): data is TensorData {
  if (datatype === 'BYTES') return Array.isArray(data) && data.every((e) => e instanceof Uint8Array);
  const want = newArray(datatype, 0).constructor;
  return ArrayBuffer.isView(data) && data.constructor === want;
}

/**
 * Normalizes input data to storage form. A typed array of the datatype's storage type is taken as
 * is (so a Uint16Array for FP16 holds bit patterns); a plain array is converted element by element
 * (numbers for FP16 are rounded to half; BOOL takes true/false or 0/1; BYTES takes strings or bytes).
 */
export function toTensorData(datatype: V2Datatype, data: TensorData | readonly LooseValue[]): TensorData {
  if (isTensorData(datatype, data)) return data;
  if (!Array.isArray(data)) {
    throw new V2ProtocolError(`${datatype} data must be a plain array or a ${newArrayName(datatype)}`);
  }
  const elements = datatype === 'BOOL' ? data.map((v) => (v === 0 || v === 1 ? v === 1 : v)) : data;
  return fromElements(datatype, elements, 'input');
}

function newArrayName(datatype: V2Datatype): string {
  return datatype === 'BYTES' ? 'Uint8Array[]' : newArray(datatype, 0).constructor.name;
}

/**
 * The elements of a tensor as plain JS values: numbers (FP16 decoded), bigint for INT64/UINT64,
 * booleans for BOOL, strings (UTF-8 decoded, lenient) for BYTES.
 */
export function values(t: Pick<Tensor, 'datatype' | 'data'>): Array<number | bigint | boolean | string> {
  switch (t.datatype) {
    case 'BOOL': return Array.from(t.data as Uint8Array, (b) => b !== 0);
    case 'FP16': return Array.from(t.data as Uint16Array, halfToNumber);
    case 'BYTES': return (t.data as Uint8Array[]).map((b) => Buffer.from(b).toString('utf8'));
    default: return Array.from(t.data as ArrayLike<number | bigint>);
  }
}

// ---------------------------------------------------------------------------------------------
// Lossless JSON

/**
 * JSON.parse that keeps integers exact: an integer literal outside ±(2^53 - 1) becomes a bigint;
 * every other number is a double. (Node 20's JSON.parse offers no access to the source text.)
 */
export function parseJsonPrecise(text: string): unknown {
  let pos = 0;
  const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
  const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const error = (what: string): never => {
    throw new SyntaxError(`JSON: ${what} at position ${pos}: ${JSON.stringify(text.slice(pos, pos + 30))}`);
  };
  const ws = (): void => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };
  const value = (depth: number): unknown => {
    if (depth > 1000) error('nesting too deep');
    ws();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') error('expected a key');
        const key = string();
        ws();
        if (text[pos] !== ':') error("expected ':'");
        pos++;
        Object.defineProperty(obj, key, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
        ws();
        if (text[pos] === ',') pos++;
        else if (text[pos] === '}') {
          pos++;
          return obj;
        } else error("expected ',' or '}'");
      }
    }
    if (c === '[') {
      pos++;
      const arr: unknown[] = [];
      ws();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[pos] === ',') pos++;
        else if (text[pos] === ']') {
          pos++;
          return arr;
        } else error("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    if (text.startsWith('true', pos)) return (pos += 4), true;
    if (text.startsWith('false', pos)) return (pos += 5), false;
    if (text.startsWith('null', pos)) return (pos += 4), null;
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (!m) return error('unexpected token');
    pos += m[0].length;
    const n = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n)) return BigInt(m[0]);
    return n;
  };
  const string = (): string => {
    STRING.lastIndex = pos;
    const m = STRING.exec(text);
    if (!m) return error('bad string');
    pos += m[0].length;
    return JSON.parse(m[0]) as string;
  };
  const result = value(0);
  ws();
  if (pos !== text.length) error('trailing data');
  return result;
}

/** JSON text of one element; INT64/UINT64 exact, non-finite floats as V2 strings, -0 kept. */
function elementJson(datatype: V2Datatype, v: number | bigint | Uint8Array): string {
  switch (datatype) {
    case 'BOOL': return v ? 'true' : 'false';
    case 'BYTES': {
      try {
        return JSON.stringify(utf8Strict.decode(v as Uint8Array));
      } catch {
        throw new V2ProtocolError('BYTES element is not valid UTF-8: JSON cannot carry it, use inferBinary');
      }
    }
    case 'INT64': case 'UINT64': return (v as bigint).toString();
    case 'FP16': case 'FP32': case 'FP64': {
      const n = datatype === 'FP16' ? halfToNumber(v as number) : (v as number);
      if (Number.isNaN(n)) return '"NaN"';
      if (n === Infinity) return '"Infinity"';
      if (n === -Infinity) return '"-Infinity"';
      return Object.is(n, -0) ? '-0' : String(n);
    }
    default: return String(v);
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

export interface EncodedRequest {
  body: string | Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
}

function checkInput(t: InputTensor): TensorData {
  const data = toTensorData(t.datatype, t.data);
  if (data.length !== elementCount(t.shape)) {
    throw new V2ProtocolError(`input '${t.name}': ${data.length} elements for shape [${t.shape.join(',')}]`);
  }
  return data;
}

function outputsJson(opts: InferOptions, binary: boolean): string | undefined {
  if (opts.outputs === undefined) return undefined;
  const list = opts.outputs.map((o) => {
    const req: RequestedOutput = typeof o === 'string' ? { name: o } : o;
    const parameters = binary ? { ...req.parameters, binary_data: true } : req.parameters;
    return parameters === undefined ? { name: req.name } : { name: req.name, parameters };
  });
  return JSON.stringify(list);
}

function requestParameters(opts: InferOptions, binary: boolean): Record<string, unknown> | undefined {
  if (binary && opts.outputs === undefined) return { ...opts.parameters, binary_data_output: true };
  return opts.parameters;
}

/** Assembles the request JSON text; `dataJson[i]` is the raw `data` text of input i, or undefined. */
function requestJson(inputs: readonly InputTensor[], dataJson: Array<string | undefined>, params: Array<Record<string, unknown> | undefined>, opts: InferOptions, binaryOutputs: boolean): string {
  const parts: string[] = [];
  if (opts.id !== undefined) parts.push(`"id":${JSON.stringify(opts.id)}`);
  const top = requestParameters(opts, binaryOutputs);
  if (top !== undefined) parts.push(`"parameters":${JSON.stringify(top)}`);
  const ins = inputs.map((t, i) => {
    let s = `{"name":${JSON.stringify(t.name)},"datatype":${JSON.stringify(t.datatype)},"shape":${JSON.stringify(t.shape)}`;
    const p = params[i];
    if (p !== undefined) s += `,"parameters":${JSON.stringify(p)}`;
    const d = dataJson[i];
    if (d !== undefined) s += `,"data":${d}`;
    return `${s}}`;
  });
  parts.push(`"inputs":[${ins.join(',')}]`);
  const outs = outputsJson(opts, binaryOutputs);
  if (outs !== undefined) parts.push(`"outputs":${outs}`);
  return `{${parts.join(',')}}`;
}

/** Builds a JSON-only request (all inputs in `data`). */
export function encodeJsonRequest(inputs: readonly InputTensor[], opts: InferOptions = {}): EncodedRequest {
  const dataJson = inputs.map((t) => {
    const data = checkInput(t);
    const items: string[] = new Array<string>(data.length);
    for (let i = 0; i < data.length; i++) items[i] = elementJson(t.datatype, data[i]!);
    return `[${items.join(',')}]`;
  });
  const body = requestJson(inputs, dataJson, inputs.map((t) => t.parameters), opts, opts.binaryOutputs ?? false);
  return { body, headers: { 'content-type': 'application/json' } };
}

/** Raw little-endian bytes of a tensor, as the binary extension carries it. */
export function tensorBytes(datatype: V2Datatype, data: TensorData): Uint8Array {
  assertLittleEndianHost();
  if (datatype === 'BYTES') {
    const elements = data as Uint8Array[];
    const out = Buffer.alloc(elements.reduce((n, e) => n + 4 + e.byteLength, 0));
    let off = 0;
    for (const e of elements) {
      out.writeUInt32LE(e.byteLength, off);
      out.set(e, off + 4);
      off += 4 + e.byteLength;
    }
    return out;
  }
  const arr = data as Exclude<TensorData, Uint8Array[]>;
  const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  return datatype === 'BOOL' ? bytes.map((b) => (b ? 1 : 0)) : bytes;
}

/** Builds a binary-extension request (every input as raw bytes after the JSON header). */
export function encodeBinaryRequest(inputs: readonly InputTensor[], opts: InferOptions = {}): EncodedRequest {
  const raws = inputs.map((t) => tensorBytes(t.datatype, checkInput(t)));
  const params = inputs.map((t, i) => ({ ...t.parameters, binary_data_size: raws[i]!.byteLength }));
  const header = Buffer.from(requestJson(inputs, [], params, opts, opts.binaryOutputs ?? true), 'utf8');
  return {
    body: Buffer.concat([header, ...raws]),
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.byteLength),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Responses

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function flatten(v: unknown): unknown[] {
  return Array.isArray(v) && v.some(Array.isArray) ? (v as unknown[]).flat(Infinity) : (v as unknown[]);
}

/** Reads fixed-size little-endian elements from `raw` (copied, so alignment does not matter). */
function fromBytes(datatype: V2Datatype, raw: Uint8Array, count: number, where: string): TensorData {
  assertLittleEndianHost();
  if (datatype === 'BYTES') {
    const out: Uint8Array[] = [];
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    let off = 0;
    while (off < raw.byteLength) {
      if (off + 4 > raw.byteLength) throw new V2ProtocolError(`${where}: truncated BYTES length prefix`);
      const len = view.getUint32(off, true);
      if (off + 4 + len > raw.byteLength) throw new V2ProtocolError(`${where}: BYTES element overruns the tensor`);
      out.push(raw.slice(off + 4, off + 4 + len));
      off += 4 + len;
    }
    if (out.length !== count) throw new V2ProtocolError(`${where}: ${out.length} BYTES elements, shape says ${count}`);
    return out;
  }
  const size = BYTE_SIZE[datatype];
  if (raw.byteLength !== count * size) {
    throw new V2ProtocolError(`${where}: ${raw.byteLength} bytes, shape needs ${count} x ${size}`);
  }
  const arr = newArray(datatype, count);
  new Uint8Array(arr.buffer).set(raw);
  if (datatype === 'BOOL' && (arr as Uint8Array).some((b) => b > 1)) throw new V2ProtocolError(`${where}: BOOL byte other than 0/1`);
  return arr;
}

function checkShape(shape: unknown, where: string): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new V2ProtocolError(`${where}: bad shape ${JSON.stringify(shape, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
  }
  return shape as number[];
}

/**
 * Decodes an infer response body: JSON, or (with `Inference-Header-Content-Length`) a JSON header
 * plus raw output bytes in output order for every output carrying `parameters.binary_data_size`.
 */
export function decodeInferResponse(status: number, headers: Headers, bytes: Uint8Array): InferResponse {
  const headerLength = headers.get('inference-header-content-length');
  let jsonEnd = bytes.byteLength;
  if (headerLength !== null) {
    jsonEnd = Number(headerLength);
    if (!Number.isSafeInteger(jsonEnd) || jsonEnd < 0 || jsonEnd > bytes.byteLength) {
      throw new V2ProtocolError(`Inference-Header-Content-Length ${headerLength} does not fit a ${bytes.byteLength}-byte body`);
    }
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, jsonEnd).toString('utf8');
  let body: unknown;
  try {
    body = parseJsonPrecise(text);
  } catch (err) {
    throw new V2ProtocolError(`response is not JSON (${(err as Error).message}): ${text.slice(0, 200)}`);
  }
  if (!isRecord(body)) throw new V2ProtocolError('response is not a JSON object');
  if (typeof body.model_name !== 'string') throw new V2ProtocolError('response has no model_name');
  if (!Array.isArray(body.outputs)) throw new V2ProtocolError('response has no outputs array');

  let off = jsonEnd;
  const outputs: OutputTensor[] = body.outputs.map((o: unknown, i: number) => {
    if (!isRecord(o) || typeof o.name !== 'string') throw new V2ProtocolError(`outputs[${i}] has no name`);
    const where = `output '${o.name}'`;
    if (typeof o.datatype !== 'string' || !(o.datatype in BYTE_SIZE)) throw new V2ProtocolError(`${where}: bad datatype ${String(o.datatype)}`);
    const datatype = o.datatype as V2Datatype;
    const shape = checkShape(o.shape, where);
    const count = elementCount(shape);
    const parameters = isRecord(o.parameters) ? o.parameters : undefined;
    const size = parameters?.binary_data_size;
    let data: TensorData;
    if (size !== undefined) {
      if (o.data !== undefined) throw new V2ProtocolError(`${where}: both data and binary_data_size`);
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || off + size > bytes.byteLength) {
        throw new V2ProtocolError(`${where}: binary_data_size ${String(size)} overruns the body`);
      }
      data = fromBytes(datatype, bytes.subarray(off, off + size), count, where);
      off += size;
    } else {
      if (!Array.isArray(o.data)) throw new V2ProtocolError(`${where}: no data`);
      const flat = flatten(o.data);
      if (flat.length !== count) throw new V2ProtocolError(`${where}: ${flat.length} elements for shape [${shape.join(',')}]`);
      data = fromElements(datatype, flat, where);
    }
    return parameters === undefined ? { name: o.name, datatype, shape, data } : { name: o.name, datatype, shape, data, parameters };
  });
  if (off !== bytes.byteLength) throw new V2ProtocolError(`${bytes.byteLength - off} unclaimed bytes after the outputs`);

  return {
    status,
    headers,
    modelName: body.model_name,
    modelVersion: typeof body.model_version === 'string' ? body.model_version : undefined,
    id: typeof body.id === 'string' ? body.id : undefined,
    outputs,
    parameters: isRecord(body.parameters) ? body.parameters : undefined,
    body,
    output(name: string): OutputTensor {
      const found = outputs.find((o) => o.name === name);
      if (found === undefined) throw new V2ProtocolError(`no output '${name}' (got ${outputs.map((o) => o.name).join(', ')})`);
      return found;
    },
  };
}

/** `POST {url}/v2/models/{model}[/versions/{v}]/infer` with an encoded request; decodes the answer. */
export async function sendInfer(url: string, model: string, req: EncodedRequest, opts: InferOptions = {}): Promise<InferResponse> {
  const version = opts.version === undefined ? '' : `/versions/${encodeURIComponent(opts.version)}`;
  const res = await fetch(`${url.replace(/\/$/, '')}/v2/models/${encodeURIComponent(model)}${version}/infer`, {
    method: 'POST',
    headers: { ...req.headers, ...opts.headers },
    body: req.body,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (!res.ok) {
    const text = Buffer.from(bytes).toString('utf8');
    let code: string | undefined;
    let message: string | undefined;
    try {
      const err = JSON.parse(text) as unknown;
      if (isRecord(err)) {
        code = typeof err.code === 'string' ? err.code : undefined;
        message = typeof err.error === 'string' ? err.error : undefined;
      }
    } catch {
      // not JSON: keep the text
    }
    throw new V2HttpError(res.status, text, code, message);
  }
  return decodeInferResponse(res.status, res.headers, bytes);
}

/** Inference with every input as JSON `data`; outputs as JSON unless `opts.binaryOutputs`. */
export function inferJson(url: string, model: string, inputs: readonly InputTensor[], opts: InferOptions = {}): Promise<InferResponse> {
  return sendInfer(url, model, encodeJsonRequest(inputs, opts), opts);
}

/** Inference with every input in the binary extension; outputs binary unless `binaryOutputs: false`. */
export function inferBinary(url: string, model: string, inputs: readonly InputTensor[], opts: InferOptions = {}): Promise<InferResponse> {
  return sendInfer(url, model, encodeBinaryRequest(inputs, opts), opts);
}
