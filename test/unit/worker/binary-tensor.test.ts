import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TensorData, V2Datatype } from '../../../shared/protocol/datatypes.ts';
import { decodeBinaryTensor, encodeBinaryTensor } from '../../../worker/protocol/codec/binary-tensor.ts';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const badTensor = (name: string, detail: RegExp) => ({ code: 'WK_ERR_BAD_TENSOR', status: 400, message: new RegExp(`'${name}'.*${detail.source}`) });

/**
 * Each case: the tensor, and its wire bytes written independently with DataView (little-endian per
 * Triton's binary tensor extension).
 */
interface Case { datatype: V2Datatype; data: TensorData; wire: (view: DataView) => void; size: number }
const CASES: Case[] = [
  { datatype: 'BOOL', data: Uint8Array.from([1, 0, 1]), size: 3, wire: (v) => { v.setUint8(0, 1); v.setUint8(2, 1); } },
  { datatype: 'UINT8', data: Uint8Array.from([0, 255]), size: 2, wire: (v) => { v.setUint8(1, 255); } },
  { datatype: 'INT8', data: Int8Array.from([-128, 127]), size: 2, wire: (v) => { v.setInt8(0, -128); v.setInt8(1, 127); } },
  { datatype: 'UINT16', data: Uint16Array.from([0x1234, 65535]), size: 4, wire: (v) => { v.setUint16(0, 0x1234, true); v.setUint16(2, 65535, true); } },
  { datatype: 'INT16', data: Int16Array.from([-2, 300]), size: 4, wire: (v) => { v.setInt16(0, -2, true); v.setInt16(2, 300, true); } },
  { datatype: 'UINT32', data: Uint32Array.from([0xdeadbeef]), size: 4, wire: (v) => { v.setUint32(0, 0xdeadbeef, true); } },
  { datatype: 'INT32', data: Int32Array.from([-2, 0x01020304]), size: 8, wire: (v) => { v.setInt32(0, -2, true); v.setInt32(4, 0x01020304, true); } },
  { datatype: 'UINT64', data: BigUint64Array.from([18446744073709551615n, 1n]), size: 16, wire: (v) => { v.setBigUint64(0, 18446744073709551615n, true); v.setBigUint64(8, 1n, true); } },
  { datatype: 'INT64', data: BigInt64Array.from([-9223372036854775808n, 9007199254740993n]), size: 16, wire: (v) => { v.setBigInt64(0, -9223372036854775808n, true); v.setBigInt64(8, 9007199254740993n, true); } },
  { datatype: 'FP16', data: Uint16Array.from([0x3c00, 0xc000]), size: 4, wire: (v) => { v.setUint16(0, 0x3c00, true); v.setUint16(2, 0xc000, true); } },
  { datatype: 'FP32', data: Float32Array.from([1.5, -0.25]), size: 8, wire: (v) => { v.setFloat32(0, 1.5, true); v.setFloat32(4, -0.25, true); } },
  { datatype: 'FP64', data: Float64Array.from([0.1, -1e300]), size: 16, wire: (v) => { v.setFloat64(0, 0.1, true); v.setFloat64(8, -1e300, true); } },
];

function wireBytes(c: Case): Uint8Array {
  const out = new Uint8Array(c.size);
  c.wire(new DataView(out.buffer));
  return out;
}

const count = (data: TensorData): number => data.length;

