/**
 * The random draws every strategy shares. `rng` is the PickContext's: uniform in [0, 1), seeded in
 * tests (Envoy passes a `Random::RandomGenerator&` to every balancer for the same reason).
 */

/** A uniform integer in [0, n) for n ≥ 1; stays in range even for an rng outside its contract. */
export function randomIndex(rng: () => number, n: number): number {
  const i = Math.floor(rng() * n);
  return i >= 0 ? (i < n ? i : n - 1) : 0;
}

/**
 * Power of two choices (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing",
 * 2001; tower `balance/p2c`, which samples two *distinct* indices): draw two different candidates
 * uniformly, keep the better by `compare` (negative: `a` is better, positive: `b`, 0: a tie).
 *
 * A tie keeps the first draw. That is a uniform random tie-break, not an index one: the ordered pair
 * is uniform over all pairs, so each of the two is equally likely to have been drawn first. One
 * candidate is returned as is; none gives undefined. Two rng calls, no allocation.
 */
export function pickOfTwo<C>(candidates: readonly C[], rng: () => number, compare: (a: C, b: C) => number): C | undefined {
  const n = candidates.length;
  if (n <= 1) return candidates[0];
  const i = randomIndex(rng, n);
  let j = randomIndex(rng, n - 1);
  if (j >= i) j++; // skip i: j is uniform over the other n − 1
  const a = candidates[i]!;
  const b = candidates[j]!;
  return compare(a, b) > 0 ? b : a;
}
