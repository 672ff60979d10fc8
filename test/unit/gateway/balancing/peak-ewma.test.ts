import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PeakEwmaStrategy } from '../../../../gateway/balancing/peak-ewma.ts';
import { RoundRobinStrategy } from '../../../../gateway/balancing/round-robin.ts';
import type { BalancingStrategy } from '../../../../gateway/balancing/strategy.ts';
import { candidate, chiSquare, tally, type MutableCandidate } from './fixtures.ts';
import { seededContext } from './seeded-rng.ts';

/** Four workers at 10 ms and one at 50 ms (5× slower), the slow one in the middle. */
function fourFastOneSlow(): MutableCandidate[] {
  return [
    candidate('f0', { latencyMs: 10 }),
    candidate('f1', { latencyMs: 10 }),
    candidate('slow', { latencyMs: 50 }),
    candidate('f2', { latencyMs: 10 }),
    candidate('f3', { latencyMs: 10 }),
  ];
}

test('an idle pool never sends to the 5× slower worker', () => {
  // Cost = latency × (load + 1): 50 for the slow one, 10 for every other. Draws are distinct, so
  // the slow one always meets a 10 and loses: exactly 0 of 10 000 picks (X = 0%).
  const list = fourFastOneSlow();
  const strategy = new PeakEwmaStrategy();
  const ctx = seededContext(1);
  const counts = tally(list.map((c) => c.id), Array.from({ length: 10_000 }, () => strategy.pick(list, ctx)));
  assert.equal(counts[2], 0);
});

test('under load the slow worker gets the share that equalises cost: 1/21 ≈ 4.8%, not 1/5', () => {
  // Each pick leases the chosen worker (inFlight + 1), none is released. Peak-ewma drives the costs
  // 10·(k_fast + 1) and 50·(k_slow + 1) together, so k_fast = 5·k_slow + 4 and, with
  // 4·k_fast + k_slow = 10 000 picks, k_slow = 9 984 / 21 ≈ 475.4 — a 4.75% share where round-robin
  // gives 20%. Two choices keep the five costs within a couple of steps of each other (a slow
  // pick moves its cost by 50), so allow ±6 picks around 475.
  const run = (strategy: BalancingStrategy): number => {
    const list = fourFastOneSlow();
    const ctx = seededContext(2);
    let slow = 0;
    for (let i = 0; i < 10_000; i++) {
      const chosen = strategy.pick(list, ctx);
      list.find((c) => c === chosen)!.inFlight++;
      if (chosen?.id === 'slow') slow++;
    }
    return slow;
  };
  const slow = run(new PeakEwmaStrategy());
  assert.ok(slow >= 469 && slow <= 481, `slow worker got ${slow} of 10 000`);
  assert.equal(run(new RoundRobinStrategy()), 2000);
});

test('the slow worker wins exactly when its cost is lower: P = 2/5 against five busier fast ones', () => {
  // Fast workers at inFlight 5 cost 10 × 6 = 60; the idle slow one costs 50 × 1 = 50. It wins every
  // pair it is drawn into, probability 2/5 with 5 candidates: over 10 000 picks the count is
  // Binomial(10 000, 0.4), mean 4 000, σ = √(10 000 · 0.4 · 0.6) ≈ 49; allow ±5σ.
  const list = fourFastOneSlow();
  for (const c of list) if (c.id !== 'slow') c.inFlight = 5;
  const strategy = new PeakEwmaStrategy();
  const ctx = seededContext(3);
  const [, , slow] = tally(list.map((c) => c.id), Array.from({ length: 10_000 }, () => strategy.pick(list, ctx)));
  assert.ok(Math.abs(slow! - 4000) <= 245, `slow worker got ${slow}`);
});

test('the reported queue depth counts as pending work', () => {
  // 10 × (0 + 4 + 1) = 50 > 20 × (0 + 0 + 1) = 20.
  const strategy = new PeakEwmaStrategy();
  const ctx = seededContext(4);
  const queued = candidate('fast-but-queued', { latencyMs: 10, queueDepth: 4 });
  const slower = candidate('slower-idle', { latencyMs: 20 });
  for (let i = 0; i < 20; i++) assert.equal(strategy.pick([queued, slower], ctx), slower);
});

test('with defaultLatencyMs, a worker with no sample yet is costed at it (tower default_rtt)', () => {
  const ctx = seededContext(5);
  const fresh = candidate('fresh', { latencyMs: 0 });
  const known = candidate('known', { latencyMs: 10 });
  // Default 5 < 10: the newcomer gets tried at once.
  const eager = new PeakEwmaStrategy({ defaultLatencyMs: 5 });
  for (let i = 0; i < 20; i++) assert.equal(eager.pick([known, fresh], ctx), fresh);
  // Default 20 > 10: an idle known worker wins; once it has 2 in flight (10 × 3 = 30 > 20) the newcomer does.
  const cautious = new PeakEwmaStrategy({ defaultLatencyMs: 20 });
  for (let i = 0; i < 20; i++) assert.equal(cautious.pick([known, fresh], ctx), known);
  const busyKnown = candidate('known', { latencyMs: 10, inFlight: 2 });
  for (let i = 0; i < 20; i++) assert.equal(cautious.pick([busyKnown, fresh], ctx), fresh);
});

test('without defaultLatencyMs, a worker with no sample borrows its rival\'s latency and competes on load', () => {
  const strategy = new PeakEwmaStrategy();
  const ctx = seededContext(6);
  const fresh = candidate('fresh', { latencyMs: 0 });
  // Equal load: a tie at 1 000 × 1, broken at random — 2 000 picks, 1 000 each expected; df 1, 10.83.
  const known = candidate('known', { latencyMs: 1000 });
  const counts = tally(['fresh', 'known'], Array.from({ length: 2000 }, () => strategy.pick([fresh, known], ctx)));
  assert.ok(chiSquare(counts, [1000, 1000]) < 10.83, `counts ${counts}`);
  // One more lease on either side decides it, whatever the latency scale.
  const busyKnown = candidate('known', { latencyMs: 0.2, inFlight: 1 });
  for (let i = 0; i < 20; i++) assert.equal(strategy.pick([busyKnown, fresh], ctx), fresh);
  const busyFresh = candidate('fresh', { latencyMs: 0, queueDepth: 1 });
  for (let i = 0; i < 20; i++) assert.equal(strategy.pick([busyFresh, known], ctx), known);
  // Neither sampled: load alone.
  const otherFresh = candidate('other-fresh', { latencyMs: 0, inFlight: 2 });
  for (let i = 0; i < 20; i++) assert.equal(strategy.pick([otherFresh, fresh], ctx), fresh);
});

test('a latency that is not a positive number counts as "no sample"', () => {
  const strategy = new PeakEwmaStrategy({ defaultLatencyMs: 5 });
  const ctx = seededContext(7);
  const broken = candidate('nan', { latencyMs: Number.NaN });
  const known = candidate('known', { latencyMs: 10 });
  for (let i = 0; i < 20; i++) assert.equal(strategy.pick([known, broken], ctx), broken); // 5 < 10
});
