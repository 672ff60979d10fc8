import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Tensor } from '../../../shared/protocol/datatypes.ts';
import { classify } from '../../../worker/protocol/classification.ts';

const texts = (t: Tensor): string[] => (t.data as Uint8Array[]).map((b) => new TextDecoder().decode(b));

// Scores are powers of two so their decimal text is exact and predictable.
const SCORES: Tensor = { name: 'probs', datatype: 'FP32', shape: [2, 4], data: Float32Array.from([0.125, 0.5, 0.25, 0.0625, 1, 0, 0.5, 0.75]) };

test('top-k per batch row, highest score first, as "score:index"', () => {
  const out = classify(SCORES, 2, true, undefined);
  assert.equal(out.name, 'probs');
  assert.equal(out.datatype, 'BYTES');
  assert.deepEqual(out.shape, [2, 2]);
  assert.deepEqual(texts(out), ['0.5:1', '0.25:2', '1:0', '0.75:3']);
});

test('labels are appended as "score:index:label"', () => {
  const out = classify(SCORES, 1, true, ['cat', 'dog', 'eel', 'fox']);
  assert.deepEqual(texts(out), ['0.5:1:dog', '1:0:cat']);
});

test('an index without a label is written without one', () => {
  const out = classify(SCORES, 3, true, ['cat', 'dog']);
  assert.deepEqual(texts(out), ['0.5:1:dog', '0.25:2', '0.125:0:cat', '1:0:cat', '0.75:3', '0.5:2']);
});

test('equal scores keep index order', () => {
  const tied: Tensor = { name: 'p', datatype: 'FP64', shape: [1, 4], data: Float64Array.from([0.5, 1, 0.5, 1]) };
  assert.deepEqual(texts(classify(tied, 4, true, undefined)), ['1:1', '1:3', '0.5:0', '0.5:2']);
});

test('k larger than the class count gives every class', () => {
  const out = classify(SCORES, 10, true, undefined);
  assert.deepEqual(out.shape, [2, 4]);
  assert.equal(texts(out).length, 8);
});

test('an unbatched tensor is one row, and the shape has no batch dimension', () => {
  const vector: Tensor = { name: 'p', datatype: 'FP32', shape: [4], data: Float32Array.from([0.25, 2, 0.5, 1]) };
  const out = classify(vector, 2, false, undefined);
  assert.deepEqual(out.shape, [2]);
  assert.deepEqual(texts(out), ['2:1', '1:3']);
});

test('FP16 scores are read as the numbers their half patterns stand for', () => {
  // 0x3800 = 0.5, 0x3c00 = 1, 0xc000 = -2
  const half: Tensor = { name: 'p', datatype: 'FP16', shape: [1, 3], data: Uint16Array.from([0x3800, 0x3c00, 0xc000]) };
  assert.deepEqual(texts(classify(half, 3, true, undefined)), ['1:1', '0.5:0', '-2:2']);
});

test('integer scores, INT64 included, are ranked too', () => {
  const ints: Tensor = { name: 'p', datatype: 'INT64', shape: [1, 3], data: BigInt64Array.from([5n, -3n, 70n]) };
  assert.deepEqual(texts(classify(ints, 2, true, undefined)), ['70:2', '5:0']);
});

test('BYTES and BOOL outputs cannot be classified', () => {
  assert.throws(() => classify({ name: 's', datatype: 'BYTES', shape: [1], data: [new Uint8Array(1)] }, 1, false, undefined), /'s' is BYTES/);
  assert.throws(() => classify({ name: 'b', datatype: 'BOOL', shape: [1], data: new Uint8Array(1) }, 1, false, undefined), /'b' is BOOL/);
});
