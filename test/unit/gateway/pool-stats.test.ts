// The pool dashboard's rolling figures: the histogram's percentiles against a sorted-array
// computation of the same samples, and the one-second-bucket window on a manual clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { binMiddle, binOf, HISTOGRAM_BINS, LatencyHistogram } from '../../../gateway/admin/latency-histogram.ts';
import { PoolStats } from '../../../gateway/admin/pool-stats.ts';
import { mulberry32 } from './balancing/seeded-rng.ts';

/** Nearest-rank percentile of the samples, the definition LatencyHistogram.percentile follows. */
function nearestRank(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

/**
 * A bin is at most 1/32 of its lower bound wide, and the reported value is its middle, so the
 * error is at most half a bin (1/64 of the value) plus the rounding of samples to whole µs.
 */
function assertClose(actual: number | undefined, expected: number, what: string): void {
  assert.ok(actual !== undefined, what);
  const tolerance = expected / 64 + 0.001;
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected} (±${tolerance})`);
}

test('bins: exact below 32 µs, monotonic, at most 1/32 wide, the middle inside the bin', () => {
  for (let us = 0; us < 32; us++) assert.equal(binMiddle(binOf(us)), us);
  let previous = 0;
  for (let us = 1; us < 2 ** 28; us = Math.ceil(us * 1.003) + 1) {
    const bin = binOf(us);
    assert.ok(bin >= previous, `monotonic at ${us}`);
    assert.ok(bin < HISTOGRAM_BINS);
    assert.ok(Math.abs(binMiddle(bin) - us) <= us / 64 + 0.5, `the middle of ${us}'s bin is close to it`);
    previous = bin;
  }
  assert.equal(binOf(2 ** 40), HISTOGRAM_BINS - 1, 'beyond the range: the last bin');
  assert.equal(binOf(-5), 0);
  assert.equal(binOf(Number.NaN), 0);
});

test('percentiles match a sorted-array computation within the bin width', () => {
  const rng = mulberry32(42);
  // Log-normal latencies (a typical service: most fast, a long tail), 1 µs to minutes.
  for (const size of [1, 2, 7, 100, 10_000]) {
    const samples = Array.from({ length: size }, () => Math.exp(rng() * 14 - 5));
    const histogram = new LatencyHistogram();
    for (const s of samples) histogram.record(s);
    for (const q of [0.01, 0.5, 0.9, 0.99, 1]) assertClose(histogram.percentile(q), nearestRank(samples.map((s) => Math.round(s * 1000) / 1000), q), `n=${size} q=${q}`);
  }
  assert.equal(new LatencyHistogram().percentile(0.5), undefined, 'no samples, no percentile');
});

test('percentiles: property over arbitrary samples', () => {
  fc.assert(fc.property(fc.array(fc.double({ min: 0, max: 100_000, noNaN: true }), { minLength: 1, maxLength: 300 }), fc.constantFrom(0.5, 0.99), (samples, q) => {
    const histogram = new LatencyHistogram();
    for (const s of samples) histogram.record(s);
    assertClose(histogram.percentile(q), nearestRank(samples.map((s) => Math.round(s * 1000) / 1000), q), `q=${q}`);
  }), { seed: 7, numRuns: 300 });
});

test('merging histograms equals recording everything in one', () => {
  const rng = mulberry32(3);
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  const all = new LatencyHistogram();
  for (let i = 0; i < 500; i++) {
    const ms = rng() * 50;
    (i % 3 === 0 ? a : b).record(ms);
    all.record(ms);
  }
  a.add(b);
  assert.deepEqual([...a.counts], [...all.counts]);
  assert.equal(a.total, all.total);
});

test('rolling window: complete seconds only, per worker and in total, errors are 5xx', () => {
  let now = 0;
  const stats = new PoolStats({ now: () => now, windowSeconds: 10 });
  // Second 0: worker a serves 4 requests (one 503), b serves 2, and 1 is refused before any worker.
  for (const ms of [1, 2, 3]) stats.record('a', 200, now - ms);
  stats.record('a', 503, now - 40);
  stats.record('b', 200, now - 5);
  stats.record('b', 404, now - 6);
  stats.record(undefined, 401, now - 0.1);
  assert.deepEqual(stats.totals(), { reqPerSec: 0, errorsPerSec: 0, p50Ms: null, p99Ms: null }, 'the second being filled is not shown yet');

  now = 1000; // second 0 complete; one second of history
  assert.equal(stats.totals().reqPerSec, 7);
  assert.equal(stats.totals().errorsPerSec, 1);
  const a = stats.worker('a');
  assert.equal(a.reqPerSec, 4);
  assert.equal(a.errorsPerSec, 1);
  assertClose(a.p50Ms ?? undefined, 2, 'p50 of 1, 2, 3, 40');
  assertClose(a.p99Ms ?? undefined, 40, 'p99 of 1, 2, 3, 40');
  assert.equal(stats.worker('b').reqPerSec, 2);
  assert.equal(stats.worker('b').errorsPerSec, 0, 'a 404 is not an error of the worker');
  assert.deepEqual(stats.worker('unknown'), { reqPerSec: 0, errorsPerSec: 0, p50Ms: null, p99Ms: null });

  now = 4000; // 4 seconds of history, 7 requests in them
  assert.equal(stats.totals().reqPerSec, 7 / 4);
  for (let s = 4; s < 30; s++) {
    now = s * 1000 + 500;
    stats.record('b', 200, now - 10);
  }
  now = 30_000; // the window is seconds 20..29: one request a second, all from b
  assert.equal(stats.totals().reqPerSec, 1);
  assert.equal(stats.worker('b').reqPerSec, 1);
  assert.equal(stats.worker('b').p99Ms, stats.worker('b').p50Ms);
  assert.deepEqual(stats.worker('a'), { reqPerSec: 0, errorsPerSec: 0, p50Ms: null, p99Ms: null }, 'a\'s old requests left the window');
});

test('a worker idle for a whole window is forgotten when another one appears', () => {
  let now = 0;
  const stats = new PoolStats({ now: () => now, windowSeconds: 3 });
  stats.record('gone', 200, now - 1);
  now = 2000;
  stats.record('new-1', 200, now - 1);
  assert.equal(stats.trackedWorkers, 2, 'still within the window');
  now = 10_000;
  stats.record('new-2', 200, now - 1);
  assert.equal(stats.trackedWorkers, 1, 'both idle series dropped');
});

test('a bucket reused for a later second starts from zero', () => {
  let now = 0;
  const stats = new PoolStats({ now: () => now, windowSeconds: 2 });
  for (let i = 0; i < 5; i++) stats.record('a', 500, now - 100);
  now = 3000; // the ring has 3 buckets: second 3 reuses second 0's
  stats.record('a', 200, now - 1);
  now = 4000;
  assert.deepEqual(stats.worker('a'), { reqPerSec: 0.5, errorsPerSec: 0, p50Ms: 1, p99Ms: 1 });
});

test('bad options fail at construction', () => {
  assert.throws(() => new PoolStats({ now: () => 0, windowSeconds: 0 }), /windowSeconds/);
  assert.throws(() => new PoolStats({ now: () => 0, windowSeconds: 2.5 }), /windowSeconds/);
});
