/** Candidate builders and counting for the balancing tests. */
import type { Candidate } from '../../../../gateway/balancing/strategy.ts';

/** A Candidate whose load figures a test can move, as the pool does. */
export type MutableCandidate = { -readonly [K in keyof Candidate]: Candidate[K] };

/** A candidate with neutral load figures, overridden by `fields`. */
export function candidate(id: string, fields: Partial<Omit<Candidate, 'id'>> = {}): MutableCandidate {
  return { id, inFlight: 0, latencyMs: 10, queueDepth: 0, weight: 1, ...fields };
}

/** `n` neutral candidates w0 … w(n−1). */
export function candidates(n: number): MutableCandidate[] {
  return Array.from({ length: n }, (_, i) => candidate(`w${i}`));
}

/**
 * Pearson's chi-square statistic of observed counts against expected counts.
 * Critical values used in these tests (upper tail, p = 0.001): df 1 → 10.83, df 2 → 13.82,
 * df 3 → 16.27, df 4 → 18.47 (standard χ² tables, e.g. NIST/SEMATECH e-Handbook §1.3.6.7.4).
 */
export function chiSquare(observed: readonly number[], expected: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < observed.length; i++) {
    const e = expected[i]!;
    const d = observed[i]! - e;
    sum += (d * d) / e;
  }
  return sum;
}

/** Counts how often each candidate (by id) is picked. */
export function tally(ids: readonly string[], picks: Iterable<Candidate | undefined>): number[] {
  const counts = ids.map(() => 0);
  for (const picked of picks) {
    const i = picked === undefined ? -1 : ids.indexOf(picked.id);
    if (i < 0) throw new Error(`picked something not offered: ${picked?.id}`);
    counts[i]!++;
  }
  return counts;
}
