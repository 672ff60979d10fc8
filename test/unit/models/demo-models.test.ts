/**
 * The committed demo models (models/<name>/): each one loads in onnxruntime-node, agrees with
 * the independent reference interpreter (test/helpers/reference-forward.ts) at batch 1 and 5,
 * is as good as models/README.md says, and is exactly what `npm run models` produces.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { loadIrisSplit } from '../../../models/build/iris.ts';
import { loadMnistSplit } from '../../../models/build/mnist.ts';
import { createRng } from '../../../models/build/rng.ts';
import { DEMO_MODEL_BUILDERS, writeDemoModels } from '../../../models/build/write-models.ts';
import { readModelConfig } from '../../../worker/repository/model-config.ts';
import { loadOnnxGraph, runReference, type RefTensor } from '../../helpers/reference-forward.ts';

const MODELS_DIR = fileURLToPath(new URL('../../../models/', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const modelPath = (name: string) => join(MODELS_DIR, name, '1', 'model.onnx');

/**
 * onnxruntime computes in float32 (its own summation order, maybe FMA); the reference sums in
 * float64 and rounds each node's output to float32. Both stay within ~1e-6 relative of the exact
 * result for these sums (at most 784 terms of O(1) magnitude), so 1e-4 relative (plus 1e-4
 * absolute near zero) only fails on a real disagreement: a wrong layout, axis or missing bias.
 */
const TOLERANCE = 1e-4;

/** Five samples per model, without the batch axis; the first one alone is the batch-1 case. */
const SAMPLES: Record<string, () => Float32Array[]> = {
  iris: () => loadIrisSplit().test.inputs.slice(0, 5),
  mnist: () => loadMnistSplit().test.inputs.slice(0, 5),
  'house-price': () => [480, 1234.5, 2000, 3000, 10_000].map((sqft) => new Float32Array([sqft])),
  cifar10: () => {
    const rng = createRng(7);
    return Array.from({ length: 5 }, () => new Float32Array(3 * 32 * 32).map(() => rng.next()));
  },
};

function stack(samples: Float32Array[], sampleDims: number[]): RefTensor {
  const data = new Float32Array(samples.length * (samples[0]?.length ?? 0));
  samples.forEach((s, i) => data.set(s, i * s.length));
  return { dims: [samples.length, ...sampleDims], data };
}

async function runOrt(session: InferenceSession, input: string, tensor: RefTensor): Promise<Record<string, RefTensor>> {
  const results = await session.run({ [input]: new Tensor('float32', tensor.data, tensor.dims) });
  return Object.fromEntries(Object.entries(results).map(([name, t]) => [name, { dims: [...t.dims], data: t.data as Float32Array }]));
}

function assertClose(actual: RefTensor, expected: RefTensor, what: string): void {
  assert.deepEqual(actual.dims, expected.dims, `${what}: dims`);
  actual.data.forEach((a, i) => {
    const e = expected.data[i] as number;
    assert.ok(Math.abs(a - e) <= TOLERANCE * (1 + Math.abs(e)), `${what}[${i}]: onnxruntime ${a}, reference ${e}`);
  });
}

function argmaxRows(t: RefTensor): number[] {
  const width = t.dims[1] as number;
  return Array.from({ length: t.dims[0] as number }, (_, r) => {
    const row = Array.from(t.data.subarray(r * width, (r + 1) * width));
    return row.indexOf(Math.max(...row));
  });
}

async function openSession(t: { after(fn: () => Promise<void>): void }, name: string): Promise<InferenceSession> {
  const session = await InferenceSession.create(modelPath(name));
  t.after(() => session.release());
  return session;
}

