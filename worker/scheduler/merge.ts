/**
 * Concatenating request tensors along the batch dimension, and splitting a batched output back into
 * per-request pieces. Pure functions; the batcher decides what to merge.
 */
import { DATATYPE_INFO, type NumericArray, type Tensor, type TensorData } from '../../shared/protocol/datatypes.ts';

/** Concatenates same-named tensors (same datatype, same non-batch dims) along dim 0. */
export function concatBatch(parts: readonly Tensor[]): Tensor {
  const first = parts[0]!;
  if (parts.length === 1) return first;
  const rows = parts.reduce((sum, t) => sum + t.shape[0]!, 0);
  const shape = [rows, ...first.shape.slice(1)];
  let data: TensorData;
  if (first.datatype === 'BYTES') {
    data = parts.flatMap((t) => t.data as Uint8Array[]);
  } else {
    const total = parts.reduce((sum, t) => sum + (t.data as NumericArray).length, 0);
    const out = new DATATYPE_INFO[first.datatype].array!(total);
    let offset = 0;
    for (const t of parts) {
      (out as Float32Array).set(t.data as Float32Array, offset);
      offset += (t.data as NumericArray).length;
    }
    data = out;
  }
  return { name: first.name, datatype: first.datatype, shape, data };
}

/** Cuts a batched output into pieces of `rowsPerPart[i]` rows each. */
export function splitBatch(tensor: Tensor, rowsPerPart: readonly number[]): Tensor[] {
  if (rowsPerPart.length === 1) return [tensor];
  const total = tensor.shape[0];
  const sum = rowsPerPart.reduce((a, b) => a + b, 0);
  if (total !== sum) throw new Error(`output '${tensor.name}' has ${total} rows for a batch of ${sum}; the model does not batch along dim 0`);
  const rowSize = tensor.shape.slice(1).reduce((a, b) => a * b, 1);
  const pieces: Tensor[] = [];
  let row = 0;
  for (const rows of rowsPerPart) {
    const start = row * rowSize;
    const end = (row + rows) * rowSize;
    const data = tensor.datatype === 'BYTES'
      ? (tensor.data as Uint8Array[]).slice(start, end)
      : (tensor.data as NumericArray).subarray(start, end);
    pieces.push({ name: tensor.name, datatype: tensor.datatype, shape: [rows, ...tensor.shape.slice(1)], data });
    row += rows;
  }
  return pieces;
}

/** Requests can share a run only when every input agrees on all dims but the first, and they ask for the same outputs. */
export function batchSignature(inputs: readonly Tensor[], outputNames: readonly string[]): string {
  let key = outputNames.join('\u0000');
  for (const t of inputs) key += `|${t.name}:${t.shape.slice(1).join('x')}`;
  return key;
}
