// The demo models served by a real worker give what an independent TypeScript forward pass of the
// same ONNX file computes (test/helpers/reference-forward.ts), for batches of several rows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DEMO_MODELS, startWorker, type RunningProcess } from '../../helpers/processes.ts';
import { loadOnnxGraph, runReference } from '../../helpers/reference-forward.ts';
import { inferBinary } from '../../helpers/v2-client.ts';

let worker: RunningProcess;
before(async () => {
  worker = await startWorker(undefined, DEMO_MODELS);
});
after(() => worker.stop());

/** Seeded inputs in the model's value range. */
function seededInput(count: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * scale;
  });
}

const MODELS = [
  { name: 'iris', input: 'features', output: 'probabilities', rowShape: [4], scale: 8 },
  { name: 'mnist', input: 'image', output: 'probabilities', rowShape: [1, 28, 28], scale: 1 },
  { name: 'house-price', input: 'sqft', output: 'price', rowShape: [1], scale: 4000 },
  { name: 'cifar10', input: 'image', output: 'probabilities', rowShape: [3, 32, 32], scale: 1 },
];

for (const model of MODELS) {
  test(`${model.name}: worker output matches an independent forward pass`, async () => {
    const rows = 5;
    const shape = [rows, ...model.rowShape];
    const data = seededInput(shape.reduce((a, b) => a * b), model.name.length * 7919, model.scale);
    const graph = await loadOnnxGraph(join(DEMO_MODELS, model.name, '1', 'model.onnx'));
    const expected = runReference(graph, { [model.input]: { dims: shape, data } })[model.output]!;
    const res = await inferBinary(worker.url, model.name, [{ name: model.input, datatype: 'FP32', shape, data }]);
    const got = res.output(model.output);
    assert.deepEqual(got.shape, expected.dims);
    // float32 results from two different summation orders: agree to a few ulps of the magnitude
    // involved; 1e-4 relative (plus 1e-6 absolute near zero) leaves room for that and nothing else.
    const values = got.data as Float32Array;
    for (let i = 0; i < values.length; i++) {
      const e = expected.data[i]!;
      assert.ok(Math.abs(values[i]! - e) <= 1e-6 + 1e-4 * Math.abs(e), `${model.name}[${i}]: got ${values[i]}, reference ${e}`);
    }
  });
}