for (const name of Object.keys(DEMO_MODEL_BUILDERS)) {
  describe(`demo model ${name}`, () => {
    test('onnxruntime agrees with the reference interpreter at batch 1 and 5', async (t) => {
      const graph = await loadOnnxGraph(modelPath(name));
      const session = await openSession(t, name);
      const [input] = graph.inputs;
      assert.ok(input && graph.inputs.length === 1, 'one input');
      assert.equal(input.dims[0], 'N', 'dynamic batch axis on the input');
      for (const output of graph.outputs) assert.equal(output.dims[0], 'N', `dynamic batch axis on ${output.name}`);
      assert.deepEqual(session.inputNames, [input.name]);

      const samples = (SAMPLES[name] as () => Float32Array[])();
      for (const batch of [samples.slice(0, 1), samples]) {
        const tensor = stack(batch, input.dims.slice(1).map(Number));
        const reference = runReference(graph, { [input.name]: tensor });
        const actual = await runOrt(session, input.name, tensor);
        for (const output of graph.outputs) {
          assertClose(actual[output.name] as RefTensor, reference[output.name] as RefTensor, `${name} batch ${batch.length} ${output.name}`);
        }
      }
    });

    test('config.json is valid and labels match the output width', async () => {
      const config = await readModelConfig(join(MODELS_DIR, name, 'config.json'));
      const graph = await loadOnnxGraph(modelPath(name));
      assert.ok(config.maxBatchSize > 0 && config.dynamicBatching, 'batching enabled');
      for (const [output, labels] of Object.entries(config.labels)) {
        const spec = graph.outputs.find((o) => o.name === output);
        assert.ok(spec, `labels for unknown output ${output}`);
        assert.equal(labels.length, spec.dims[spec.dims.length - 1]);
      }
    });
  });
}

test('iris: held-out accuracy through onnxruntime is at least 0.9', async (t) => {
  const session = await openSession(t, 'iris');
  const { test: heldOut } = loadIrisSplit();
  const { probabilities } = await runOrt(session, 'features', stack(heldOut.inputs, [4]));
  const correct = argmaxRows(probabilities as RefTensor).filter((p, i) => p === heldOut.labels[i]).length;
  assert.ok(correct / heldOut.labels.length >= 0.9, `${correct}/${heldOut.labels.length}`);
});

test('mnist: held-out accuracy through onnxruntime is at least 0.95', async (t) => {
  const session = await openSession(t, 'mnist');
  const { test: heldOut } = loadMnistSplit();
  const { probabilities } = await runOrt(session, 'image', stack(heldOut.inputs, [1, 28, 28]));
  const correct = argmaxRows(probabilities as RefTensor).filter((p, i) => p === heldOut.labels[i]).length;
  assert.ok(correct / heldOut.labels.length >= 0.95, `${correct}/${heldOut.labels.length}`);
});

test('mnist: the held-out fixture digits are classified as labelled', async (t) => {
  const session = await openSession(t, 'mnist');
  const fixture = JSON.parse(await readFile(join(REPO_ROOT, 'test/fixtures/mnist-heldout.json'), 'utf8')) as {
    samples: Array<{ label: number; pixels: number[] }>;
  };
  assert.equal(fixture.samples.length, 20);
  const images = fixture.samples.map((s) => Float32Array.from(s.pixels));
  const { probabilities } = await runOrt(session, 'image', stack(images, [1, 28, 28]));
  assert.deepEqual(argmaxRows(probabilities as RefTensor), fixture.samples.map((s) => s.label));
});

test('house-price: predictions follow the synthetic market', async (t) => {
  const session = await openSession(t, 'house-price');
  const sqft = [1000, 2000, 3000];
  const { price } = await runOrt(session, 'sqft', { dims: [3, 1], data: Float32Array.from(sqft) });
  // Truth is 50 000 + 150 * sqft. With 200 houses, sqft ~ U[500, 3500] and noise sigma 20 000,
  // the fitted line's standard error is ~1.6 k USD at 1 000 and 3 000 sqft and ~1.4 k at the mean
  // (2 000), so 10 k USD is a margin of more than 5 standard errors.
  sqft.forEach((s, i) => {
    const predicted = (price as RefTensor).data[i] as number;
    assert.ok(Math.abs(predicted - (50_000 + 150 * s)) < 10_000, `${s} sqft -> ${predicted}`);
  });
});

test('rebuilding gives byte-identical models, configs and fixture', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'infergate-models-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  await writeDemoModels(join(out, 'models'), { fixturesRoot: out });
  const files = Object.keys(DEMO_MODEL_BUILDERS).flatMap((name) => [`models/${name}/1/model.onnx`, `models/${name}/config.json`]);
  for (const file of [...files, 'test/fixtures/mnist-heldout.json']) {
    const fresh = await readFile(join(out, file));
    const committed = await readFile(join(REPO_ROOT, file));
    assert.ok(fresh.equals(committed), `${file} differs from a fresh build: run npm run models`);
  }
});
