/**
 * The peak-EWMA latency estimator (gateway/upstreams/peak-ewma.ts). Expected values are computed
 * from the formulas in its header: peak on a higher sample; otherwise
 * E' = E·w + rtt·(1 − w), w = exp(−elapsed/τ); a reading at t is E·exp(−(t − t_last)/τ).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PeakEwma } from '../../../gateway/upstreams/peak-ewma.ts';

const TAU = 1000; // decayMs
const HALF_LIFE = TAU * Math.LN2;

function close(actual: number, expected: number, message?: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${message ?? ''} expected ${expected}, got ${actual}`);
}

test('before any sample: initialMs (default 0), not decaying', () => {
  const unset = new PeakEwma({ decayMs: TAU });
  assert.equal(unset.value(0), 0);
  assert.equal(unset.value(1e9), 0);
  assert.equal(unset.sampled, false);
  const primed = new PeakEwma({ decayMs: TAU, initialMs: 30 });
  assert.equal(primed.value(0), 30);
  assert.equal(primed.value(10 * TAU), 30);
});

test('the first sample replaces the initial guess outright, even a lower one', () => {
  const ewma = new PeakEwma({ decayMs: TAU, initialMs: 100 });
  ewma.observe(10, 5000);
  assert.equal(ewma.sampled, true);
  assert.equal(ewma.value(5000), 10);
});

test('a higher sample is taken at once (the peak)', () => {
  const ewma = new PeakEwma({ decayMs: TAU });
  ewma.observe(10, 0);
  ewma.observe(100, 1);
  assert.equal(ewma.value(1), 100);
  ewma.observe(100.5, 1); // any amount above counts, with no time elapsed
  assert.equal(ewma.value(1), 100.5);
});

test('a lower sample pulls the estimate halfway after one half-life (τ·ln 2)', () => {
  const ewma = new PeakEwma({ decayMs: TAU });
  ewma.observe(100, 0);
  ewma.observe(20, HALF_LIFE);
  close(ewma.value(HALF_LIFE), 100 * 0.5 + 20 * 0.5); // w = exp(−ln 2) = 1/2 → 60
});

test('a lower sample right after a peak barely moves it: recovery is cautious', () => {
  const ewma = new PeakEwma({ decayMs: TAU });
  ewma.observe(100, 0);
  ewma.observe(20, 10);
  const w = Math.exp(-10 / TAU);
  close(ewma.value(10), 100 * w + 20 * (1 - w)); // ≈ 99.2
  assert.ok(ewma.value(10) > 99);
});

test('a steady run of lower samples closes the gap by e per decay time', () => {
  // From 100, samples of 20 every 10 ms: each step E − 20 shrinks by exp(−10/τ), so after
  // m steps E = 20 + 80·exp(−10·m/τ); after one τ (m = 100) that is 20 + 80/e ≈ 49.4.
  const ewma = new PeakEwma({ decayMs: TAU });
  ewma.observe(100, 0);
  for (let m = 1; m <= 100; m++) ewma.observe(20, 10 * m);
  close(ewma.value(1000), 20 + 80 / Math.E);
  for (let m = 101; m <= 1000; m++) ewma.observe(20, 10 * m);
  close(ewma.value(10_000), 20 + 80 * Math.exp(-10), 'after 10 τ');
});

test('without samples the reading decays towards 0, as tower and Finagle decay on every load read', () => {
  const ewma = new PeakEwma({ decayMs: TAU });
  ewma.observe(100, 0);
  close(ewma.value(HALF_LIFE), 50);
  close(ewma.value(TAU), 100 / Math.E);
  close(ewma.value(2 * HALF_LIFE), 25);
  assert.ok(ewma.value(100 * TAU) < 1e-40); // an idle worker ends up looking cheap and is probed again
});

test('reading does not change the state: the result is the same however often balancers look', () => {
  const read = new PeakEwma({ decayMs: TAU });
  const unread = new PeakEwma({ decayMs: TAU });
  for (const ewma of [read, unread]) ewma.observe(100, 0);
  for (let t = 0; t < HALF_LIFE; t += 7) read.value(t);
  for (const ewma of [read, unread]) ewma.observe(50, HALF_LIFE);
  assert.equal(read.value(HALF_LIFE), unread.value(HALF_LIFE));
  close(read.value(HALF_LIFE), 75); // compared with, and blended into, the estimate at the last sample
});

test('a clock stepping back counts as no time elapsed', () => {
  const ewma = new PeakEwma({ decayMs: TAU });
  ewma.observe(100, 1000);
  ewma.observe(50, 900); // w = exp(0) = 1: the lower sample has no weight yet
  assert.equal(ewma.value(900), 100);
  assert.equal(ewma.value(1000), 100);
  close(ewma.value(1000 + HALF_LIFE), 50); // time is still measured from the latest sample, 1000
});

test('never throws on a bad sample: negative counts as 0, non-finite is ignored', () => {
  const ewma = new PeakEwma({ decayMs: TAU });
  ewma.observe(Number.NaN, 0);
  ewma.observe(Number.POSITIVE_INFINITY, 0);
  assert.equal(ewma.sampled, false);
  ewma.observe(-5, 0);
  assert.equal(ewma.sampled, true);
  assert.equal(ewma.value(0), 0);
  ewma.observe(40, 1);
  ewma.observe(10, Number.NaN);
  assert.equal(ewma.value(1), 40);
});

test('rejects a decay or initial value that is not a sane number, when built', () => {
  for (const decayMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => new PeakEwma({ decayMs }), RangeError, `decayMs ${decayMs}`);
  }
  for (const initialMs of [-1, Number.NaN]) {
    assert.throws(() => new PeakEwma({ decayMs: TAU, initialMs }), RangeError, `initialMs ${initialMs}`);
  }
});
