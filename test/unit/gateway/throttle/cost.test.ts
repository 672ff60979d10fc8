// Request cost: 1 per request, or the batch size read from the body the way the worker reads it —
// V2 JSON or only the JSON header of a binary-extension body, TF rows or columns — and 1 for
// anything the body does not say or that is malformed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchSizeOf, requestCost } from '../../../../gateway/throttle/cost.ts';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const v2 = (body: Buffer | string, headers = {}) => batchSizeOf('v2', Buffer.isBuffer(body) ? body : Buffer.from(body), headers);
const tf = (body: string) => batchSizeOf('tf', Buffer.from(body), {});

test('cost: mode request costs 1 whatever the body', () => {
  assert.equal(requestCost('request', 'v2', json({ inputs: [{ name: 'x', shape: [64, 4], datatype: 'FP32', data: [] }] }), {}), 1);
});

test('cost: V2 JSON → the first dimension of the inputs', () => {
  const body = { inputs: [{ name: 'x', shape: [8, 4], datatype: 'FP32', data: Array(32).fill(0.5) }] };
  assert.equal(requestCost('batch', 'v2', json(body), {}), 8);
  // data before shape, nested data, strings with brackets and escaped quotes in the way
  assert.equal(v2('{"id":"a]}\\"{[","inputs":[{"data":[[1,2],[3,4]],"name":"x\\"]","datatype":"FP32","shape":[2,2]}]}'), 2);
  assert.equal(v2(' \n{ "inputs" : [ { "shape" : [ 3 , 1 ] } ] } \n'), 3);
});

test('cost: V2 with several inputs → the largest first dimension (no discount for a mismatch)', () => {
  assert.equal(v2(json({ inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [7] }] })), 7);
});

test('cost: repeated keys count by their last occurrence, as JSON.parse does in the worker', () => {
  assert.equal(v2('{"inputs":[{"shape":[1],"shape":[50]}]}'), 50);
  assert.equal(v2('{"inputs":[{"shape":[50]}],"inputs":[{"shape":[2]}]}'), 2);
  assert.equal(v2('{"inputs":[{"shape":[50]}],"inputs":"nope"}'), undefined);
});

test('cost: keys with escapes are decoded before comparing', () => {
  assert.equal(v2('{"\\u0069nputs":[{"sh\\u0061pe":[9]}]}'), 9);
});

test('cost: binary extension → only the JSON header is read, never the binary tail', () => {
  const header = json({ inputs: [{ name: 'x', shape: [16, 4], datatype: 'FP32', parameters: { binary_data_size: 256 } }] });
  // A tail that is not JSON at all (and would derail any parser) must not matter.
  const tail = Buffer.from('{"inputs":[{"shape":[999]}]} \u0000\u00ff garbage', 'latin1');
  const body = Buffer.concat([header, tail]);
  assert.equal(v2(body, { 'inference-header-content-length': String(header.length) }), 16);
  assert.equal(v2(body, { 'inference-header-content-length': String(body.length + 1) }), undefined, 'a length past the body');
  assert.equal(v2(body, { 'inference-header-content-length': 'abc' }), undefined);
});

test('cost: TF rows → number of instances; columns → length of inputs', () => {
  assert.equal(tf('{"signature_name":"x","instances":[[1,2],[3,4],[5,6]]}'), 3);
  assert.equal(tf('{"instances":[{"a":[1],"b":"x"},{"a":[2],"b":"y"}]}'), 2);
  assert.equal(tf('{"inputs":[[1,2],[3,4]]}'), 2);
  assert.equal(tf('{"inputs":{"a":[[1],[2],[3],[4]],"b":[1,2]}}'), 4);
  assert.equal(tf('{"inputs":5}'), undefined);
});

test('cost: malformed or silent bodies cost 1', () => {
  for (const body of ['', 'nope', '{', '{"inputs":[{"shape":[4', '{"inputs":[]}', '{"inputs":[{"shape":[]}]}', '{"inputs":[{"shape":["a"]}]}', '[1,2]', '{"inputs":[{"shape":[0]}]}', '{"inputs":[{"shape":[-3]}]}', '{"inputs":[{"shape":[2]}]} trailing']) {
    assert.equal(requestCost('batch', 'v2', Buffer.from(body), {}), 1, JSON.stringify(body));
  }
  assert.equal(requestCost('batch', 'tf', Buffer.from('{"instances":[1,2'), {}), 1);
});

test('cost: skipping a large body allocates nothing per element and stays fast', () => {
  const data = Array.from({ length: 200_000 }, (_, i) => i * 0.5);
  const body = json({ inputs: [{ name: 'x', datatype: 'FP32', data, shape: [50_000, 4] }] });
  const start = performance.now();
  for (let i = 0; i < 5; i++) assert.equal(v2(body), 50_000);
  const perCall = (performance.now() - start) / 5;
  const parse = performance.now();
  JSON.parse(body.toString('utf8'));
  const parseMs = performance.now() - parse;
  // Informational: the scan should cost about what a JSON.parse of the same body costs, or less.
  // (Not asserted against JSON.parse: timings on a shared machine are noisy.)
  assert.ok(perCall < 200, `scan of ${(body.length / 1e6).toFixed(1)} MB took ${perCall.toFixed(1)} ms (JSON.parse ${parseMs.toFixed(1)} ms)`);
});
