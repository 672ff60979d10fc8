/**
 * Random: every candidate with probability 1/n, independently of load and of earlier picks.
 *
 * The baseline the others are measured against, and a sound choice when many gateway replicas
 * balance the same workers with no shared state (Envoy `RandomLoadBalancer`; NGINX `random`
 * without `two`).
 *
 * Edge cases: no candidates → undefined; one → it (no rng draw). There are no ties to break.
 */
import type { BalancingStrategy, Candidate, PickContext } from './strategy.ts';
import { randomIndex } from './sampling.ts';

export class RandomStrategy implements BalancingStrategy {
  readonly name = 'random';

  pick(candidates: readonly Candidate[], ctx: PickContext): Candidate | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    return candidates[randomIndex(ctx.rng, n)];
  }
}
