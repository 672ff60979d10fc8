/**
 * Triton's classification extension: instead of the raw scores, return the top k classes of each
 * batch row as BYTES strings "score:index[:label]".
 */
import type { NumericArray, Tensor } from '../../shared/protocol/datatypes.ts';
import { halfBitsToNumber } from './codec/fp16.ts';

const utf8 = new TextEncoder();

export function classify(tensor: Tensor, k: number, batched: boolean, labels: readonly string[] | undefined): Tensor {
  if (tensor.datatype === 'BYTES' || tensor.datatype === 'BOOL') throw new Error(`output '${tensor.name}' is ${tensor.datatype} and cannot be classified`);
  const values = tensor.data as NumericArray;
  const rows = batched && tensor.shape.length > 0 ? tensor.shape[0]! : 1;
  const width = rows === 0 ? 0 : values.length / rows;
  const top = Math.min(k, width);
  const out: Uint8Array[] = [];
  for (let r = 0; r < rows; r++) {
    const scores = Array.from({ length: width }, (_, i) => {
      const v = values[r * width + i]!;
      return tensor.datatype === 'FP16' ? halfBitsToNumber(Number(v)) : Number(v);
    });
    const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, top);
    for (const i of order) out.push(utf8.encode(labels?.[i] !== undefined ? `${scores[i]}:${i}:${labels[i]}` : `${scores[i]}:${i}`));
  }
  return { name: tensor.name, datatype: 'BYTES', shape: batched ? [rows, top] : [top], data: out };
}
