/**
 * Power of two choices ('p2c'): draw two distinct candidates uniformly at random, send to the less
 * loaded one.
 *
 * Where it comes from: Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing" (IEEE
 * TPDS 2001) — two random choices instead of one cut the maximum load from Θ(log n / log log n) to
 * Θ(log log n); tower `balance/p2c` (distinct draws), Finagle `P2CLeastLoaded`, Envoy
 * `least_request_lb.cc` with `choice_count: 2`. Compared with a full least-loaded scan it is O(1),
 * and it does not herd: when load figures are stale (another gateway replica's requests, a queue
 * depth reported one response ago), every replica scanning for the global minimum sends its next
 * burst to the same worker, whereas two random choices spread it (Mitzenmacher, "How Useful Is Old
 * Information?", 2000).
 *
 * Load = inFlight + queueDepth: this gateway's open leases plus the queue depth the worker last
 * reported (X-Infergate-Queue-Depth). The sum, not a lexicographic (inFlight, then queueDepth)
 * order, because only the queue depth sees the other gateway replicas' requests; with several
 * replicas a worker busy with their traffic would otherwise look idle to each of them. The sum
 * counts this gateway's own requests still queued at the worker twice; that bias grows with
 * this gateway's lease count, so it pushes in the same direction as the load it double-counts.
 * Peak-ewma uses the same figure, so the two strategies agree on what "busy" means.
 *
 * Edge cases: no candidates → undefined; one → it; two → the less loaded of both. Ties are broken
 * uniformly at random (see `pickOfTwo`), never by index. The most loaded candidate is never chosen
 * unless it ties, because it always loses the comparison it is drawn into.
 */
import type { BalancingStrategy, Candidate, PickContext } from './strategy.ts';
import { pickOfTwo } from './sampling.ts';

/** How busy a worker is, as p2c and peak-ewma read it. */
export function loadOf(candidate: Candidate): number {
  return candidate.inFlight + candidate.queueDepth;
}

function lessLoaded(a: Candidate, b: Candidate): number {
  return loadOf(a) - loadOf(b);
}

export class PowerOfTwoChoicesStrategy implements BalancingStrategy {
  readonly name = 'p2c';

  pick(candidates: readonly Candidate[], ctx: PickContext): Candidate | undefined {
    return pickOfTwo(candidates, ctx.rng, lessLoaded);
  }
}
