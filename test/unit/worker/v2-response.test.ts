import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Tensor } from '../../../shared/protocol/datatypes.ts';
import { parseJsonPrecise } from '../../../worker/protocol/codec/precise-json.ts';
import { encodeInferResponse } from '../../../worker/protocol/v2-response.ts';

const MODEL = { name: 'iris', version: '3' };
const PROBS: Tensor = { name: 'probs', datatype: 'FP32', shape: [2, 2], data: Float32Array.from([0.25, 0.75, 1, 0]) };
const LABEL: Tensor = { name: 'label', datatype: 'INT64', shape: [2], data: BigInt64Array.from([9223372036854775807n, -1n]) };
const NAMES: Tensor = { name: 'names', datatype: 'BYTES', shape: [2], data: [new TextEncoder().encode('a"b'), new TextEncoder().encode('hé')] };
const json = (name: string) => ({ name, binary: false, classification: 0 });
const binary = (name: string) => ({ name, binary: true, classification: 0 });

describe('JSON responses', () => {
  test('parse to the V2 response shape with flat data', () => {
    const res = encodeInferResponse(MODEL, 'req-1', [PROBS, NAMES], [json('probs'), json('names')]);
    assert.equal(res.contentType, 'application/json');
    assert.equal(res.headerLength, undefined);
    assert.deepEqual(JSON.parse(res.body.toString('utf8')), {
      model_name: 'iris',
      model_version: '3',
      id: 'req-1',
      outputs: [
        { name: 'probs', datatype: 'FP32', shape: [2, 2], data: [0.25, 0.75, 1, 0] },
        { name: 'names', datatype: 'BYTES', shape: [2], data: ['a"b', 'hé'] },
      ],
    });
  });

  test('without an id, no id field', () => {
    const res = JSON.parse(encodeInferResponse(MODEL, undefined, [PROBS], [json('probs')]).body.toString('utf8')) as Record<string, unknown>;
    assert.equal('id' in res, false);
  });

  test('names and ids with quotes are escaped', () => {
    const res = encodeInferResponse({ name: 'we"ird', version: '1' }, 'a"\n', [PROBS], [json('probs')]);
    const parsed = JSON.parse(res.body.toString('utf8')) as { model_name: string; id: string };
    assert.equal(parsed.model_name, 'we"ird');
    assert.equal(parsed.id, 'a"\n');
  });

  test('INT64 beyond 2^53 is written exactly', () => {
    const text = encodeInferResponse(MODEL, undefined, [LABEL], [json('label')]).body.toString('utf8');
    assert.match(text, /"data":\[9223372036854775807,-1\]/);
    const parsed = parseJsonPrecise(text, 8) as { outputs: Array<{ data: unknown[] }> };
    assert.deepEqual(parsed.outputs[0]!.data, [9223372036854775807n, -1]);
  });

  test('non-finite floats become strings so the body stays valid JSON', () => {
    const nan: Tensor = { name: 'y', datatype: 'FP64', shape: [3], data: Float64Array.from([NaN, Infinity, 2]) };
    const parsed = JSON.parse(encodeInferResponse(MODEL, undefined, [nan], [json('y')]).body.toString('utf8')) as { outputs: Array<{ data: unknown[] }> };
    assert.deepEqual(parsed.outputs[0]!.data, ['NaN', 'Infinity', 2]);
  });
});

describe('binary responses', () => {
  test('the JSON header declares binary_data_size; the raw bytes follow it, in output order', () => {
    const res = encodeInferResponse(MODEL, 'r', [PROBS, LABEL, NAMES], [binary('probs'), json('label'), binary('names')]);
    assert.equal(res.contentType, 'application/octet-stream');
    assert.ok(res.headerLength !== undefined);

    const header = parseJsonPrecise(res.body.subarray(0, res.headerLength).toString('utf8'), 8) as { outputs: Array<Record<string, unknown>> };
    assert.deepEqual(header.outputs[0], { name: 'probs', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } });
    assert.deepEqual(header.outputs[1], { name: 'label', datatype: 'INT64', shape: [2], data: [9223372036854775807n, -1] }); // JSON output stays inline
    assert.deepEqual(header.outputs[2], { name: 'names', datatype: 'BYTES', shape: [2], parameters: { binary_data_size: 4 + 3 + 4 + 3 } });

    // Expected tail, written independently: 4 little-endian float32s, then BYTES as length-prefixed elements.
    const tail = Buffer.alloc(16 + 14);
    [0.25, 0.75, 1, 0].forEach((v, i) => tail.writeFloatLE(v, i * 4));
    tail.writeUInt32LE(3, 16);
    tail.write('a"b', 20, 'utf8');
    tail.writeUInt32LE(3, 23);
    tail.write('hé', 27, 'utf8');
    assert.deepEqual(res.body.subarray(res.headerLength), tail);
  });

  test('the header length is in bytes, not characters', () => {
    const res = encodeInferResponse({ name: 'modèle', version: '1' }, 'ünï', [PROBS], [binary('probs')]);
    const header = res.body.subarray(0, res.headerLength);
    assert.equal(res.body.length - res.headerLength!, 16);
    assert.equal((JSON.parse(header.toString('utf8')) as { id: string }).id, 'ünï');
  });

  test('an output that is a view into a larger buffer sends only its own bytes', () => {
    const whole = Float32Array.from([9, 9, 0.5, 1.5]);
    const piece: Tensor = { name: 'probs', datatype: 'FP32', shape: [1, 2], data: whole.subarray(2) };
    const res = encodeInferResponse(MODEL, undefined, [piece], [binary('probs')]);
    const tail = res.body.subarray(res.headerLength);
    assert.deepEqual([tail.readFloatLE(0), tail.readFloatLE(4)], [0.5, 1.5]);
    assert.equal(tail.length, 8);
  });
});
