/**
 * Pure computations behind the scaling and overload verdicts (unit-tested in
 * test/unit/bench/stats.test.ts): nearest-rank percentiles, time buckets, recovery time, and
 * whether throughput grew with the number of workers until the gateway's core was saturated.
 */

/** Nearest-rank percentile (0 < p ≤ 100) of unsorted samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** `a ÷ b`, NaN unless both are finite and b is not 0. */
export function ratioOf(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN;
}

export interface Sample {
  /** When it completed, ms (any common origin). */
  atMs: number;
  latencyMs: number;
}

export interface Bucket {
  /** Start of the bucket, ms after `fromMs`. */
  startMs: number;
  count: number;
  p99Ms: number;
}

/** Samples in consecutive buckets of `widthMs` from `fromMs` to `toMs`, each with its p99 (NaN when empty). */
export function buckets(samples: readonly Sample[], fromMs: number, toMs: number, widthMs: number): Bucket[] {
  const n = Math.max(0, Math.ceil((toMs - fromMs) / widthMs));
  const groups: number[][] = Array.from({ length: n }, () => []);
  for (const s of samples) {
    const i = Math.floor((s.atMs - fromMs) / widthMs);
    if (i >= 0 && i < n) groups[i]!.push(s.latencyMs);
  }
  return groups.map((g, i) => ({ startMs: i * widthMs, count: g.length, p99Ms: percentile(g, 99) }));
}

/**
 * Time until latency is back to normal: the end of the first bucket from which every non-empty
 * bucket's p99 stays within `limitMs` to the end. NaN when it never settles.
 */
export function recoveryMs(series: readonly Bucket[], limitMs: number, widthMs: number): number {
  let settledFrom = Number.NaN;
  for (const b of series) {
    if (b.count === 0) continue;
    if (b.p99Ms <= limitMs) {
      if (Number.isNaN(settledFrom)) settledFrom = b.startMs + widthMs;
    } else {
      settledFrom = Number.NaN;
    }
  }
  return settledFrom;
}

export interface ScalingPoint {
  workers: number;
  perSecond: number;
  /** Cores the gateway kept busy (1 = its one core saturated). */
  gatewayCores: number;
}

export interface ScalingVerdict {
  pass: boolean;
  /** Why, in a sentence for the report. */
  reason: string;
}

/**
 * Throughput must grow with the number of workers until the gateway's core saturates: for every
 * step to more workers taken while the gateway was below `saturatedCores` at the smaller count,
 * req/s must grow by at least `minGrowth` of the ideal growth. The ideal is proportional to the
 * workers added, but never more than the gateway's idle share of its core can carry at the CPU per
 * request it had: a gateway 72% busy at 8 workers can serve at most 1/0.72 = 1.39× as much at 16,
 * not 2×, and reaching its core's limit there is the saturation this verdict allows for.
 */
export function scalesUntilSaturated(points: readonly ScalingPoint[], saturatedCores = 0.8, minGrowth = 0.6): ScalingVerdict {
  const sorted = [...points].sort((a, b) => a.workers - b.workers);
  if (sorted.length < 2) return { pass: false, reason: 'fewer than two worker counts measured' };
  for (let i = 1; i < sorted.length; i++) {
    const before = sorted[i - 1]!;
    const after = sorted[i]!;
    if (before.gatewayCores >= saturatedCores) {
      return { pass: true, reason: `grew until ${before.workers} workers, where the gateway's core was ${(before.gatewayCores * 100).toFixed(0)}% busy` };
    }
    const ideal = Math.min(after.workers / before.workers, before.gatewayCores > 0 ? 1 / before.gatewayCores : Number.POSITIVE_INFINITY) - 1;
    const actual = after.perSecond / before.perSecond - 1;
    if (!(actual >= ideal * minGrowth)) {
      return { pass: false, reason: `${before.workers} → ${after.workers} workers: +${(actual * 100).toFixed(0)}% req/s with the gateway's core only ${(before.gatewayCores * 100).toFixed(0)}% busy` };
    }
  }
  const last = sorted[sorted.length - 1]!;
  return { pass: true, reason: `grew at every step up to ${last.workers} workers (gateway core ${(last.gatewayCores * 100).toFixed(0)}% busy there)` };
}
