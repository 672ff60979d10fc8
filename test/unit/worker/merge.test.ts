import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Tensor } from '../../../shared/protocol/datatypes.ts';
import { batchSignature, concatBatch, splitBatch } from '../../../worker/scheduler/merge.ts';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const fp32 = (shape: number[], values: number[]): Tensor => ({ name: 'x', datatype: 'FP32', shape, data: Float32Array.from(values) });

describe('concatBatch', () => {
  test('stacks numeric tensors along dim 0, in order', () => {
    const out = concatBatch([fp32([1, 2], [1, 2]), fp32([2, 2], [3, 4, 5, 6]), fp32([1, 2], [7, 8])]);
    assert.deepEqual(out, fp32([4, 2], [1, 2, 3, 4, 5, 6, 7, 8]));
  });

  test('keeps INT64 values exact', () => {
    const a: Tensor = { name: 'ids', datatype: 'INT64', shape: [1], data: BigInt64Array.from([9223372036854775807n]) };
    const b: Tensor = { name: 'ids', datatype: 'INT64', shape: [2], data: BigInt64Array.from([-9223372036854775808n, 1n]) };
    assert.deepEqual(concatBatch([a, b]), { name: 'ids', datatype: 'INT64', shape: [3], data: BigInt64Array.from([9223372036854775807n, -9223372036854775808n, 1n]) });
  });

  test('concatenates BYTES element lists', () => {
    const a: Tensor = { name: 's', datatype: 'BYTES', shape: [1, 2], data: [utf8('a'), utf8('b')] };
    const b: Tensor = { name: 's', datatype: 'BYTES', shape: [1, 2], data: [utf8('c'), utf8('')] };
    const out = concatBatch([a, b]);
    assert.deepEqual(out.shape, [2, 2]);
    assert.deepEqual((out.data as Uint8Array[]).map((e) => Buffer.from(e).toString()), ['a', 'b', 'c', '']);
  });

  test('a single part is returned as is', () => {
    const only = fp32([1, 3], [1, 2, 3]);
    assert.equal(concatBatch([only]), only);
  });
});

describe('splitBatch', () => {
  test('cuts a batched output into pieces of the given row counts', () => {
    const pieces = splitBatch(fp32([4, 2], [1, 2, 3, 4, 5, 6, 7, 8]), [1, 2, 1]);
    assert.deepEqual(pieces.map((p) => p.shape), [[1, 2], [2, 2], [1, 2]]);
    assert.deepEqual(pieces.map((p) => Array.from(p.data as Float32Array)), [[1, 2], [3, 4, 5, 6], [7, 8]]);
    assert.ok(pieces.every((p) => p.name === 'x' && p.datatype === 'FP32'));
  });

  test('handles outputs of any rank, including one value per row', () => {
    const scores: Tensor = { name: 'label', datatype: 'INT64', shape: [3], data: BigInt64Array.from([7n, 8n, 9n]) };
    assert.deepEqual(splitBatch(scores, [2, 1]).map((p) => [p.shape, Array.from(p.data as BigInt64Array)]), [[[2], [7n, 8n]], [[1], [9n]]]);
    const cube = fp32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(splitBatch(cube, [1, 1]).map((p) => Array.from(p.data as Float32Array)), [[1, 2, 3, 4], [5, 6, 7, 8]]);
  });

  test('splits BYTES outputs', () => {
    const t: Tensor = { name: 's', datatype: 'BYTES', shape: [3], data: [utf8('a'), utf8('b'), utf8('c')] };
    assert.deepEqual(splitBatch(t, [1, 2]).map((p) => (p.data as Uint8Array[]).map((e) => Buffer.from(e).toString())), [['a'], ['b', 'c']]);
  });

  test('refuses an output whose rows do not add up to the batch, naming it', () => {
    assert.throws(() => splitBatch(fp32([3, 1], [1, 2, 3]), [2, 2]), /output 'x' has 3 rows for a batch of 4/);
  });

  test('split undoes concat', () => {
    const parts = [fp32([2, 3], [1, 2, 3, 4, 5, 6]), fp32([1, 3], [7, 8, 9]), fp32([3, 3], [10, 11, 12, 13, 14, 15, 16, 17, 18])];
    const pieces = splitBatch(concatBatch(parts), [2, 1, 3]);
    assert.deepEqual(pieces.map((p) => [p.shape, Array.from(p.data as Float32Array)]), parts.map((p) => [p.shape, Array.from(p.data as Float32Array)]));
  });
});

describe('batchSignature', () => {
  const two = (rows: number, width: number): Tensor[] => [fp32([rows, width], new Array(rows * width).fill(0)), { ...fp32([rows], new Array(rows).fill(0)), name: 'w' }];

  test('ignores the batch dimension', () => {
    assert.equal(batchSignature(two(1, 4), ['y']), batchSignature(two(7, 4), ['y']));
  });

  test('differs when any non-batch dimension differs', () => {
    assert.notEqual(batchSignature(two(1, 4), ['y']), batchSignature(two(1, 5), ['y']));
    assert.notEqual(batchSignature([fp32([1, 12], [])], ['y']), batchSignature([fp32([1, 1, 2], [])], ['y']));
  });

  test('differs when the requested outputs differ', () => {
    assert.notEqual(batchSignature(two(1, 4), ['y']), batchSignature(two(1, 4), ['y', 'z']));
    assert.notEqual(batchSignature(two(1, 4), ['y', 'z']), batchSignature(two(1, 4), ['z', 'y']));
  });
});
