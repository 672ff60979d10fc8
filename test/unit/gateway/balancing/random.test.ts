import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RandomStrategy } from '../../../../gateway/balancing/random.ts';
import { candidate, candidates, chiSquare, tally } from './fixtures.ts';
import { seededContext } from './seeded-rng.ts';

test('uniform: chi-square goodness of fit over 5 candidates × 10 000 picks', () => {
  // H0: each of 5 candidates has probability 1/5, so expect 2 000 each. Pearson's statistic has
  // 4 degrees of freedom; a fair picker exceeds 18.47 with probability 0.001. Seeded, so the
  // outcome is fixed, and checked for several seeds so one lucky seed cannot hide a bias.
  const list = candidates(5);
  const ids = list.map((c) => c.id);
  for (const seed of [1, 2, 3, 4, 5]) {
    const strategy = new RandomStrategy();
    const ctx = seededContext(seed);
    const counts = tally(ids, Array.from({ length: 10_000 }, () => strategy.pick(list, ctx)));
    const statistic = chiSquare(counts, [2000, 2000, 2000, 2000, 2000]);
    assert.ok(statistic < 18.47, `seed ${seed}: χ² = ${statistic.toFixed(2)}, counts ${counts}`);
  }
});

test('ignores load: the busiest candidate is picked as often as any other', () => {
  // 3 candidates × 9 000 picks, expect 3 000 each; df 2, critical value 13.82 at p = 0.001.
  const list = [candidate('idle'), candidate('busy', { inFlight: 100, queueDepth: 50, latencyMs: 900 }), candidate('other')];
  const strategy = new RandomStrategy();
  const ctx = seededContext(6);
  const counts = tally(list.map((c) => c.id), Array.from({ length: 9000 }, () => strategy.pick(list, ctx)));
  assert.ok(chiSquare(counts, [3000, 3000, 3000]) < 13.82, `counts ${counts}`);
});

test('maps the rng onto indexes without bias at the ends', () => {
  const list = candidates(4);
  const strategy = new RandomStrategy();
  assert.equal(strategy.pick(list, { rng: () => 0, now: () => 0 }), list[0]);
  assert.equal(strategy.pick(list, { rng: () => 0.2499999, now: () => 0 }), list[0]);
  assert.equal(strategy.pick(list, { rng: () => 0.25, now: () => 0 }), list[1]);
  assert.equal(strategy.pick(list, { rng: () => 1 - Number.EPSILON, now: () => 0 }), list[3]);
});
