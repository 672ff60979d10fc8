/**
 * Round-robin: each candidate in turn.
 *
 * Algorithm: pick the candidate whose last turn is the oldest (least recently picked), with turns
 * recorded per worker id. Over a fixed list of n candidates that is an exact rotation: every window
 * of n consecutive picks holds each candidate once, always in the same cyclic order.
 *
 * Why not a counter modulo the list length (NGINX `ngx_http_upstream_round_robin.c` for equal
 * weights, Envoy `RoundRobinLoadBalancer`)? Those balancers own one fixed host list per upstream.
 * Here one instance serves every model, each with its own list, and the lists shrink on retries.
 * A counter shared across lists of different lengths can starve a worker: alternate picks for model
 * A (workers [a1, a2]) and model B (three workers) and A only ever sees even counter values, so
 * always a1. With turns kept per worker id, lists with no worker in common rotate independently;
 * a worker shared by several models takes its turns from all of them, which keeps the totals per
 * worker even (what the workers feel). And the turns survive any change of the list:
 * - a newcomer (never picked) goes first, then joins the rotation;
 * - a worker that left and came back is owed a turn and gets it next;
 * - a removal just shortens the rotation.
 *
 * Edge cases: no candidates → undefined (no state touched). Ties — only possible between candidates
 * never picked, e.g. on the first round — are broken uniformly at random via `ctx.rng`, never by
 * index; so replicas started together do not all begin with the same worker (Envoy seeds its
 * round-robin index randomly for the same reason).
 *
 * Cost: one pass over the candidates with a Map lookup each; no allocation once every id is known.
 */
import type { BalancingStrategy, Candidate, PickContext } from './strategy.ts';
import { CandidateState } from './candidate-state.ts';

interface Turn {
  seenAt: number;
  /** Pick number of this worker's last turn; 0 = never picked. */
  lastPick: number;
}

export class RoundRobinStrategy implements BalancingStrategy {
  readonly name = 'round-robin';
  readonly #turns = new CandidateState<Turn>(() => ({ seenAt: 0, lastPick: 0 }));

  pick(candidates: readonly Candidate[], ctx: PickContext): Candidate | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    const pick = this.#turns.beginPick();
    let chosen: Candidate | undefined;
    let chosenTurn: Turn | undefined;
    let ties = 0;
    for (let i = 0; i < n; i++) {
      const candidate = candidates[i]!;
      const turn = this.#turns.get(candidate.id);
      if (chosenTurn === undefined || turn.lastPick < chosenTurn.lastPick) {
        chosen = candidate;
        chosenTurn = turn;
        ties = 1;
      } else if (turn.lastPick === chosenTurn.lastPick && ctx.rng() * ++ties < 1) {
        // Reservoir sampling of one: each of the k tied candidates is kept with probability 1/k.
        chosen = candidate;
        chosenTurn = turn;
      }
    }
    chosenTurn!.lastPick = pick;
    return chosen;
  }
}
