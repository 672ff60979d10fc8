import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { V2_DATATYPES, type TensorData, type V2Datatype } from '../../../shared/protocol/datatypes.ts';
import { frameBytes, readFrame, writeFrame, type FrameTensor } from '../../../worker/repository/tensor-frame.ts';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A shared buffer holding exactly the frame (rounded up to whole Float64s, as the ring's slots are). */
function roundTrip(tensors: FrameTensor[], extra: number[] = []) {
  const buffer = new SharedArrayBuffer(Math.ceil(frameBytes(tensors, extra) / 8) * 8);
  writeFrame(buffer, tensors, extra);
  return { buffer, frame: readFrame(buffer) };
}

const SAMPLES: Record<Exclude<V2Datatype, 'BYTES'>, TensorData> = {
  BOOL: Uint8Array.from([1, 0, 1]),
  UINT8: Uint8Array.from([0, 255, 7]),
  UINT16: Uint16Array.from([0, 65535]),
  UINT32: Uint32Array.from([0xdeadbeef]),
  UINT64: BigUint64Array.from([18446744073709551615n, 0n]),
  INT8: Int8Array.from([-128, 127, 0]),
  INT16: Int16Array.from([-32768, 1]),
  INT32: Int32Array.from([-2147483648, 5]),
  INT64: BigInt64Array.from([-9223372036854775808n, 9007199254740993n]),
  FP16: Uint16Array.from([0x3c00, 0x8000, 0x7e00]),
  FP32: Float32Array.from([1.5, -0, NaN, Infinity]),
  FP64: Float64Array.from([0.1, -1e300, -Infinity]),
};

describe('tensor frames', () => {
  test('every datatype survives, several tensors in one frame, each view aligned for its type', () => {
    // Odd byte lengths first (BOOL, INT8) would misalign the 8-byte types after them without padding.
    const tensors: FrameTensor[] = Object.entries(SAMPLES).map(([datatype, data], index) => ({ index, datatype: datatype as V2Datatype, shape: [data.length], data }));
    tensors.push({ index: 12, datatype: 'BYTES', shape: [3], data: [utf8('héllo'), new Uint8Array(0), Uint8Array.from([0, 255])] });
    const { frame } = roundTrip(tensors, [3, 0, 11]);
    assert.deepEqual(frame.extra, [3, 0, 11]);
    assert.equal(frame.tensors.length, tensors.length);
    frame.tensors.forEach((got, i) => {
      const want = tensors[i]!;
      assert.equal(got.index, want.index);
      assert.equal(got.datatype, want.datatype);
      assert.deepEqual(got.shape, want.shape);
      assert.deepEqual(got.data, want.data, want.datatype);
    });
  });

  test('shapes: rank 0, empty dimensions and dimensions beyond 32 bits come back exactly', () => {
    const { frame } = roundTrip([
      { index: 0, datatype: 'FP32', shape: [], data: Float32Array.from([7]) },
      { index: 1, datatype: 'INT64', shape: [0, 5_000_000_000], data: new BigInt64Array(0) },
      { index: 2, datatype: 'BYTES', shape: [2, 0], data: [] },
    ]);
    assert.deepEqual(frame.tensors.map((t) => t.shape), [[], [0, 5_000_000_000], [2, 0]]);
    assert.deepEqual(frame.tensors.map((t) => t.data.length), [1, 0, 0]);
  });

  test('read data is a copy in a plain ArrayBuffer: onnxruntime refuses shared memory, and the slot is reused', () => {
    const { buffer, frame } = roundTrip([{ index: 0, datatype: 'FP32', shape: [2], data: Float32Array.from([1, 2]) }]);
    new Uint8Array(buffer).fill(0xff);
    const data = frame.tensors[0]!.data as Float32Array;
    assert.ok(data.buffer instanceof ArrayBuffer);
    assert.deepEqual(Array.from(data), [1, 2]);
  });

  test('a view into a larger buffer is written from its own bytes only', () => {
    const big = Float64Array.from([1, 2, 3, 4, 5]);
    const { frame } = roundTrip([{ index: 0, datatype: 'FP64', shape: [2], data: big.subarray(2, 4) }]);
    assert.deepEqual(Array.from(frame.tensors[0]!.data as Float64Array), [3, 4]);
  });

  test('random tensors of every fixed-size type round-trip (property)', () => {
    const fixed = V2_DATATYPES.filter((d) => d !== 'BYTES' && d !== 'FP16' && d !== 'BOOL');
    const tensor = fc.record({
      datatype: fc.constantFrom(...fixed),
      values: fc.array(fc.integer({ min: -100, max: 100 }), { maxLength: 40 }),
      index: fc.nat({ max: 50 }),
    });
    fc.assert(
      fc.property(fc.array(tensor, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 4 }), (specs, extra) => {
        const tensors: FrameTensor[] = specs.map((s) => {
          const ctor = { UINT8: Uint8Array, UINT16: Uint16Array, UINT32: Uint32Array, UINT64: BigUint64Array, INT8: Int8Array, INT16: Int16Array, INT32: Int32Array, INT64: BigInt64Array, FP32: Float32Array, FP64: Float64Array }[s.datatype as 'UINT8'];
          const big = s.datatype === 'INT64' || s.datatype === 'UINT64';
          const data = (ctor as unknown as { from(v: unknown[]): TensorData }).from(s.values.map((v) => (big ? BigInt(Math.abs(v)) : v)));
          return { index: s.index, datatype: s.datatype, shape: [data.length], data };
        });
        const { frame } = roundTrip(tensors, extra);
        assert.deepEqual(frame.extra, extra);
        assert.deepEqual(frame.tensors, tensors);
      }),
      { numRuns: 200 },
    );
  });
});
