import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { halfBitsToNumber, numberToHalfBits } from '../../../worker/protocol/codec/fp16.ts';

// Reference values from IEEE 754-2008 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits.
const KNOWN: ReadonlyArray<readonly [bits: number, value: number, what: string]> = [
  [0x0000, 0, 'zero'],
  [0x3c00, 1, 'one'],
  [0xc000, -2, 'minus two'],
  [0x3800, 0.5, 'one half'],
  [0x3e00, 1.5, 'one and a half'],
  [0x7bff, 65504, 'largest finite'],
  [0xfbff, -65504, 'most negative finite'],
  [0x0400, 2 ** -14, 'smallest normal'],
  [0x0001, 2 ** -24, 'smallest subnormal'],
  [0x03ff, 1023 * 2 ** -24, 'largest subnormal'],
  [0x3bff, 1 - 2 ** -11, 'largest below one'],
  [0x3c01, 1 + 2 ** -10, 'smallest above one'],
  [0x7c00, Infinity, '+Inf'],
  [0xfc00, -Infinity, '-Inf'],
];

function isHalfNaN(bits: number): boolean {
  return (bits & 0x7c00) === 0x7c00 && (bits & 0x03ff) !== 0;
}

describe('halfBitsToNumber', () => {
  for (const [bits, value, what] of KNOWN) {
    test(`0x${bits.toString(16).padStart(4, '0')} is ${what} (${value})`, () => {
      assert.equal(halfBitsToNumber(bits), value);
    });
  }

  test('0x8000 is negative zero', () => {
    assert.ok(Object.is(halfBitsToNumber(0x8000), -0));
  });

  test('every pattern with an all-ones exponent and a non-zero fraction is NaN', () => {
    for (const bits of [0x7c01, 0x7e00, 0x7fff, 0xfc01, 0xfe00, 0xffff]) {
      assert.ok(Number.isNaN(halfBitsToNumber(bits)), `0x${bits.toString(16)}`);
    }
  });

  test('normal patterns agree with an independent decoder that widens the bits into a float32', () => {
    // A normal half widens exactly to float32: same sign, exponent rebased from bias 15 to 127,
    // fraction shifted left by 23 - 10 = 13 bits.
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    for (let bits = 0; bits < 0x10000; bits++) {
      const exponent = (bits >> 10) & 0x1f;
      if (exponent === 0 || exponent === 0x1f) continue;
      u32[0] = ((bits & 0x8000) << 16) | ((exponent - 15 + 127) << 23) | ((bits & 0x3ff) << 13);
      assert.equal(halfBitsToNumber(bits), f32[0], `0x${bits.toString(16)}`);
    }
  });

  test('positive patterns decode to strictly increasing values up to +Inf', () => {
    let previous = -1;
    for (let bits = 0; bits <= 0x7c00; bits++) {
      const value = halfBitsToNumber(bits);
      assert.ok(value > previous, `0x${bits.toString(16)}: ${value} should exceed ${previous}`);
      previous = value;
    }
  });
});

describe('numberToHalfBits', () => {
  for (const [bits, value, what] of KNOWN) {
    test(`${what} (${value}) encodes as 0x${bits.toString(16).padStart(4, '0')}`, () => {
      assert.equal(numberToHalfBits(value), bits);
    });
  }

  test('negative zero keeps its sign', () => {
    assert.equal(numberToHalfBits(-0), 0x8000);
  });

  test('NaN encodes as a NaN pattern', () => {
    assert.ok(isHalfNaN(numberToHalfBits(NaN)));
  });

  describe('round to nearest, ties to even', () => {
    // Near 1 the half spacing is 2^-10, so 1 + 2^-11 is exactly halfway between 0x3c00 and 0x3c01.
    test('a tie between an even and an odd pattern goes to the even one', () => {
      assert.equal(numberToHalfBits(1 + 2 ** -11), 0x3c00);
      assert.equal(numberToHalfBits(-(1 + 2 ** -11)), 0xbc00);
    });

    test('a tie between an odd and an even pattern goes up to the even one', () => {
      // 1 + 3 * 2^-11 lies halfway between 0x3c01 and 0x3c02.
      assert.equal(numberToHalfBits(1 + 3 * 2 ** -11), 0x3c02);
    });

    test('just above and just below a tie round to the nearer pattern', () => {
      assert.equal(numberToHalfBits(1 + 2 ** -11 + 2 ** -20), 0x3c01);
      assert.equal(numberToHalfBits(1 + 2 ** -11 - 2 ** -20), 0x3c00);
    });

    test('a number is rounded once, from its full double value', () => {
      // 1 + 2^-11 + 2^-40 is above the tie, so the nearest half is 0x3c01 (numpy: np.float16(1 + 2**-11 + 2**-40)).
      // Storing it in a Float32Array first drops 2^-40, leaving an exact tie that goes to 0x3c00.
      assert.equal(numberToHalfBits(1 + 2 ** -11 + 2 ** -40), 0x3c01);
    });

    test('rounding up can carry into the exponent', () => {
      // 1 - 2^-12 is halfway between 0x3bff (odd) and 0x3c00 = 1 (even).
      assert.equal(numberToHalfBits(1 - 2 ** -12), 0x3c00);
      // 1023.5 * 2^-24 is halfway between the largest subnormal (odd) and the smallest normal.
      assert.equal(numberToHalfBits(1023.5 * 2 ** -24), 0x0400);
    });

    test('subnormal results round to nearest even too', () => {
      assert.equal(numberToHalfBits(0.5 * 2 ** -24), 0x0000, 'halfway between 0 and the smallest subnormal');
      assert.equal(numberToHalfBits(0.75 * 2 ** -24), 0x0001);
      assert.equal(numberToHalfBits(1.5 * 2 ** -24), 0x0002, 'halfway between 0x0001 and 0x0002');
      assert.equal(numberToHalfBits(2.5 * 2 ** -24), 0x0002, 'halfway between 0x0002 and 0x0003');
      assert.equal(numberToHalfBits(-0.75 * 2 ** -24), 0x8001);
    });
  });

  test('values beyond the finite range overflow to infinity', () => {
    // 65520 is halfway between 65504 (0x7bff, odd) and 65536, which is not representable: it goes to Inf.
    assert.equal(numberToHalfBits(65519), 0x7bff);
    assert.equal(numberToHalfBits(65520), 0x7c00);
    assert.equal(numberToHalfBits(1e6), 0x7c00);
    assert.equal(numberToHalfBits(-1e6), 0xfc00);
    assert.equal(numberToHalfBits(Number.MAX_VALUE), 0x7c00);
  });

  test('values below half the smallest subnormal underflow to a signed zero', () => {
    assert.equal(numberToHalfBits(2 ** -26), 0x0000);
    assert.equal(numberToHalfBits(1e-10), 0x0000);
    assert.equal(numberToHalfBits(-1e-10), 0x8000);
    assert.equal(numberToHalfBits(Number.MIN_VALUE), 0x0000);
  });
});

test('all 65536 patterns survive decode then encode (NaN stays NaN)', () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    const value = halfBitsToNumber(bits);
    const back = numberToHalfBits(value);
    if (isHalfNaN(bits)) {
      assert.ok(Number.isNaN(value), `0x${bits.toString(16)} should decode to NaN`);
      assert.ok(isHalfNaN(back), `0x${bits.toString(16)} should encode back to a NaN pattern`);
    } else {
      assert.equal(back, bits, `0x${bits.toString(16)} -> ${value} -> 0x${back.toString(16)}`);
    }
  }
});
