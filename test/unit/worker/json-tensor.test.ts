import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V2Datatype } from '../../../shared/protocol/datatypes.ts';
import { decodeJsonValues, encodeJsonData, flattenData, jsonElementTexts } from '../../../worker/protocol/codec/json-tensor.ts';
import { parseJsonPrecise } from '../../../worker/protocol/codec/precise-json.ts';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const badTensor = (name: string, detail: RegExp) => ({ name: 'InfergateError', code: 'WK_ERR_BAD_TENSOR', status: 400, message: new RegExp(`'${name}'.*${detail.source}`) });

describe('flattenData', () => {
  test('a flat array passes through as is', () => {
    const flat = [1, 2, 3, 4];
    assert.equal(flattenData('x', flat, 4), flat);
  });

  test('a bare scalar becomes a one-element list', () => {
    assert.deepEqual(flattenData('x', 7, 4), [7]);
  });

  test('nested arrays flatten row-major', () => {
    assert.deepEqual(flattenData('x', [[1, 2, 3], [4, 5, 6]], 4), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(flattenData('x', [[[1], [2]], [[3], [4]]], 4), [1, 2, 3, 4]);
    assert.deepEqual(flattenData('x', [['a', 'b'], ['c', 'd']], 4), ['a', 'b', 'c', 'd']);
  });

  test('nesting up to maxDepth array levels is accepted, one more is refused naming the input', () => {
    assert.deepEqual(flattenData('x', [[[1, 2]]], 3), [1, 2]);
    assert.throws(() => flattenData('x', [[[[1, 2]]]], 3), badTensor('x', /deeper than 3/));
  });
});

describe('decodeJsonValues: integer datatypes', () => {
  // Ranges from the V2 datatype definitions (two's complement / unsigned of the stated width).
  const RANGES: ReadonlyArray<readonly [V2Datatype, number, number]> = [
    ['UINT8', 0, 255], ['UINT16', 0, 65535], ['UINT32', 0, 4294967295],
    ['INT8', -128, 127], ['INT16', -32768, 32767], ['INT32', -2147483648, 2147483647],
  ];
  for (const [datatype, lo, hi] of RANGES) {
    test(`${datatype} holds ${lo}..${hi} exactly and refuses values just outside`, () => {
      assert.deepEqual(Array.from(decodeJsonValues('x', datatype, [lo, 0, hi]) as ArrayLike<number>), [lo, 0, hi]);
      assert.throws(() => decodeJsonValues('x', datatype, [0, hi + 1]), badTensor('x', /element 1 .*out of range/));
      assert.throws(() => decodeJsonValues('x', datatype, [lo - 1]), badTensor('x', /element 0 .*out of range/));
    });
  }

  test('storage has the datatype\'s typed array', () => {
    assert.ok(decodeJsonValues('x', 'UINT8', [1]) instanceof Uint8Array);
    assert.ok(decodeJsonValues('x', 'INT16', [1]) instanceof Int16Array);
    assert.ok(decodeJsonValues('x', 'UINT32', [1]) instanceof Uint32Array);
  });

  test('non-integers are refused, never truncated', () => {
    assert.throws(() => decodeJsonValues('x', 'INT32', [1.5]), badTensor('x', /element 0 must be an integer/));
    assert.throws(() => decodeJsonValues('x', 'INT32', ['3']), badTensor('x', /element 0 must be an integer/));
    assert.throws(() => decodeJsonValues('x', 'UINT8', [null]), badTensor('x', /element 0/));
    assert.throws(() => decodeJsonValues('x', 'INT8', [true]), badTensor('x', /element 0/));
  });

  test('INT64 takes numbers, BigInts and quoted integers, exactly', () => {
    const out = decodeJsonValues('ids', 'INT64', [42, -7, 9223372036854775807n, -9223372036854775808n, '9223372036854775807', '-12']);
    assert.ok(out instanceof BigInt64Array);
    assert.deepEqual(Array.from(out), [42n, -7n, 9223372036854775807n, -9223372036854775808n, 9223372036854775807n, -12n]);
  });

  test('INT64 refuses values outside its range and non-integers', () => {
    assert.throws(() => decodeJsonValues('ids', 'INT64', [9223372036854775808n]), badTensor('ids', /out of range for INT64/));
    assert.throws(() => decodeJsonValues('ids', 'INT64', ['-9223372036854775809']), badTensor('ids', /out of range for INT64/));
    assert.throws(() => decodeJsonValues('ids', 'INT64', [1.5]), badTensor('ids', /element 0 must be an integer/));
    assert.throws(() => decodeJsonValues('ids', 'INT64', ['12abc']), badTensor('ids', /element 0 must be an integer/));
    assert.throws(() => decodeJsonValues('ids', 'INT64', ['1.0']), badTensor('ids', /element 0 must be an integer/));
  });

  test('UINT64 holds 0..18446744073709551615 and refuses values just outside', () => {
    const out = decodeJsonValues('u', 'UINT64', [0, 18446744073709551615n, '18446744073709551615']);
    assert.ok(out instanceof BigUint64Array);
    assert.deepEqual(Array.from(out), [0n, 18446744073709551615n, 18446744073709551615n]);
    assert.throws(() => decodeJsonValues('u', 'UINT64', [-1]), badTensor('u', /out of range for UINT64/));
    assert.throws(() => decodeJsonValues('u', 'UINT64', [18446744073709551616n]), badTensor('u', /out of range for UINT64/));
  });
});

describe('decodeJsonValues: BOOL and BYTES', () => {
  test('BOOL stores true/false as one byte 1/0', () => {
    const out = decodeJsonValues('m', 'BOOL', [true, false, true]);
    assert.ok(out instanceof Uint8Array);
    assert.deepEqual(Array.from(out as Uint8Array), [1, 0, 1]);
  });

  test('BOOL refuses strings and other numbers', () => {
    assert.throws(() => decodeJsonValues('m', 'BOOL', ['true']), badTensor('m', /element 0 must be true or false/));
    assert.throws(() => decodeJsonValues('m', 'BOOL', [true, 2]), badTensor('m', /element 1 must be true or false/));
  });

  test('BYTES stores each string as its UTF-8 bytes', () => {
    const out = decodeJsonValues('s', 'BYTES', ['hé', '', '😀']) as Uint8Array[];
    assert.deepEqual(out.map((b) => Array.from(b)), [[0x68, 0xc3, 0xa9], [], [0xf0, 0x9f, 0x98, 0x80]]);
  });

  test('BYTES refuses non-strings', () => {
    assert.throws(() => decodeJsonValues('s', 'BYTES', ['a', 5]), badTensor('s', /element 1 must be a string/));
  });
});

describe('decodeJsonValues: floats', () => {
  test('FP32 rounds each value to single precision', () => {
    const out = decodeJsonValues('x', 'FP32', [0.1, -2.5, 1e-3]);
    assert.ok(out instanceof Float32Array);
    assert.deepEqual(Array.from(out as Float32Array), [Math.fround(0.1), -2.5, Math.fround(1e-3)]);
  });

  test('FP64 keeps each value exactly', () => {
    const out = decodeJsonValues('x', 'FP64', [0.1, -2.5, 1e300]);
    assert.ok(out instanceof Float64Array);
    assert.deepEqual(Array.from(out as Float64Array), [0.1, -2.5, 1e300]);
  });

  test('FP16 stores the IEEE half pattern of each value', () => {
    const out = decodeJsonValues('x', 'FP16', [1, -2, 65504, 0.5]);
    assert.ok(out instanceof Uint16Array);
    assert.deepEqual(Array.from(out as Uint16Array), [0x3c00, 0xc000, 0x7bff, 0x3800]);
  });

  test('the strings "NaN", "Infinity" and "-Infinity" stand for the non-finite values', () => {
    for (const datatype of ['FP32', 'FP64'] as const) {
      const out = Array.from(decodeJsonValues('x', datatype, ['NaN', 'Infinity', '-Infinity']) as Float32Array);
      assert.ok(Number.isNaN(out[0]), datatype);
      assert.deepEqual(out.slice(1), [Infinity, -Infinity], datatype);
    }
    const half = decodeJsonValues('x', 'FP16', ['Infinity', '-Infinity', 'NaN']) as Uint16Array;
    assert.equal(half[0], 0x7c00);
    assert.equal(half[1], 0xfc00);
    assert.equal(half[2]! & 0x7c00, 0x7c00);
    assert.notEqual(half[2]! & 0x03ff, 0);
  });

  test('other strings and non-numbers are refused, naming the element', () => {
    for (const datatype of ['FP16', 'FP32', 'FP64'] as const) {
      assert.throws(() => decodeJsonValues('x', datatype, [1, 'nan']), badTensor('x', new RegExp(`element 1 must be a number for ${datatype}`)));
      assert.throws(() => decodeJsonValues('x', datatype, ['1.5']), badTensor('x', /element 0/));
      assert.throws(() => decodeJsonValues('x', datatype, [null]), badTensor('x', /element 0/));
      assert.throws(() => decodeJsonValues('x', datatype, [[1]]), badTensor('x', /element 0/));
    }
  });
});

describe('encodeJsonData', () => {
  test('integers print exactly, INT64 and UINT64 beyond 2^53 included', () => {
    const int64 = encodeJsonData('INT64', BigInt64Array.from([9223372036854775807n, -9223372036854775808n, 9007199254740993n]));
    assert.equal(int64, '[9223372036854775807,-9223372036854775808,9007199254740993]');
    assert.deepEqual(parseJsonPrecise(int64, 4), [9223372036854775807n, -9223372036854775808n, 9007199254740993n]);
    assert.equal(encodeJsonData('UINT64', BigUint64Array.from([18446744073709551615n])), '[18446744073709551615]');
    assert.deepEqual(JSON.parse(encodeJsonData('INT8', Int8Array.from([-128, 0, 127]))), [-128, 0, 127]);
    assert.deepEqual(JSON.parse(encodeJsonData('UINT32', Uint32Array.from([4294967295]))), [4294967295]);
  });

  test('floats parse back to the same stored values', () => {
    const f32 = Float32Array.from([0.1, -2.5, 3.4028234663852886e38, 1e-45]);
    assert.deepEqual(Float32Array.from(JSON.parse(encodeJsonData('FP32', f32)) as number[]), f32);
    const f64 = Float64Array.from([0.1, -0, 1e-300, Number.MAX_VALUE]);
    assert.deepEqual(JSON.parse(encodeJsonData('FP64', f64)), [0.1, 0, 1e-300, Number.MAX_VALUE]);
  });

  test('non-finite floats are written as "NaN", "Infinity", "-Infinity" so the text stays valid JSON', () => {
    assert.deepEqual(JSON.parse(encodeJsonData('FP32', Float32Array.from([1.5, NaN, Infinity, -Infinity]))), [1.5, 'NaN', 'Infinity', '-Infinity']);
    assert.deepEqual(JSON.parse(encodeJsonData('FP16', Uint16Array.from([0x3e00, 0x7e00, 0x7c00, 0xfc00]))), [1.5, 'NaN', 'Infinity', '-Infinity']);
  });

  test('FP16 is written as the numbers the half patterns stand for', () => {
    assert.deepEqual(JSON.parse(encodeJsonData('FP16', Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001]))), [1, -2, 65504, 2 ** -24]);
  });

  test('BOOL is written as true/false and BYTES as JSON strings', () => {
    assert.equal(encodeJsonData('BOOL', Uint8Array.from([1, 0, 1])), '[true,false,true]');
    const text = encodeJsonData('BYTES', [bytes('a"b\\c'), bytes('hé\n'), bytes('')]);
    assert.deepEqual(JSON.parse(text), ['a"b\\c', 'hé\n', '']);
  });

  test('an empty tensor is an empty array', () => {
    assert.equal(encodeJsonData('FP32', new Float32Array(0)), '[]');
    assert.equal(encodeJsonData('BYTES', []), '[]');
  });

  test('decode(encode(data)) gives back the data for every datatype', () => {
    const samples: ReadonlyArray<readonly [V2Datatype, unknown[]]> = [
      ['BOOL', [true, false]], ['UINT8', [0, 255]], ['UINT16', [65535]], ['UINT32', [4294967295]],
      ['UINT64', [18446744073709551615n]], ['INT8', [-128]], ['INT16', [-32768]], ['INT32', [-2147483648]],
      ['INT64', [-9223372036854775808n]], ['FP16', [0.5, -65504]], ['FP32', [0.25, 'NaN']], ['FP64', [0.1, 'Infinity']],
      ['BYTES', ['x', 'yz']],
    ];
    for (const [datatype, values] of samples) {
      const data = decodeJsonValues('x', datatype, values);
      const again = decodeJsonValues('x', datatype, parseJsonPrecise(encodeJsonData(datatype, data), 4) as unknown[]);
      assert.deepEqual(again, data, datatype);
    }
  });
});

