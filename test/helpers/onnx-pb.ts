/**
 * Decodes a serialized ONNX `TensorProto` (the `input_<i>.pb` / `output_<i>.pb` files of ONNX's
 * backend test data) into the same in-memory shape infergate uses for V2 tensors
 * (see shared/protocol/datatypes.ts): typed arrays for numbers, FP16 as raw 16-bit patterns,
 * INT64/UINT64 as BigInt arrays (exact beyond 2^53), BOOL as one byte per element, and
 * BYTES/STRING as one Uint8Array per element.
 *
 * Example:
 *   const t = decodeTensorProto(await readFile('node/test_add_int8/test_data_set_0/input_0.pb'));
 *   // { name: 'x', dims: [3, 4, 5], elemType: 3, datatype: 'INT8', values: Int8Array(60) [...] }
 *
 * The layout rules come from onnx.proto (onnx/onnx, `message TensorProto`):
 * - `raw_data` holds the values little-endian, packed, whatever the element type (never strings).
 * - Otherwise a typed field does: `float_data` (FLOAT; COMPLEX64), `int32_data` (INT32, INT16, INT8,
 *   UINT16, UINT8, BOOL, FLOAT16 and BFLOAT16 as their bit patterns), `int64_data` (INT64),
 *   `uint64_data` (UINT32, UINT64), `double_data` (DOUBLE), `string_data` (STRING).
 */
import onnxProto from 'onnx-proto';
import type { V2Datatype, TensorData } from '../../shared/protocol/datatypes.ts';

const { onnx } = onnxProto;

/** ONNX `TensorProto.DataType` values that have a KServe V2 counterpart. */
export const ONNX_TO_V2: Readonly<Record<number, V2Datatype>> = {
  1: 'FP32', // FLOAT
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'BYTES', // STRING
  9: 'BOOL',
  10: 'FP16', // FLOAT16
  11: 'FP64', // DOUBLE
  12: 'UINT32',
  13: 'UINT64',
};

export interface DecodedTensor {
  /** The tensor's `name` field (the graph input/output it belongs to). */
  name: string;
  dims: number[];
  /** ONNX `TensorProto.DataType` enum value. */
  elemType: number;
  /** The matching KServe V2 datatype. */
  datatype: V2Datatype;
  values: TensorData;
}

/** protobufjs 6 hands out 64-bit fields as `Long` (when the `long` package is present) or as numbers. */
interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
}

function toBigInt(value: number | LongLike, unsigned: boolean): bigint {
  let big: bigint;
  if (typeof value === 'number') {
    // Without `long`, protobufjs rounds 64-bit values to the nearest double: refuse rather than guess.
    if (!Number.isSafeInteger(value)) throw new Error(`64-bit value ${value} was decoded without full precision`);
    big = BigInt(value);
  } else {
    big = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
  }
  return unsigned ? BigInt.asUintN(64, big) : BigInt.asIntN(64, big);
}

function toDim(value: number | LongLike): number {
  const big = toBigInt(value, false);
  if (big < 0n || big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`invalid dimension ${big}`);
  return Number(big);
}

const BYTE_SIZE: Readonly<Record<Exclude<V2Datatype, 'BYTES'>, number>> = {
  BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8,
};

/** Reads `count` little-endian values of `datatype` from `raw`. */
function fromRaw(datatype: Exclude<V2Datatype, 'BYTES'>, raw: Uint8Array, count: number): TensorData {
  const size = BYTE_SIZE[datatype];
  if (raw.byteLength !== count * size) {
    throw new Error(`raw_data has ${raw.byteLength} bytes, expected ${count} x ${size}`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return Uint8Array.from(raw);
    case 'INT8':
      return Int8Array.from(raw, (b) => (b << 24) >> 24);
    case 'UINT16':
    case 'FP16':
      return Uint16Array.from({ length: count }, (_, i) => view.getUint16(i * 2, true));
    case 'INT16':
      return Int16Array.from({ length: count }, (_, i) => view.getInt16(i * 2, true));
    case 'UINT32':
      return Uint32Array.from({ length: count }, (_, i) => view.getUint32(i * 4, true));
    case 'INT32':
      return Int32Array.from({ length: count }, (_, i) => view.getInt32(i * 4, true));
    case 'FP32':
      return Float32Array.from({ length: count }, (_, i) => view.getFloat32(i * 4, true));
    case 'UINT64':
      return BigUint64Array.from({ length: count }, (_, i) => view.getBigUint64(i * 8, true));
    case 'INT64':
      return BigInt64Array.from({ length: count }, (_, i) => view.getBigInt64(i * 8, true));
    case 'FP64':
      return Float64Array.from({ length: count }, (_, i) => view.getFloat64(i * 8, true));
  }
}

/** Reads the values from the typed repeated field that onnx.proto assigns to the element type. */
function fromFields(datatype: V2Datatype, t: InstanceType<typeof onnx.TensorProto>): TensorData {
  const int64s = t.int64Data as Array<number | LongLike>;
  const uint64s = t.uint64Data as Array<number | LongLike>;
  switch (datatype) {
    case 'BYTES':
      return t.stringData.map((s) => Uint8Array.from(s));
    case 'FP32':
      return Float32Array.from(t.floatData);
    case 'FP64':
      return Float64Array.from(t.doubleData);
    // int32_data carries every narrower integer, BOOL and the FP16 bit pattern; the typed-array
    // conversion keeps the low bits, which is what the field stores (as a non-negative value).
    case 'BOOL':
      return Uint8Array.from(t.int32Data, (v) => (v ? 1 : 0));
    case 'UINT8':
      return Uint8Array.from(t.int32Data);
    case 'INT8':
      return Int8Array.from(t.int32Data);
    case 'UINT16':
    case 'FP16':
      return Uint16Array.from(t.int32Data);
    case 'INT16':
      return Int16Array.from(t.int32Data);
    case 'INT32':
      return Int32Array.from(t.int32Data);
    case 'INT64':
      return BigInt64Array.from(int64s, (v) => toBigInt(v, false));
    case 'UINT32':
      return Uint32Array.from(uint64s, (v) => Number(toBigInt(v, true)));
    case 'UINT64':
      return BigUint64Array.from(uint64s, (v) => toBigInt(v, true));
  }
}

/** Decodes one serialized `TensorProto`. Throws on types V2 cannot express or on inconsistent data. */
export function decodeTensorProto(bytes: Uint8Array): DecodedTensor {
  const t = onnx.TensorProto.decode(bytes);
  const elemType = t.dataType;
  const datatype = ONNX_TO_V2[elemType];
  if (datatype === undefined) throw new Error(`TensorProto '${t.name}': element type ${elemType} has no V2 datatype`);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new Error(`TensorProto '${t.name}': external data is not supported`);
  }
  const dims = (t.dims as Array<number | LongLike>).map(toDim);
  const count = dims.reduce((n, d) => n * d, 1);
  const raw = t.rawData;
  const values =
    datatype !== 'BYTES' && raw !== undefined && raw !== null && raw.byteLength > 0
      ? fromRaw(datatype, raw, count)
      : fromFields(datatype, t);
  if (values.length !== count) {
    throw new Error(`TensorProto '${t.name}': ${values.length} values for dims [${dims.join(',')}] (${count})`);
  }
  return { name: t.name, dims, elemType, datatype, values };
}
