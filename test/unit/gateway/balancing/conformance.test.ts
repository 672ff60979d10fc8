/**
 * The contract every balancing strategy keeps (strategy.ts), run against each registered name —
 * a strategy added to the registry is covered without touching this file. Distribution properties
 * particular to one strategy live in its own test file.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createStrategy, isStrategyName, STRATEGY_NAMES } from '../../../../gateway/balancing/registry.ts';
import type { Candidate, PickContext } from '../../../../gateway/balancing/strategy.ts';
import { candidate, candidates } from './fixtures.ts';
import { mulberry32, seededContext } from './seeded-rng.ts';

/** Candidates with varied, seeded load figures, frozen so any write throws (ESM is strict mode). */
function variedCandidates(n: number, seed: number): readonly Candidate[] {
  const rng = mulberry32(seed);
  const list = Array.from({ length: n }, (_, i) =>
    Object.freeze(candidate(`w${i}`, {
      inFlight: Math.floor(rng() * 4),
      queueDepth: Math.floor(rng() * 3),
      latencyMs: rng() < 0.2 ? 0 : 1 + rng() * 50,
      weight: 1 + Math.floor(rng() * 5),
    })),
  );
  return Object.freeze(list);
}

/** Candidate lists that change between picks: growth, shrinkage, disjoint sets, empty, comebacks. */
function changingLists(): Array<readonly Candidate[]> {
  const pool = variedCandidates(8, 99);
  const at = (...indexes: number[]): readonly Candidate[] => indexes.map((i) => pool[i]!);
  return [at(0, 1, 2), at(0, 1, 2, 3), at(1, 3), [], at(4, 5, 6, 7), at(2), at(7, 0, 5), at(0, 1, 2, 3, 4, 5, 6, 7), at(3, 1)];
}

for (const name of STRATEGY_NAMES) {
  describe(`strategy '${name}' keeps the BalancingStrategy contract`, () => {
    test('is registered under its own name', () => {
      assert.equal(createStrategy(name).name, name);
      assert.ok(isStrategyName(name));
    });

    test('no candidates: undefined, without throwing', () => {
      const strategy = createStrategy(name);
      const ctx = seededContext(1);
      for (let i = 0; i < 3; i++) assert.equal(strategy.pick([], ctx), undefined);
    });

    test('one candidate: that very object, every time', () => {
      const strategy = createStrategy(name);
      const only = candidate('solo', { inFlight: 7, queueDepth: 3, latencyMs: 40 });
      const ctx = seededContext(2);
      for (let i = 0; i < 20; i++) assert.equal(strategy.pick([only], ctx), only);
    });

    test('always returns an element of its input, by identity', () => {
      const strategy = createStrategy(name);
      const ctx = seededContext(3);
      for (let round = 0; round < 50; round++) {
        const list = variedCandidates(1 + (round % 9), 1000 + round);
        for (let i = 0; i < 20; i++) {
          const picked = strategy.pick(list, ctx);
          assert.ok(picked !== undefined && list.includes(picked), `round ${round}: picked ${picked?.id}`);
        }
      }
    });

    test('never mutates its input', () => {
      const strategy = createStrategy(name);
      const list = variedCandidates(6, 4); // frozen: a write would throw
      const before = JSON.stringify(list);
      const ctx = seededContext(4);
      for (let i = 0; i < 200; i++) strategy.pick(list, ctx);
      assert.equal(JSON.stringify(list), before);
    });

    test('is deterministic given a seeded rng', () => {
      const run = (): string[] => {
        const strategy = createStrategy(name);
        const ctx = seededContext(5);
        const out: string[] = [];
        for (const list of changingLists()) for (let i = 0; i < 25; i++) out.push(strategy.pick(list, ctx)?.id ?? '-');
        return out;
      };
      assert.deepEqual(run(), run());
    });

    test('tolerates the candidate set changing between calls', () => {
      const strategy = createStrategy(name);
      const ctx = seededContext(6);
      for (let cycle = 0; cycle < 3; cycle++) {
        for (const list of changingLists()) {
          for (let i = 0; i < 10; i++) {
            const picked = strategy.pick(list, ctx);
            if (list.length === 0) assert.equal(picked, undefined);
            else assert.ok(picked !== undefined && list.includes(picked));
          }
        }
      }
    });

    test('with equal candidates, reaches every one of them (no index bias)', () => {
      const strategy = createStrategy(name);
      const list = candidates(5);
      const ctx = seededContext(7);
      const seen = new Set<string>();
      for (let i = 0; i < 200; i++) seen.add(strategy.pick(list, ctx)!.id);
      assert.equal(seen.size, 5);
    });

    test('stays in range for an rng at the edges of [0, 1)', () => {
      for (const value of [0, 1 - Number.EPSILON]) {
        const strategy = createStrategy(name);
        const ctx: PickContext = { rng: () => value, now: () => 0 };
        const list = variedCandidates(5, 8);
        for (let i = 0; i < 20; i++) assert.ok(list.includes(strategy.pick(list, ctx)!));
      }
    });

    test('instances do not share state', () => {
      // Two fresh instances fed the same seed pick the same, however much a third has been used.
      const busy = createStrategy(name);
      const list = variedCandidates(5, 9);
      for (let i = 0; i < 37; i++) busy.pick(list, seededContext(i));
      const a = createStrategy(name);
      const b = createStrategy(name);
      const ctxA = seededContext(10);
      const ctxB = seededContext(10);
      for (let i = 0; i < 50; i++) assert.equal(a.pick(list, ctxA), b.pick(list, ctxB));
    });
  });
}

describe('registry', () => {
  test('an unknown name throws, naming it and listing the valid ones', () => {
    assert.throws(() => createStrategy('least-conn'), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /'least-conn'/);
      for (const name of STRATEGY_NAMES) assert.ok(err.message.includes(name), `message lists ${name}`);
      return true;
    });
    assert.throws(() => createStrategy(''), /unknown balancing strategy ''/);
  });

  test('isStrategyName accepts exactly the registered names', () => {
    for (const name of STRATEGY_NAMES) assert.equal(isStrategyName(name), true);
    for (const other of ['', 'P2C', 'roundrobin', 'toString', 'constructor', 42, undefined, null]) assert.equal(isStrategyName(other), false);
  });

  test('options are validated when the strategy is built', () => {
    assert.throws(() => createStrategy('peak-ewma', { defaultLatencyMs: 0 }), /defaultLatencyMs/);
    assert.throws(() => createStrategy('peak-ewma', { defaultLatencyMs: Number.NaN }), /defaultLatencyMs/);
    assert.equal(createStrategy('peak-ewma', { defaultLatencyMs: 5 }).name, 'peak-ewma');
  });

  test('each call builds a fresh instance', () => {
    assert.notEqual(createStrategy('round-robin'), createStrategy('round-robin'));
  });
});
