/**
 * Small ONNX models with non-FP32 tensors, written into a test repository: what the demo models
 * (all FP32 in, FP32 out) cannot exercise.
 *
 * - `flags`: IsNaN, FP32 [N,4] in → BOOL [N,4] out.
 * - `words`: Identity on strings, BYTES [N] in → BYTES [N] out.
 * - `uniq`: Unique (sorted) of FP32 [N]: `y` FP32 [M], `inverse` INT64 [N], `counts` INT64 [M], so
 *   its outputs differ in their first dimension.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeModel, type GraphSpec } from '../../models/build/onnx-writer.ts';

const MODELS: readonly GraphSpec[] = [
  {
    name: 'flags',
    inputs: [{ name: 'x', dims: ['N', 4] }],
    outputs: [{ name: 'nan', dims: ['N', 4], elemType: 'BOOL' }],
    initializers: [],
    nodes: [{ op: 'IsNaN', inputs: ['x'], outputs: ['nan'] }],
  },
  {
    name: 'words',
    inputs: [{ name: 'text', dims: ['N'], elemType: 'STRING' }],
    outputs: [{ name: 'same', dims: ['N'], elemType: 'STRING' }],
    initializers: [],
    nodes: [{ op: 'Identity', inputs: ['text'], outputs: ['same'] }],
  },
  {
    name: 'uniq',
    inputs: [{ name: 'x', dims: ['N'] }],
    outputs: [{ name: 'y', dims: ['M'] }, { name: 'inverse', dims: ['N'], elemType: 'INT64' }, { name: 'counts', dims: ['M'], elemType: 'INT64' }],
    initializers: [],
    nodes: [{ op: 'Unique', inputs: ['x'], outputs: ['y', '', 'inverse', 'counts'], attributes: { sorted: 1 } }],
  },
];

export const TYPED_MODEL_NAMES = MODELS.map((m) => m.name);

export async function writeTypedModels(repo: string): Promise<void> {
  for (const spec of MODELS) {
    await mkdir(join(repo, spec.name, '1'), { recursive: true });
    await writeFile(join(repo, spec.name, '1', 'model.onnx'), encodeModel(spec));
    await writeFile(join(repo, spec.name, 'config.json'), JSON.stringify({ maxBatchSize: 0 }));
  }
}
