/**
 * V2 JSON tensor data <-> typed storage. Input `data` may be nested or flat (row-major); output is
 * always flat. Every element is checked for its type and range, so a bad value is a 400 naming the
 * tensor and the index, never a silent NaN or wrap-around.
 */
import { DATATYPE_INFO, type NumericArray, type TensorData, type V2Datatype } from '../../../shared/protocol/datatypes.ts';
import { InfergateError } from '../../../shared/errors.ts';
import { halfBitsToNumber, numberToHalfBits } from './fp16.ts';

const INTEGER_RANGES: Partial<Record<V2Datatype, readonly [number, number]>> = {
  UINT8: [0, 0xff], UINT16: [0, 0xffff], UINT32: [0, 0xffffffff],
  INT8: [-0x80, 0x7f], INT16: [-0x8000, 0x7fff], INT32: [-0x80000000, 0x7fffffff],
};
const BIGINT_RANGES: Partial<Record<V2Datatype, readonly [bigint, bigint]>> = {
  INT64: [-(1n << 63n), (1n << 63n) - 1n],
  UINT64: [0n, (1n << 64n) - 1n],
};
const NON_FINITE: Readonly<Record<string, number>> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

const utf8 = new TextEncoder();
/** With the `u` flag a surrogate pair is one code point, so only an unpaired surrogate matches. */
const LONE_SURROGATE = /\p{Cs}/u;
const utf8Decoder = new TextDecoder('utf-8');

function badTensor(name: string, message: string): InfergateError {
  return new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}': ${message}`);
}

/** Flattens nested arrays row-major into `out`, refusing nesting deeper than `maxDepth`. */
export function flattenData(name: string, data: unknown, maxDepth: number): unknown[] {
  if (!Array.isArray(data)) return [data]; // a rank-0 tensor may send its one value bare
  if (!data.some(Array.isArray)) return data; // already flat: the common case, no copy
  const out: unknown[] = [];
  const walk = (value: unknown[], depth: number): void => {
    if (depth > maxDepth) throw badTensor(name, `data is nested deeper than ${maxDepth} levels`);
    for (const item of value) {
      if (Array.isArray(item)) walk(item, depth + 1);
      else out.push(item);
    }
  };
  walk(data, 1);
  return out;
}

/** Decodes flat JSON values into storage for `datatype`; `values.length` is already checked. */
export function decodeJsonValues(name: string, datatype: V2Datatype, values: readonly unknown[]): TensorData {
  const n = values.length;
  switch (datatype) {
    case 'FP32':
    case 'FP64': {
      const out = datatype === 'FP32' ? new Float32Array(n) : new Float64Array(n);
      const limit = FINITE_LIMIT[datatype];
      for (let i = 0; i < n; i++) {
        const v = values[i];
        const x = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : nonFiniteOrThrow(name, datatype, v, i); // a long integer literal read exactly: rounded now
        if (!(Math.abs(x) < limit) && typeof v !== 'string') throw outOfRange(name, datatype, i);
        out[i] = x;
      }
      return out;
    }
    case 'FP16': {
      const out = new Uint16Array(n);
      const limit = FINITE_LIMIT.FP16;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        const x = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : nonFiniteOrThrow(name, datatype, v, i);
        if (!(Math.abs(x) < limit) && typeof v !== 'string') throw outOfRange(name, datatype, i);
        out[i] = numberToHalfBits(x);
      }
      return out;
    }
    case 'BOOL': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v === 'boolean') out[i] = v ? 1 : 0;
        else if (v === 0 || v === 1) out[i] = v;
        else throw badTensor(name, `element ${i} must be true or false, got ${describe(v)}`);
      }
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const out = datatype === 'INT64' ? new BigInt64Array(n) : new BigUint64Array(n);
      const [lo, hi] = BIGINT_RANGES[datatype]!;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        let big: bigint;
        if (typeof v === 'bigint') big = v;
        else if (typeof v === 'number' && Number.isInteger(v)) big = BigInt(v);
        else if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) big = BigInt(v); // some clients quote 64-bit integers
        else throw badTensor(name, `element ${i} must be an integer, got ${describe(v)}`);
        if (big < lo || big > hi) throw badTensor(name, `element ${i} (${big}) is out of range for ${datatype}`);
        out[i] = big;
      }
      return out;
    }
    case 'BYTES': {
      const out = new Array<Uint8Array>(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'string') throw badTensor(name, `element ${i} must be a string, got ${describe(v)}`);
        // A lone surrogate has no UTF-8 form: encoding would silently put U+FFFD in its place.
        if (LONE_SURROGATE.test(v)) throw badTensor(name, `element ${i} holds a lone UTF-16 surrogate, which is not text`);
        out[i] = utf8.encode(v);
      }
      return out;
    }
    default: {
      const [lo, hi] = INTEGER_RANGES[datatype]!;
      const out = new DATATYPE_INFO[datatype].array!(n) as Exclude<NumericArray, BigInt64Array | BigUint64Array>;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'number' || !Number.isInteger(v)) throw badTensor(name, `element ${i} must be an integer, got ${describe(v)}`);
        if (v < lo || v > hi) throw badTensor(name, `element ${i} (${v}) is out of range for ${datatype}`);
        out[i] = v;
      }
      return out;
    }
  }
}

