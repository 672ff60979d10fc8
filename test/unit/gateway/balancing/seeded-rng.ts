/**
 * Seeded randomness for balancing tests, so statistical assertions are exact and never flaky.
 * mulberry32 (Tommy Ettinger, public domain): a 32-bit state PRNG, fast, with full 2^32 period and
 * good enough equidistribution for goodness-of-fit tests of a few thousand draws.
 */
import type { PickContext } from '../../../../gateway/balancing/strategy.ts';

export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A PickContext with a seeded rng and a clock stopped at 0 (no strategy here reads time). */
export function seededContext(seed: number): PickContext {
  return { rng: mulberry32(seed), now: () => 0 };
}