describe('jsonElementTexts', () => {
  test('gives each element as its own JSON text', () => {
    assert.deepEqual(jsonElementTexts('FP32', Float32Array.from([1.5, NaN, -Infinity])), ['1.5', '"NaN"', '"-Infinity"']);
    assert.deepEqual(jsonElementTexts('FP16', Uint16Array.from([0x3c00, 0x7c00])), ['1', '"Infinity"']);
    assert.deepEqual(jsonElementTexts('INT64', BigInt64Array.from([9223372036854775807n, -1n])), ['9223372036854775807', '-1']);
    assert.deepEqual(jsonElementTexts('UINT8', Uint8Array.from([0, 255])), ['0', '255']);
    assert.deepEqual(jsonElementTexts('BOOL', Uint8Array.from([0, 1])), ['false', 'true']);
    assert.deepEqual(jsonElementTexts('BYTES', [bytes('a"b')]), ['"a\\"b"']);
  });

  test('each text parses as JSON', () => {
    for (const text of jsonElementTexts('FP64', Float64Array.from([0.1, NaN, 1e300]))) assert.doesNotThrow(() => JSON.parse(text), text);
  });
});

test('float range: each type takes its largest finite value and refuses what would overflow it', () => {
  assert.deepEqual([...decodeJsonValues('x', 'FP64', [Number.MAX_VALUE, -Number.MAX_VALUE])], [Number.MAX_VALUE, -Number.MAX_VALUE]);
  assert.deepEqual([...decodeJsonValues('x', 'FP32', [3.4028234663852886e38])], [3.4028234663852886e38]);
  for (const [datatype, value] of [['FP64', Infinity], ['FP32', 1e39], ['FP32', -1e39], ['FP16', 65520], ['FP16', 1e5]] as const) {
    assert.throws(() => decodeJsonValues('x', datatype, [value]), /out of range/, `${datatype} ${value}`);
  }
  assert.deepEqual([...decodeJsonValues('x', 'FP32', ['Infinity', '-Infinity'])], [Infinity, -Infinity], 'asked for by name');
});
