/**
 * A fixed-size log-linear latency histogram (the layout of HdrHistogram with 5 significant bits):
 * values in microseconds, exact below 32 µs, then 32 equal sub-buckets per power of two, so a
 * bucket is at most 1/32 (3.1 %) of its value wide and a percentile read from it is within half
 * that (1.6 %) of the true sample. Values from 2^27 µs (134 s) up share the last bucket. Recording
 * is one clz32, a shift and an increment: no allocation, whatever the value.
 *
 * @example
 *   const h = new LatencyHistogram();
 *   h.record(12.5);             // milliseconds
 *   h.percentile(0.99);         // ≈ 12.5
 */
const SUB_BITS = 5;
const SUB_COUNT = 1 << SUB_BITS; // 32
const MAX_EXPONENT = 27; // 2^27 µs ≈ 134 s
export const HISTOGRAM_BINS = SUB_COUNT + (MAX_EXPONENT - SUB_BITS + 1) * SUB_COUNT;

/** The bin of a value in whole microseconds. */
export function binOf(micros: number): number {
  if (!(micros >= 0)) return 0; // NaN or negative: a broken clock, never an out-of-range index
  if (micros < SUB_COUNT) return micros;
  if (micros >= 2 ** (MAX_EXPONENT + 1)) return HISTOGRAM_BINS - 1;
  const exponent = 31 - Math.clz32(micros);
  const shift = exponent - SUB_BITS;
  return SUB_COUNT + shift * SUB_COUNT + ((micros >>> shift) & (SUB_COUNT - 1));
}

/** The middle of a bin, in microseconds: what a percentile falling in it reports. */
export function binMiddle(bin: number): number {
  if (bin < SUB_COUNT) return bin;
  const shift = Math.floor((bin - SUB_COUNT) / SUB_COUNT);
  const low = (SUB_COUNT + ((bin - SUB_COUNT) % SUB_COUNT)) * 2 ** shift;
  return low + (2 ** shift - 1) / 2;
}

export class LatencyHistogram {
  readonly counts = new Uint32Array(HISTOGRAM_BINS);
  total = 0;

  record(ms: number): void {
    this.counts[binOf(Math.round(ms * 1000))]!++;
    this.total++;
  }

  clear(): void {
    this.counts.fill(0);
    this.total = 0;
  }

  /** Adds another histogram's counts into this one. */
  add(other: LatencyHistogram): void {
    if (other.total === 0) return;
    for (let i = 0; i < HISTOGRAM_BINS; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
  }

  /**
   * The value at quantile q (0 < q ≤ 1) in milliseconds by the nearest-rank rule (the smallest
   * sample with at least q of all samples at or below it), or undefined when empty.
   */
  percentile(q: number): number | undefined {
    if (this.total === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_BINS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return binMiddle(i) / 1000;
    }
    return binMiddle(HISTOGRAM_BINS - 1) / 1000;
  }
}
