/**
 * Tensors laid out in shared memory, so that a run crosses to its session thread without a
 * structured clone (see session-ring.ts). A frame is a Float64 header followed by each tensor's
 * bytes, 8-byte aligned so that every typed-array view is legal:
 *
 *   [tensor count, extra count, the extra numbers (a request's output indices), then per tensor:
 *    datatype code, name index, rank, byte offset, byte length, dims…] [tensor bytes…]
 *
 * Names travel as indices into the model's input or output list, known to both sides. Float64 holds
 * any dimension exactly. BYTES elements are written as in Triton's binary extension: a 4-byte
 * little-endian length, then the bytes.
 */
import { DATATYPE_INFO, V2_DATATYPES, type TensorData, type V2Datatype } from '../../shared/protocol/datatypes.ts';

export interface FrameTensor {
  /** Index of the tensor's name in the model's input (request) or output (response) list. */
  index: number;
  datatype: V2Datatype;
  shape: number[];
  data: TensorData;
}

export interface Frame {
  tensors: FrameTensor[];
  extra: number[];
}

const align8 = (n: number): number => (n + 7) & ~7;
const CODE_OF: Readonly<Record<V2Datatype, number>> = Object.fromEntries(V2_DATATYPES.map((d, i) => [d, i])) as Record<V2Datatype, number>;

function dataBytes(tensor: FrameTensor): number {
  if (tensor.datatype !== 'BYTES') return (tensor.data as Exclude<TensorData, Uint8Array[]>).byteLength;
  let total = 0;
  for (const element of tensor.data as Uint8Array[]) total += 4 + element.byteLength;
  return total;
}

function headerBytes(tensors: readonly FrameTensor[], extra: readonly number[]): number {
  let slots = 2 + extra.length;
  for (const t of tensors) slots += 5 + t.shape.length;
  return slots * 8;
}

/** Bytes a frame of these tensors needs. */
export function frameBytes(tensors: readonly FrameTensor[], extra: readonly number[] = []): number {
  let total = headerBytes(tensors, extra);
  for (const t of tensors) total += align8(dataBytes(t));
  return total;
}

/** Writes a frame at the start of `buffer`, which must hold `frameBytes(tensors, extra)`. */
export function writeFrame(buffer: SharedArrayBuffer, tensors: readonly FrameTensor[], extra: readonly number[] = []): void {
  const header = new Float64Array(buffer, 0, headerBytes(tensors, extra) / 8);
  const bytes = new Uint8Array(buffer);
  let h = 0;
  let offset = header.byteLength;
  header[h++] = tensors.length;
  header[h++] = extra.length;
  for (const n of extra) header[h++] = n;
  for (const t of tensors) {
    const length = dataBytes(t);
    header[h++] = CODE_OF[t.datatype];
    header[h++] = t.index;
    header[h++] = t.shape.length;
    header[h++] = offset;
    header[h++] = length;
    for (const d of t.shape) header[h++] = d;
    if (t.datatype === 'BYTES') writeElements(buffer, offset, t.data as Uint8Array[]);
    else {
      const typed = t.data as Exclude<TensorData, Uint8Array[]>;
      bytes.set(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength), offset);
    }
    offset += align8(length);
  }
}

function writeElements(buffer: SharedArrayBuffer, offset: number, elements: readonly Uint8Array[]): void {
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  for (const element of elements) {
    view.setUint32(offset, element.byteLength, true);
    bytes.set(element, offset + 4);
    offset += 4 + element.byteLength;
  }
}

/**
 * Reads a frame back. By default tensor data is copied out into storage of its own: the slot is
 * overwritten by a later run. With `copy` false numeric data stays a view on the shared buffer,
 * valid only until the slot is reused (the session thread copies it into buffers it reuses, since
 * onnxruntime-node refuses views on shared memory); BYTES elements are always copied.
 */
export function readFrame(buffer: SharedArrayBuffer, copy = true): Frame {
  const head = new Float64Array(buffer);
  const count = head[0]!;
  const extraCount = head[1]!;
  const extra = new Array<number>(extraCount);
  for (let i = 0; i < extraCount; i++) extra[i] = head[2 + i]!;
  const tensors: FrameTensor[] = [];
  let h = 2 + extraCount;
  for (let i = 0; i < count; i++) {
    const datatype = V2_DATATYPES[head[h++]!]!;
    const index = head[h++]!;
    const rank = head[h++]!;
    const offset = head[h++]!;
    const length = head[h++]!;
    const shape = new Array<number>(rank);
    for (let d = 0; d < rank; d++) shape[d] = head[h + d]!;
    h += rank;
    let data: TensorData;
    if (datatype === 'BYTES') data = readElements(buffer, offset, length);
    else {
      const view = new DATATYPE_INFO[datatype].array!(buffer as ArrayBufferLike as ArrayBuffer, offset, length / DATATYPE_INFO[datatype].byteSize);
      data = copy ? view.slice() : view;
    }
    tensors.push({ index, datatype, shape, data });
  }
  return { tensors, extra };
}

function readElements(buffer: SharedArrayBuffer, offset: number, length: number): Uint8Array[] {
  const view = new DataView(buffer);
  const out: Uint8Array[] = [];
  const end = offset + length;
  while (offset < end) {
    const size = view.getUint32(offset, true);
    out.push(new Uint8Array(buffer, offset + 4, size).slice());
    offset += 4 + size;
  }
  return out;
}
