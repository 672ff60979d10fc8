/**
 * Least connections: the candidate with the fewest requests in flight from this gateway.
 *
 * Algorithm: one full scan for the minimum `inFlight` (NGINX `least_conn`,
 * `ngx_http_upstream_least_conn_module.c`; Envoy `least_request_lb.cc` with `enable_full_scan`).
 * Ties are broken uniformly at random among all the tied candidates (reservoir sampling), never
 * by index: with equal counts — an idle pool — an index tie-break would send everything to the
 * first worker. NGINX breaks them by weighted round-robin; weights are ignored here, as they are
 * the weighted-round-robin strategy's business.
 *
 * Only this gateway's own leases are counted, not the worker's reported queue depth: that is what
 * the name promises and what operators compare against NGINX/HAProxy. p2c and peak-ewma do read
 * the queue depth.
 *
 * Edge cases: no candidates → undefined; one → it. Cost: one pass, one rng draw per extra tie.
 */
import type { BalancingStrategy, Candidate, PickContext } from './strategy.ts';

export class LeastConnectionsStrategy implements BalancingStrategy {
  readonly name = 'least-connections';

  pick(candidates: readonly Candidate[], ctx: PickContext): Candidate | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    let chosen = candidates[0]!;
    let fewest = chosen.inFlight;
    let ties = 1;
    for (let i = 1; i < n; i++) {
      const candidate = candidates[i]!;
      const inFlight = candidate.inFlight;
      if (inFlight < fewest) {
        chosen = candidate;
        fewest = inFlight;
        ties = 1;
      } else if (inFlight === fewest && ctx.rng() * ++ties < 1) {
        // Reservoir sampling of one: each of the k tied candidates is kept with probability 1/k.
        chosen = candidate;
      }
    }
    return chosen;
  }
}
