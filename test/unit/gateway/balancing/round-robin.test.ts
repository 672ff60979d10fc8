import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RoundRobinStrategy } from '../../../../gateway/balancing/round-robin.ts';
import type { Candidate } from '../../../../gateway/balancing/strategy.ts';
import { candidate, candidates } from './fixtures.ts';
import { seededContext } from './seeded-rng.ts';

function picks(strategy: RoundRobinStrategy, list: readonly Candidate[], count: number, seed = 1): string[] {
  const ctx = seededContext(seed);
  return Array.from({ length: count }, () => strategy.pick(list, ctx)!.id);
}

test('n×k picks over a fixed list: each candidate exactly k times, in one fixed cyclic order', () => {
  // No tolerance: round-robin is exact. Every window of n consecutive picks is a permutation of the
  // candidates, and the sequence repeats with period n.
  const n = 5;
  const k = 40;
  const list = candidates(n);
  const sequence = picks(new RoundRobinStrategy(), list, n * k);
  const cycle = sequence.slice(0, n);
  assert.deepEqual([...cycle].sort(), list.map((c) => c.id).sort());
  for (let i = 0; i < sequence.length; i++) assert.equal(sequence[i], cycle[i % n], `pick ${i}`);
  for (const c of list) assert.equal(sequence.filter((id) => id === c.id).length, k);
});

test('the first round starts at a random candidate, not always the first (replicas do not march in step)', () => {
  const list = candidates(4);
  const starts = new Set<string>();
  for (let seed = 1; seed <= 40; seed++) starts.add(picks(new RoundRobinStrategy(), list, 1, seed)[0]!);
  // Each start is one of 4 with probability 1/4: P(some candidate never starts in 40 seeded runs)
  // ≤ 4·(3/4)^40 ≈ 4e-5.
  assert.equal(starts.size, 4);
});

test('one instance shared by two models rotates each model fairly, even when their picks interleave', () => {
  // With a counter modulo the list length, alternating A = [a1, a2] and B = [b1, b2, b3] gives A
  // only even counter values — a1 every time. Turns kept per worker id make the rotations independent.
  const strategy = new RoundRobinStrategy();
  const a = [candidate('a1'), candidate('a2')];
  const b = [candidate('b1'), candidate('b2'), candidate('b3')];
  const ctx = seededContext(2);
  const counts = new Map<string, number>();
  for (let i = 0; i < 600; i++) {
    const picked = strategy.pick(i % 2 === 0 ? a : b, ctx)!;
    counts.set(picked.id, (counts.get(picked.id) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries([...counts].sort()), { a1: 150, a2: 150, b1: 100, b2: 100, b3: 100 });
});

test('a worker shared by two models takes turns from both: totals per worker stay even', () => {
  // A = [w1, w2] and B = [w2] alternate. B's picks all land on w2, so A's go to the worker that has
  // waited longer, w1: 300 each — the same split a per-worker total would ask for.
  const strategy = new RoundRobinStrategy();
  const [w1, w2] = [candidate('w1'), candidate('w2')];
  const ctx = seededContext(7);
  const counts = new Map<string, number>();
  for (let i = 0; i < 600; i++) {
    const picked = strategy.pick(i % 2 === 0 ? [w1, w2] : [w2], ctx)!;
    counts.set(picked.id, (counts.get(picked.id) ?? 0) + 1);
  }
  assert.ok(Math.abs(counts.get('w1')! - 300) <= 1 && Math.abs(counts.get('w2')! - 300) <= 1, JSON.stringify(Object.fromEntries(counts)));
});

test('overlapping lists (retries excluding a worker) still give every worker its turn', () => {
  const strategy = new RoundRobinStrategy();
  const [w0, w1, w2] = candidates(3) as [Candidate, Candidate, Candidate];
  const ctx = seededContext(3);
  const counts = new Map<string, number>();
  for (let i = 0; i < 900; i++) {
    // Every third pick is a retry that excludes w0.
    const list = i % 3 === 2 ? [w1, w2] : [w0, w1, w2];
    const picked = strategy.pick(list, ctx)!;
    counts.set(picked.id, (counts.get(picked.id) ?? 0) + 1);
  }
  // Least-recently-picked keeps the three within one turn of each other: 300 each, ±1.
  for (const id of ['w0', 'w1', 'w2']) assert.ok(Math.abs(counts.get(id)! - 300) <= 1, `${id}: ${counts.get(id)}`);
});

test('a newcomer gets the next turn, then the rotation continues over everyone', () => {
  const strategy = new RoundRobinStrategy();
  const list = candidates(3);
  const ctx = seededContext(4);
  for (let i = 0; i < 7; i++) strategy.pick(list, ctx);
  const grown = [...list, candidate('new')];
  assert.equal(strategy.pick(grown, ctx)!.id, 'new');
  const next = Array.from({ length: 8 }, () => strategy.pick(grown, ctx)!.id);
  assert.deepEqual([...next.slice(0, 4)].sort(), ['new', 'w0', 'w1', 'w2']);
  assert.deepEqual(next.slice(4), next.slice(0, 4));
});

test('a removal shortens the rotation; a worker coming back is owed a turn and gets it next', () => {
  const strategy = new RoundRobinStrategy();
  const list = candidates(4);
  const ctx = seededContext(5);
  const cycle = Array.from({ length: 4 }, () => strategy.pick(list, ctx)!.id);
  const gone = cycle[1]!;
  const without = list.filter((c) => c.id !== gone);
  const meanwhile = Array.from({ length: 9 }, () => strategy.pick(without, ctx)!.id);
  const rest = cycle.filter((id) => id !== gone);
  assert.deepEqual(meanwhile, [...rest, ...rest, ...rest]);
  assert.equal(strategy.pick(list, ctx)!.id, gone);
});
