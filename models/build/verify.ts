/**
 * Loads a freshly written model in onnxruntime-node and checks it against the build's own idea
 * of it: batch 1 and batch 5 run, output shapes are [batch, ...], a sample gives the same answer
 * alone as in a batch, and every answer matches the training code's forward pass.
 *
 * Tolerance: |ort - ts| <= 1e-4 * (1 + |ts|). The TS pass runs in float64 over float32 weights,
 * onnxruntime in float32; for these depths (<= 5 layers, <= 784-term sums of O(1) terms) float32
 * accumulation error stays around 1e-6 relative, so 1e-4 leaves a wide margin while still
 * catching a wrong layout or a missing bias.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import type { DemoModel } from './demo-model.ts';

const TOLERANCE = 1e-4;

export interface VerifyResult {
  /** Largest |ort - ts| seen, or undefined when the model has no TS forward pass to compare with. */
  maxAbsDiff: number | undefined;
}

export async function verifyModel(modelPath: string, model: DemoModel): Promise<VerifyResult> {
  const session = await InferenceSession.create(modelPath);
  try {
    const [input] = model.graph.inputs;
    const [output] = model.graph.outputs;
    if (!input || !output || model.graph.inputs.length !== 1) throw new Error(`${model.name}: expected exactly one input`);
    const sampleDims = input.dims.slice(1).map(Number);
    const { samples, expected } = model.check;

    const run = async (batch: Float32Array[]): Promise<Float32Array[]> => {
      const data = new Float32Array(batch.reduce((n, s) => n + s.length, 0));
      batch.reduce((offset, s) => (data.set(s, offset), offset + s.length), 0);
      const result = await session.run({ [input.name]: new Tensor('float32', data, [batch.length, ...sampleDims]) });
      const tensor = result[output.name];
      if (!tensor || tensor.dims[0] !== batch.length) throw new Error(`${model.name}: output ${output.name} has dims [${tensor?.dims}]`);
      const flat = tensor.data as Float32Array;
      const width = flat.length / batch.length;
      return batch.map((_, i) => flat.subarray(i * width, (i + 1) * width));
    };

    const single = await run(samples.slice(0, 1));
    const batched = await run(samples);
    compare(`${model.name}: batch 1 vs batch ${samples.length}`, single[0] as Float32Array, batched[0] as Float32Array);

    let maxAbsDiff: number | undefined;
    batched.forEach((row, i) => {
      if (!row.every(Number.isFinite)) throw new Error(`${model.name}: non-finite output for sample ${i}`);
      if (output.name === 'probabilities') {
        const sum = row.reduce((a, b) => a + b, 0);
        if (Math.abs(sum - 1) > TOLERANCE) throw new Error(`${model.name}: probabilities of sample ${i} sum to ${sum}`);
      }
      if (expected) maxAbsDiff = Math.max(maxAbsDiff ?? 0, compare(`${model.name}: sample ${i}`, row, expected(samples[i] as Float32Array)));
    });
    return { maxAbsDiff };
  } finally {
    await session.release();
  }
}

/** Throws when two rows differ beyond TOLERANCE; returns the largest absolute difference. */
function compare(what: string, actual: ArrayLike<number>, wanted: ArrayLike<number>): number {
  if (actual.length !== wanted.length) throw new Error(`${what}: ${actual.length} values, expected ${wanted.length}`);
  let max = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const w = wanted[i] as number;
    const diff = Math.abs(a - w);
    if (diff > TOLERANCE * (1 + Math.abs(w))) throw new Error(`${what}: value ${i} is ${a}, expected ${w}`);
    max = Math.max(max, diff);
  }
  return max;
}
