/**
 * Weighted round-robin, NGINX's smooth variant (`ngx_http_upstream_get_peer` in
 * `ngx_http_upstream_round_robin.c`, 2012): on each pick every candidate's current weight grows by
 * its weight; the candidate with the largest current weight is chosen and its current weight drops
 * by the total of the weights. Over any Σw consecutive picks of a fixed list each candidate gets
 * exactly its weight's share, and the picks are interleaved rather than bunched: weights
 * { a: 5, b: 1, c: 1 } give `a a b a c a a`, not `a a a a a b c`.
 *
 * Current weights are kept per worker id (candidate-state.ts), so they survive the list changing
 * between picks; a candidate missing from a pick keeps its current weight, as an NGINX peer that is
 * down does, and resumes from it when it is back.
 *
 * Edge cases: no candidates → undefined; one → it (its state still advances). Ties for the largest
 * current weight are broken uniformly at random via `ctx.rng` (NGINX takes the first in config
 * order; never by index here), so `a a b a c a a` may come out as `a a c a b a a`. NGINX's
 * `effective_weight`, lowered on failures, is left out: failing workers are the breaker's job, and
 * the pool filters them out before `pick`. A non-positive or non-numeric weight counts as 0.
 *
 * Cost: one pass with a Map lookup per candidate; no allocation once every id is known.
 */
import type { BalancingStrategy, Candidate, PickContext } from './strategy.ts';
import { CandidateState } from './candidate-state.ts';

interface Current {
  seenAt: number;
  /** NGINX `current_weight`. */
  weight: number;
}

export class WeightedRoundRobinStrategy implements BalancingStrategy {
  readonly name = 'weighted-round-robin';
  readonly #current = new CandidateState<Current>(() => ({ seenAt: 0, weight: 0 }));

  pick(candidates: readonly Candidate[], ctx: PickContext): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    this.#current.beginPick();
    let total = 0;
    let chosen: Candidate | undefined;
    let chosenCurrent: Current | undefined;
    let ties = 0;
    for (let i = 0; i < n; i++) {
      const candidate = candidates[i]!;
      const weight = candidate.weight > 0 ? candidate.weight : 0;
      const current = this.#current.get(candidate.id);
      current.weight += weight;
      total += weight;
      if (chosenCurrent === undefined || current.weight > chosenCurrent.weight) {
        chosen = candidate;
        chosenCurrent = current;
        ties = 1;
      } else if (current.weight === chosenCurrent.weight && ctx.rng() * ++ties < 1) {
        // Reservoir sampling of one: each of the k tied candidates is kept with probability 1/k.
        chosen = candidate;
        chosenCurrent = current;
      }
    }
    chosenCurrent!.weight -= total;
    return chosen;
  }
}
