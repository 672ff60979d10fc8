/**
 * Writes a deliberately slow ONNX model for overload tests: a chain of `layers` MatMuls of width
 * 1024 sharing one seeded weight matrix (so the file stays 4 MiB). Cost per row is about
 * layers × 2 MFLOP, i.e. milliseconds per row on one thread: slow enough to fill queues on cue.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeModel } from '../../models/build/onnx-writer.ts';
import { createRng } from '../../models/build/rng.ts';

export const SLOW_WIDTH = 1024;

export async function writeSlowModel(repo: string, name: string, layers: number, config: object): Promise<void> {
  const rng = createRng(7);
  const weights = Float32Array.from({ length: SLOW_WIDTH * SLOW_WIDTH }, () => rng.normal() / Math.sqrt(SLOW_WIDTH));
  const nodes = Array.from({ length: layers }, (_, i) => ({
    op: 'MatMul',
    inputs: [i === 0 ? 'x' : `h${i}`, 'w'],
    outputs: [i === layers - 1 ? 'y' : `h${i + 1}`],
  }));
  const bytes = encodeModel({
    name,
    inputs: [{ name: 'x', dims: ['N', SLOW_WIDTH] }],
    outputs: [{ name: 'y', dims: ['N', SLOW_WIDTH] }],
    initializers: [{ name: 'w', dims: [SLOW_WIDTH, SLOW_WIDTH], data: weights }],
    nodes,
  });
  await mkdir(join(repo, name, '1'), { recursive: true });
  await writeFile(join(repo, name, '1', 'model.onnx'), bytes);
  await writeFile(join(repo, name, 'config.json'), JSON.stringify(config));
}