/**
 * Magnitudes a JSON number must stay below to be finite in each float type: FP32's and FP16's
 * largest value plus half an ulp (it would round to infinity), and infinity itself for FP64 (a
 * literal like 1e400 parses as Infinity). Non-finite values must be asked for by name ("Infinity",
 * a string, decoded by nonFiniteOrThrow), never arrive by overflow.
 */
const FINITE_LIMIT = { FP16: 65520, FP32: 3.4028235677973366e38, FP64: Infinity } as const;

function outOfRange(name: string, datatype: V2Datatype, i: number): InfergateError {
  return badTensor(name, `element ${i} is out of range for ${datatype}`);
}

function nonFiniteOrThrow(name: string, datatype: V2Datatype, v: unknown, i: number): number {
  if (typeof v === 'string' && v in NON_FINITE) return NON_FINITE[v]!;
  throw badTensor(name, `element ${i} must be a number for ${datatype}, got ${describe(v)}`);
}

/**
 * A client's value for an error message, never by calling its own methods: `String({"toString": 1})`
 * throws, and `JSON.stringify` of 20 000 nested arrays overflows the stack.
 */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array (nesting does not match the shape)';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v).slice(0, 30)}`;
}

/**
 * Writes tensor data as the text of a flat JSON array. Integers beyond 2^53 are written exactly;
 * non-finite floats, which JSON cannot express, as the strings "NaN", "Infinity", "-Infinity".
 */
export function encodeJsonData(datatype: V2Datatype, data: TensorData): string {
  switch (datatype) {
    case 'BYTES':
      return `[${(data as Uint8Array[]).map((b) => JSON.stringify(utf8Decoder.decode(b))).join(',')}]`;
    case 'BOOL':
      return `[${Array.from(data as Uint8Array, (b) => (b !== 0 ? 'true' : 'false')).join(',')}]`;
    case 'FP16':
      return floatsToJson(Array.from(data as Uint16Array, halfBitsToNumber));
    case 'FP32':
    case 'FP64':
      return floatsToJson(data as Float32Array | Float64Array);
    default:
      return `[${Array.prototype.join.call(data, ',')}]`; // integer arrays, BigInt ones included, print exactly
  }
}

function floatsToJson(values: ArrayLike<number>): string {
  let finite = true;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) { finite = false; break; }
  }
  if (finite) return `[${Array.prototype.join.call(values, ',')}]`;
  return `[${Array.prototype.map.call(values, (v: number) => (Number.isFinite(v) ? String(v) : `"${v}"`)).join(',')}]`;
}

/** Each element as JSON text, for layouts other than a flat array (TF-Serving's nested lists). */
export function jsonElementTexts(datatype: V2Datatype, data: TensorData): string[] {
  const float = (v: number): string => (Number.isFinite(v) ? String(v) : `"${v}"`);
  switch (datatype) {
    case 'BYTES':
      return (data as Uint8Array[]).map((b) => JSON.stringify(utf8Decoder.decode(b)));
    case 'BOOL':
      return Array.from(data as Uint8Array, (b) => (b !== 0 ? 'true' : 'false'));
    case 'FP16':
      return Array.from(data as Uint16Array, (b) => float(halfBitsToNumber(b)));
    case 'FP32':
    case 'FP64':
      return Array.from(data as Float32Array, float);
    default:
      return Array.prototype.map.call(data, String) as string[];
  }
}
