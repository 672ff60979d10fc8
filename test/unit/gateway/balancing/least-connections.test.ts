import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeastConnectionsStrategy } from '../../../../gateway/balancing/least-connections.ts';
import { candidate, chiSquare, tally } from './fixtures.ts';
import { mulberry32, seededContext } from './seeded-rng.ts';

test('never picks a candidate busier than another on offer', () => {
  const strategy = new LeastConnectionsStrategy();
  const ctx = seededContext(1);
  const loads = mulberry32(2);
  for (let round = 0; round < 2000; round++) {
    const n = 1 + (round % 8);
    const list = Array.from({ length: n }, (_, i) => candidate(`w${i}`, { inFlight: Math.floor(loads() * 6) }));
    const fewest = Math.min(...list.map((c) => c.inFlight));
    assert.equal(strategy.pick(list, ctx)!.inFlight, fewest, `round ${round}`);
  }
});

test('spreads ties uniformly among the tied, wherever they sit in the list', () => {
  // Three candidates tie at inFlight 1 (positions 1, 2 and 4); the two others are busier and must
  // never be picked. Among the tied, 6 000 picks expect 2 000 each; χ² with df 2 stays under 13.82
  // with probability 0.999 for a uniform tie-break. An index tie-break would give 6 000 / 0 / 0.
  const list = [
    candidate('busy3', { inFlight: 3 }),
    candidate('t1', { inFlight: 1 }),
    candidate('t2', { inFlight: 1 }),
    candidate('busy5', { inFlight: 5 }),
    candidate('t3', { inFlight: 1 }),
  ];
  const strategy = new LeastConnectionsStrategy();
  const ctx = seededContext(3);
  const counts = tally(list.map((c) => c.id), Array.from({ length: 6000 }, () => strategy.pick(list, ctx)));
  assert.equal(counts[0], 0);
  assert.equal(counts[3], 0);
  const tied = [counts[1]!, counts[2]!, counts[4]!];
  assert.ok(chiSquare(tied, [2000, 2000, 2000]) < 13.82, `tied counts ${tied}`);
});

test('balances a pool whose leases it drives: in-flight counts never differ by more than one', () => {
  // The pool increments inFlight when it leases the picked worker; with no releases, always taking
  // the minimum keeps max − min ≤ 1 after every pick.
  const list = Array.from({ length: 6 }, (_, i) => candidate(`w${i}`));
  const strategy = new LeastConnectionsStrategy();
  const ctx = seededContext(4);
  for (let i = 0; i < 600; i++) {
    const chosen = strategy.pick(list, ctx);
    list.find((c) => c === chosen)!.inFlight++;
    const counts = list.map((c) => c.inFlight);
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `after ${i + 1} picks: ${counts}`);
  }
});

test('counts only this gateway\'s leases: reported queue depth and latency do not matter', () => {
  const list = [candidate('deep-queue', { inFlight: 0, queueDepth: 100, latencyMs: 500 }), candidate('one-lease', { inFlight: 1 })];
  const strategy = new LeastConnectionsStrategy();
  const ctx = seededContext(5);
  for (let i = 0; i < 20; i++) assert.equal(strategy.pick(list, ctx)!.id, 'deep-queue');
});
