/**
 * Triton's binary tensor extension: raw little-endian tensor bytes after the JSON header, whose
 * length is the `Inference-Header-Content-Length` header. BOOL is one byte per element, FP16 the
 * 16-bit pattern, BYTES each element as a 4-byte little-endian length then its bytes.
 * https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
 */
import { DATATYPE_INFO, type TensorData, type V2Datatype } from '../../../shared/protocol/datatypes.ts';
import { InfergateError } from '../../../shared/errors.ts';

/**
 * Copies raw bytes into aligned storage (a Buffer slice may sit at any offset): a new ArrayBuffer,
 * or one `allocate` returns (of exactly the byte length asked, e.g. from a StoragePool).
 */
export function decodeBinaryTensor(name: string, datatype: V2Datatype, count: number, bytes: Uint8Array, allocate?: (byteLength: number) => ArrayBuffer): TensorData {
  if (datatype === 'BYTES') return decodeBytesElements(name, count, bytes);
  const info = DATATYPE_INFO[datatype];
  const expected = count * info.byteSize;
  if (bytes.byteLength !== expected) {
    throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}': binary data is ${bytes.byteLength} bytes, shape and ${datatype} need ${expected}`);
  }
  const out = allocate === undefined ? new info.array!(count) : new info.array!(allocate(expected), 0, count);
  new Uint8Array(out.buffer, out.byteOffset, expected).set(bytes);
  if (datatype === 'BOOL') {
    for (let i = 0; i < count; i++) if ((out as Uint8Array)[i]! > 1) (out as Uint8Array)[i] = 1;
  }
  return out;
}

function decodeBytesElements(name: string, count: number, bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<Uint8Array>(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > bytes.byteLength) throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}': binary BYTES data ends before element ${i}`);
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.byteLength) throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}': element ${i} claims ${length} bytes past the end of its data`);
    out[i] = bytes.subarray(offset, offset + length);
    offset += length;
  }
  if (offset !== bytes.byteLength) throw new InfergateError('WK_ERR_BAD_TENSOR', `input '${name}': ${bytes.byteLength - offset} bytes left over after ${count} BYTES elements`);
  return out;
}

/** The raw bytes of a tensor, viewing typed storage without copying where possible. */
export function encodeBinaryTensor(datatype: V2Datatype, data: TensorData): Uint8Array {
  if (datatype !== 'BYTES') {
    const typed = data as Exclude<TensorData, Uint8Array[]>;
    return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  }
  const elements = data as Uint8Array[];
  let total = 0;
  for (const e of elements) total += 4 + e.byteLength;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const e of elements) {
    view.setUint32(offset, e.byteLength, true);
    out.set(e, offset + 4);
    offset += 4 + e.byteLength;
  }
  return out;
}
