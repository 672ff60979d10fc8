/**
 * The thirteen KServe V2 tensor datatypes and how each is held in memory.
 * Numeric tensors live in typed arrays; FP16 as raw 16-bit patterns (Uint16Array), INT64/UINT64 as
 * BigInt arrays so no value beyond 2^53 loses precision; BOOL as one byte per element; BYTES as an
 * array of byte strings.
 */
export const V2_DATATYPES = [
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES',
] as const;

export type V2Datatype = (typeof V2_DATATYPES)[number];

export type NumericArray =
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array
  | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Float32Array | Float64Array;

/** Tensor contents: a typed array, or for BYTES one Uint8Array per element. */
export type TensorData = NumericArray | Uint8Array[];

export interface Tensor {
  name: string;
  datatype: V2Datatype;
  shape: number[];
  data: TensorData;
}

type TypedArrayConstructor =
  | Uint8ArrayConstructor | Uint16ArrayConstructor | Uint32ArrayConstructor | BigUint64ArrayConstructor
  | Int8ArrayConstructor | Int16ArrayConstructor | Int32ArrayConstructor | BigInt64ArrayConstructor
  | Float32ArrayConstructor | Float64ArrayConstructor;

interface DatatypeInfo {
  /** Bytes per element in the binary tensor extension; 0 for BYTES (length-prefixed). */
  byteSize: number;
  /** Storage, or undefined for BYTES. */
  array: TypedArrayConstructor | undefined;
  /** The name onnxruntime uses for this type. */
  ortType: string;
  /** The ONNX TensorProto.DataType enum value. */
  onnxElemType: number;
}

export const DATATYPE_INFO: Readonly<Record<V2Datatype, DatatypeInfo>> = {
  BOOL: { byteSize: 1, array: Uint8Array, ortType: 'bool', onnxElemType: 9 },
  UINT8: { byteSize: 1, array: Uint8Array, ortType: 'uint8', onnxElemType: 2 },
  UINT16: { byteSize: 2, array: Uint16Array, ortType: 'uint16', onnxElemType: 4 },
  UINT32: { byteSize: 4, array: Uint32Array, ortType: 'uint32', onnxElemType: 12 },
  UINT64: { byteSize: 8, array: BigUint64Array, ortType: 'uint64', onnxElemType: 13 },
  INT8: { byteSize: 1, array: Int8Array, ortType: 'int8', onnxElemType: 3 },
  INT16: { byteSize: 2, array: Int16Array, ortType: 'int16', onnxElemType: 5 },
  INT32: { byteSize: 4, array: Int32Array, ortType: 'int32', onnxElemType: 6 },
  INT64: { byteSize: 8, array: BigInt64Array, ortType: 'int64', onnxElemType: 7 },
  FP16: { byteSize: 2, array: Uint16Array, ortType: 'float16', onnxElemType: 10 },
  FP32: { byteSize: 4, array: Float32Array, ortType: 'float32', onnxElemType: 1 },
  FP64: { byteSize: 8, array: Float64Array, ortType: 'float64', onnxElemType: 11 },
  BYTES: { byteSize: 0, array: undefined, ortType: 'string', onnxElemType: 8 },
};

const ORT_TO_V2: Readonly<Record<string, V2Datatype>> = Object.fromEntries(
  V2_DATATYPES.map((dt) => [DATATYPE_INFO[dt].ortType, dt]),
);

export function isV2Datatype(value: unknown): value is V2Datatype {
  return typeof value === 'string' && (V2_DATATYPES as readonly string[]).includes(value);
}

/** Maps an onnxruntime type name to V2, or undefined for types V2 cannot express (e.g. bfloat16). */
export function v2FromOrtType(ortType: string): V2Datatype | undefined {
  return ORT_TO_V2[ortType];
}

/** Product of dims; 1 for a scalar (rank 0). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Allocates zeroed storage for `count` elements of a datatype. */
export function allocate(datatype: V2Datatype, count: number): TensorData {
  const ctor = DATATYPE_INFO[datatype].array;
  if (ctor === undefined) return new Array<Uint8Array>(count).fill(new Uint8Array(0));
  return new ctor(count);
}
