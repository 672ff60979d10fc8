import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PowerOfTwoChoicesStrategy } from '../../../../gateway/balancing/power-of-two-choices.ts';
import { candidate, candidates, chiSquare, tally } from './fixtures.ts';
import { seededContext } from './seeded-rng.ts';

test('a busy worker is never chosen: with distinct draws it always meets a less loaded rival', () => {
  // 3 candidates, one at inFlight 50. It could only win if both draws were it, which distinct
  // sampling rules out, so the expected count is exactly 0 (no tolerance).
  const list = [candidate('a'), candidate('busy', { inFlight: 50 }), candidate('b')];
  const strategy = new PowerOfTwoChoicesStrategy();
  const ctx = seededContext(1);
  const counts = tally(list.map((c) => c.id), Array.from({ length: 10_000 }, () => strategy.pick(list, ctx)));
  assert.equal(counts[1], 0);
  // The other two tie at 0, and every pair holds at least one of them: 5 000 each expected;
  // df 1, critical value 10.83 at p = 0.001.
  assert.ok(chiSquare([counts[0]!, counts[2]!], [5000, 5000]) < 10.83, `counts ${counts}`);
});

test('choice probabilities follow from uniform distinct pairs', () => {
  // Loads 0, 1, 2, 3: the candidate of rank r (0 = least loaded) wins exactly the pairs it forms
  // with a busier one, n − 1 − r of the C(4, 2) = 6 pairs. So P = 3/6, 2/6, 1/6, 0: over 12 000 picks
  // expect 6 000, 4 000, 2 000 and exactly 0. χ² over the three non-zero cells, df 2, critical 13.82.
  const list = [candidate('l2', { inFlight: 2 }), candidate('l0'), candidate('l3', { inFlight: 3 }), candidate('l1', { inFlight: 1 })];
  const strategy = new PowerOfTwoChoicesStrategy();
  const ctx = seededContext(2);
  const [l2, l0, l3, l1] = tally(list.map((c) => c.id), Array.from({ length: 12_000 }, () => strategy.pick(list, ctx))) as [number, number, number, number];
  assert.equal(l3, 0);
  assert.ok(chiSquare([l0, l1, l2], [6000, 4000, 2000]) < 13.82, `counts l0 ${l0}, l1 ${l1}, l2 ${l2}`);
});

test('load is inFlight + reported queue depth', () => {
  const strategy = new PowerOfTwoChoicesStrategy();
  const ctx = seededContext(3);
  // 2 + 0 < 0 + 3: the queue the worker reports (other replicas' traffic) outweighs our own leases.
  const mine = candidate('two-leases', { inFlight: 2 });
  const queued = candidate('queue-of-three', { queueDepth: 3 });
  for (let i = 0; i < 20; i++) assert.equal(strategy.pick([queued, mine], ctx), mine);
  // 1 + 1 < 0 + 3 and 1 + 1 > 0 + 1.
  const both = candidate('one-and-one', { inFlight: 1, queueDepth: 1 });
  for (let i = 0; i < 20; i++) assert.equal(strategy.pick([queued, both], ctx), both);
  const light = candidate('queue-of-one', { queueDepth: 1 });
  for (let i = 0; i < 20; i++) assert.equal(strategy.pick([both, light], ctx), light);
});

test('ignores latency: that is peak-ewma\'s business', () => {
  const list = [candidate('slow', { latencyMs: 1000 }), candidate('fast', { latencyMs: 1, inFlight: 1 })];
  const strategy = new PowerOfTwoChoicesStrategy();
  const ctx = seededContext(4);
  for (let i = 0; i < 20; i++) assert.equal(strategy.pick(list, ctx)!.id, 'slow');
});

test('ties between equally loaded candidates are uniform: chi-square over 5 × 10 000', () => {
  // All idle: every draw is a tie, so the pick is uniform over 5; df 4, critical value 18.47.
  const list = candidates(5);
  const strategy = new PowerOfTwoChoicesStrategy();
  const ctx = seededContext(5);
  const counts = tally(list.map((c) => c.id), Array.from({ length: 10_000 }, () => strategy.pick(list, ctx)));
  assert.ok(chiSquare(counts, [2000, 2000, 2000, 2000, 2000]) < 18.47, `counts ${counts}`);
});

test('keeps a pool it drives balanced: spread of in-flight counts stays small', () => {
  // 10 workers, 5 000 leases with no releases. With two choices the busiest stays within
  // ln ln n / ln 2 + O(1) ≈ 1.2 + O(1) of the average however many leases are taken (Berenbrink et
  // al., "Balanced allocations: the heavily loaded case", 2000); random picks spread like 10
  // binomials of σ = √(5000 · 0.1 · 0.9) ≈ 21, a range of about 3σ ≈ 65. Allow max − min ≤ 5.
  const list = candidates(10);
  const strategy = new PowerOfTwoChoicesStrategy();
  const ctx = seededContext(6);
  for (let i = 0; i < 5000; i++) {
    const chosen = strategy.pick(list, ctx);
    list.find((c) => c === chosen)!.inFlight++;
  }
  const counts = list.map((c) => c.inFlight);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 5, `in-flight counts ${counts}`);
});
