/**
 * IEEE 754 half precision <-> number, for FP16 tensors held as 16-bit patterns.
 * Rounding is round-to-nearest-even, as numpy's float16 cast and onnxruntime do.
 */
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer); // little-endian: [low word, high word]

export function halfBitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // subnormal or zero
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

export function numberToHalfBits(value: number): number {
  // Rounded once, straight from the double's bits: going through float32 first would round twice.
  f64[0] = value;
  const lo = u32[0]!;
  const hi = u32[1]!;
  const sign = (hi >>> 16) & 0x8000;
  const exponent = (hi >>> 20) & 0x7ff;
  if (exponent === 0x7ff) return sign | 0x7c00 | ((hi & 0xfffff) !== 0 || lo !== 0 ? 0x200 : 0); // Inf or NaN
  const e = exponent - 1023 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow to infinity
  if (e <= 0) {
    // Subnormal half: a multiple of 2^-24; scaling by a power of two is exact, so round the scaled value.
    const scaled = Math.abs(value) * 2 ** 24;
    let result = Math.floor(scaled);
    const rest = scaled - result;
    if (rest > 0.5 || (rest === 0.5 && (result & 1) === 1)) result += 1;
    return sign | result; // 1024 becomes the smallest normal, which is the right pattern
  }
  const top = (hi & 0xfffff) >>> 10; // the 10 mantissa bits a half keeps
  const restHi = hi & 0x3ff; // with lo, the 42 bits it drops
  let result = (e << 10) | top;
  if (restHi > 0x200 || (restHi === 0x200 && (lo !== 0 || (result & 1) === 1))) result += 1; // may carry into the exponent: still correct
  return sign | result;
}
