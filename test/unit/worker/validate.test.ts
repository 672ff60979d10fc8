import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TensorSpec } from '../../../worker/repository/session-protocol.ts';
import { checkDeclaredInput, checkInputSet, type DeclaredInput, type ShapeCheckTarget } from '../../../worker/protocol/validate.ts';

const X: TensorSpec = { name: 'x', datatype: 'FP32', shape: [-1, 4] };
const MASK: TensorSpec = { name: 'mask', datatype: 'BOOL', shape: [-1, 4] };
const BATCHED: ShapeCheckTarget = { inputs: [X, MASK], maxBatchSize: 8 };
const FIXED: ShapeCheckTarget = { inputs: [{ name: 'img', datatype: 'UINT8', shape: [3, -1, -1] }], maxBatchSize: 0 };
const LIMIT = 1000;

const badTensor = (message: RegExp) => ({ name: 'InfergateError', code: 'WK_ERR_BAD_TENSOR', status: 400, message });
const check = (raw: { name?: unknown; datatype?: unknown; shape?: unknown }, model = BATCHED, maxElements = LIMIT): DeclaredInput =>
  checkDeclaredInput(raw, model.inputs.find((s) => s.name === raw.name), model, maxElements);

describe('checkDeclaredInput', () => {
  test('a matching input comes back typed, with its element count', () => {
    assert.deepEqual(check({ name: 'x', datatype: 'FP32', shape: [3, 4] }), { name: 'x', datatype: 'FP32', shape: [3, 4], count: 12 });
    assert.deepEqual(check({ name: 'img', datatype: 'UINT8', shape: [3, 2, 5] }, FIXED), { name: 'img', datatype: 'UINT8', shape: [3, 2, 5], count: 30 });
  });

  test('an input without a string name is refused', () => {
    assert.throws(() => check({ datatype: 'FP32', shape: [1, 4] }), badTensor(/string "name"/));
    assert.throws(() => check({ name: 5, datatype: 'FP32', shape: [1, 4] }), badTensor(/string "name"/));
  });

  test('an unknown input is refused, naming it and the inputs the model takes', () => {
    assert.throws(() => check({ name: 'nope', datatype: 'FP32', shape: [1, 4] }), badTensor(/unknown input 'nope'.*'x', 'mask'/));
  });

  test('a datatype other than the model\'s is refused, naming both', () => {
    assert.throws(() => check({ name: 'x', datatype: 'FP64', shape: [1, 4] }), badTensor(/'x'.*expected datatype FP32, got FP64/));
  });

  test('a datatype that is not a V2 datatype is refused', () => {
    assert.throws(() => check({ name: 'x', datatype: 'FLOAT', shape: [1, 4] }), badTensor(/'x'.*"FLOAT" is not a V2 datatype/));
    assert.throws(() => check({ name: 'x', shape: [1, 4] }), badTensor(/'x'.*not a V2 datatype/));
  });

  test('a shape that is not a list of non-negative integers is refused', () => {
    for (const shape of [undefined, '1,4', [1, -4], [1, 4.5], [1, '4'], new Array(33).fill(1)]) {
      assert.throws(() => check({ name: 'x', datatype: 'FP32', shape }), badTensor(/'x'.*shape must be/), JSON.stringify(shape));
    }
  });

  test('a rank other than the model\'s is refused', () => {
    assert.throws(() => check({ name: 'x', datatype: 'FP32', shape: [4] }), badTensor(/'x'.*expected rank 2/));
    assert.throws(() => check({ name: 'x', datatype: 'FP32', shape: [1, 2, 2] }), badTensor(/'x'.*expected rank 2/));
  });

  test('a fixed dimension must match; a dynamic one (-1) takes any size', () => {
    assert.throws(() => check({ name: 'x', datatype: 'FP32', shape: [1, 5] }), badTensor(/'x'.*dimension 1 must be 4/));
    assert.throws(() => check({ name: 'img', datatype: 'UINT8', shape: [1, 2, 2] }, FIXED), badTensor(/'img'.*dimension 0 must be 3/));
    assert.equal(check({ name: 'img', datatype: 'UINT8', shape: [3, 1, 300] }, FIXED).count, 900);
  });

  test('a batch above maxBatchSize is WK_ERR_BATCH_TOO_LARGE (400), naming the input and the limit', () => {
    assert.equal(check({ name: 'x', datatype: 'FP32', shape: [8, 4] }).count, 32);
    assert.throws(() => check({ name: 'x', datatype: 'FP32', shape: [9, 4] }), {
      name: 'InfergateError', code: 'WK_ERR_BATCH_TOO_LARGE', status: 400, message: /'x'.*batch size 9.*max batch size 8/,
    });
  });

  test('a batched model refuses an empty batch', () => {
    assert.throws(() => check({ name: 'x', datatype: 'FP32', shape: [0, 4] }), badTensor(/'x'.*batch dimension must be at least 1/));
  });

  test('a model with maxBatchSize 0 has no batch dimension to check', () => {
    const model: ShapeCheckTarget = { inputs: [{ name: 'v', datatype: 'FP32', shape: [-1] }], maxBatchSize: 0 };
    assert.equal(check({ name: 'v', datatype: 'FP32', shape: [500] }, model).count, 500);
    assert.equal(check({ name: 'v', datatype: 'FP32', shape: [0] }, model).count, 0);
  });

  test('more elements than the limit are refused before anything is allocated', () => {
    assert.equal(check({ name: 'x', datatype: 'FP32', shape: [4, 4] }, BATCHED, 16).count, 16);
    assert.throws(() => check({ name: 'x', datatype: 'FP32', shape: [5, 4] }, BATCHED, 16), badTensor(/'x'.*20 elements, over the limit of 16/));
    assert.throws(() => check({ name: 'img', datatype: 'UINT8', shape: [3, 1e6, 1e6] }, FIXED), badTensor(/'img'.*over the limit/));
  });
});

describe('checkInputSet', () => {
  const x = (batch: number): DeclaredInput => ({ name: 'x', datatype: 'FP32', shape: [batch, 4], count: batch * 4 });
  const mask = (batch: number): DeclaredInput => ({ name: 'mask', datatype: 'BOOL', shape: [batch, 4], count: batch * 4 });

  test('all inputs present, once each, with one batch size: accepted in any order', () => {
    assert.doesNotThrow(() => checkInputSet([x(2), mask(2)], BATCHED));
    assert.doesNotThrow(() => checkInputSet([mask(3), x(3)], BATCHED));
  });

  test('a missing input is refused, naming it', () => {
    assert.throws(() => checkInputSet([x(1)], BATCHED), badTensor(/missing input 'mask'/));
    assert.throws(() => checkInputSet([], BATCHED), badTensor(/missing inputs 'x', 'mask'/));
  });

  test('an input given twice is refused, naming it', () => {
    assert.throws(() => checkInputSet([x(1), mask(1), x(1)], BATCHED), badTensor(/input 'x' is given more than once/));
  });

  test('inputs that disagree on the batch size are refused, naming both', () => {
    assert.throws(() => checkInputSet([x(2), mask(3)], BATCHED), badTensor(/'x' has 2, 'mask' has 3/));
  });

  test('without batching, first dimensions may differ', () => {
    const model: ShapeCheckTarget = { inputs: [X, MASK], maxBatchSize: 0 };
    assert.doesNotThrow(() => checkInputSet([x(2), mask(3)], model));
  });
});