describe('fixed-size datatypes', () => {
  for (const c of CASES) {
    test(`${c.datatype}: encodes to little-endian bytes and decodes back`, () => {
      const expected = wireBytes(c);
      assert.deepEqual(Buffer.from(encodeBinaryTensor(c.datatype, c.data)), Buffer.from(expected));
      assert.deepEqual(decodeBinaryTensor('x', c.datatype, count(c.data), expected), c.data);
    });

    test(`${c.datatype}: decodes from a Buffer slice at an odd offset`, () => {
      const expected = wireBytes(c);
      const body = Buffer.alloc(expected.length + 3);
      body.set(expected, 1);
      const slice = body.subarray(1, 1 + expected.length);
      assert.equal(slice.byteOffset % 2, 1);
      assert.deepEqual(decodeBinaryTensor('x', c.datatype, count(c.data), slice), c.data);
    });
  }

  test('the decoded tensor does not alias the request body', () => {
    const body = Buffer.from(new Float32Array([1, 2]).buffer);
    const data = decodeBinaryTensor('x', 'FP32', 2, body) as Float32Array;
    body.fill(0);
    assert.deepEqual(Array.from(data), [1, 2]);
  });

  test('a byte count that does not match shape and datatype is refused, naming the input', () => {
    assert.throws(() => decodeBinaryTensor('x', 'FP32', 2, new Uint8Array(7)), badTensor('x', /7 bytes.*need 8/));
    assert.throws(() => decodeBinaryTensor('x', 'FP32', 2, new Uint8Array(9)), badTensor('x', /9 bytes.*need 8/));
    assert.throws(() => decodeBinaryTensor('ids', 'INT64', 1, new Uint8Array(4)), badTensor('ids', /4 bytes.*need 8/));
  });

  test('BOOL bytes other than 0 and 1 read as true (1)', () => {
    assert.deepEqual(Array.from(decodeBinaryTensor('m', 'BOOL', 4, Uint8Array.from([0, 1, 2, 255])) as Uint8Array), [0, 1, 1, 1]);
  });

  test('encoding a view into a larger buffer gives only the view\'s bytes', () => {
    const whole = Float32Array.from([1, 2, 3, 4]);
    const encoded = encodeBinaryTensor('FP32', whole.subarray(2, 4));
    assert.deepEqual(Buffer.from(encoded), Buffer.from(Float32Array.from([3, 4]).buffer));
  });

  test('an empty tensor is zero bytes', () => {
    assert.equal(encodeBinaryTensor('FP32', new Float32Array(0)).byteLength, 0);
    assert.equal(decodeBinaryTensor('x', 'FP32', 0, new Uint8Array(0)).length, 0);
  });
});

describe('BYTES', () => {
  // Each element: 4-byte little-endian length, then the bytes.
  const LAYOUT = Uint8Array.from([2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0, 3, 0, 0, 0, 0x68, 0xc3, 0xa9]);
  const ELEMENTS = [utf8('ab'), utf8(''), utf8('hé')];

  test('encodes each element as a 4-byte little-endian length and its bytes', () => {
    assert.deepEqual(Buffer.from(encodeBinaryTensor('BYTES', ELEMENTS)), Buffer.from(LAYOUT));
  });

  test('decodes the length-prefixed layout back into elements', () => {
    const out = decodeBinaryTensor('s', 'BYTES', 3, LAYOUT) as Uint8Array[];
    assert.deepEqual(out.map((b) => Buffer.from(b).toString('utf8')), ['ab', '', 'hé']);
  });

  test('decodes from a Buffer slice at an odd offset', () => {
    const body = Buffer.concat([Buffer.from([0xff]), Buffer.from(LAYOUT), Buffer.from([0xee])]);
    const out = decodeBinaryTensor('s', 'BYTES', 3, body.subarray(1, 1 + LAYOUT.length)) as Uint8Array[];
    assert.deepEqual(out.map((b) => Buffer.from(b).toString('utf8')), ['ab', '', 'hé']);
  });

  test('a length above 255 uses all four length bytes', () => {
    const long = new Uint8Array(0x0102).fill(0x7a);
    const encoded = encodeBinaryTensor('BYTES', [long]);
    assert.deepEqual(Array.from(encoded.subarray(0, 4)), [0x02, 0x01, 0, 0]);
    assert.equal(encoded.length, 4 + 0x0102);
    assert.deepEqual((decodeBinaryTensor('s', 'BYTES', 1, encoded) as Uint8Array[])[0], long);
  });

  test('data that ends inside a length prefix is refused', () => {
    assert.throws(() => decodeBinaryTensor('s', 'BYTES', 2, LAYOUT.subarray(0, 8)), badTensor('s', /ends before element 1/));
  });

  test('an element whose length runs past the end is refused', () => {
    assert.throws(() => decodeBinaryTensor('s', 'BYTES', 1, Uint8Array.from([5, 0, 0, 0, 0x61])), badTensor('s', /element 0 claims 5 bytes/));
  });

  test('bytes left over after the declared element count are refused', () => {
    assert.throws(() => decodeBinaryTensor('s', 'BYTES', 1, LAYOUT), badTensor('s', /11 bytes left over/));
  });
});
