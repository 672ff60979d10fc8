/**
 * Peak-EWMA ('peak-ewma'): latency-aware balancing. Each candidate costs
 *
 *     cost = latencyMs × (inFlight + queueDepth + 1)
 *
 * — its peak-EWMA latency (gateway/upstreams/peak-ewma.ts) times the requests it would have if it
 * got this one: roughly how long this request would wait there. Two distinct candidates are drawn
 * at random and the cheaper one wins.
 *
 * Where it comes from: Finagle `p2c/P2CPeakEwma.scala` and tower `balance/p2c` over `load/peak_ewma.rs`
 * (as Linkerd runs it); Envoy's contrib `peak_ewma` policy uses the same cost and selection. They
 * count pending requests only; here the pending count also includes the queue depth the worker
 * reports (X-Infergate-Queue-Depth), because with several gateway replicas the in-flight count
 * only sees this replica's share — the same load figure as p2c (see power-of-two-choices.ts).
 *
 * Why two choices and not the global minimum: (1) the figures are stale — latency only moves when
 * a response comes back and the queue depth is one response old — and picking the global minimum
 * on stale data herds every request (and every replica) onto the same worker until the data
 * catches up; two random choices do not (Mitzenmacher, "How Useful Is Old Information?", 2000);
 * (2) it reads two candidates, not n — each `latencyMs` read computes a decay; (3) it is what the
 * systems above run in production. With two candidates it is the global minimum anyway.
 *
 * No sample yet (latencyMs is 0, or not a positive number): a new worker must get tried, yet not be
 * flooded before its first response. With `defaultLatencyMs` set it is costed at that latency
 * (tower's `default_rtt`). Without it, it borrows the latency of the candidate it is compared with,
 * so the two compete on load alone (both unsampled: load alone). That default needs no guess of the
 * model's latency, which matters because one strategy instance serves every model, from sub-ms
 * classifiers to second-long ones.
 *
 * Edge cases: no candidates → undefined; one → it. Ties are broken uniformly at random (see
 * `pickOfTwo`), never by index.
 */
import type { BalancingStrategy, Candidate, PickContext } from './strategy.ts';
import { pickOfTwo } from './sampling.ts';
import { loadOf } from './power-of-two-choices.ts';

export interface PeakEwmaStrategyOptions {
  /** Latency assumed for a candidate with no sample yet (tower `default_rtt`); default: its rival's. */
  defaultLatencyMs?: number;
}

export class PeakEwmaStrategy implements BalancingStrategy {
  readonly name = 'peak-ewma';
  readonly #defaultLatencyMs: number | undefined;
  readonly #cheaper: (a: Candidate, b: Candidate) => number;

  constructor(options: PeakEwmaStrategyOptions = {}) {
    const { defaultLatencyMs } = options;
    if (defaultLatencyMs !== undefined && !(Number.isFinite(defaultLatencyMs) && defaultLatencyMs > 0)) {
      throw new RangeError(`peak-ewma: defaultLatencyMs must be a positive number, got ${defaultLatencyMs}`);
    }
    this.#defaultLatencyMs = defaultLatencyMs;
    this.#cheaper = (a, b) => this.#compare(a, b);
  }

  pick(candidates: readonly Candidate[], ctx: PickContext): Candidate | undefined {
    return pickOfTwo(candidates, ctx.rng, this.#cheaper);
  }

  #compare(a: Candidate, b: Candidate): number {
    const rawA = a.latencyMs; // read once: on an Upstream it is a getter that computes the decay
    const rawB = b.latencyMs;
    const sampledA = rawA > 0;
    const sampledB = rawB > 0;
    const fallback = this.#defaultLatencyMs;
    const latencyA = sampledA ? rawA : (fallback ?? (sampledB ? rawB : 1));
    const latencyB = sampledB ? rawB : (fallback ?? (sampledA ? rawA : 1));
    return latencyA * (loadOf(a) + 1) - latencyB * (loadOf(b) + 1);
  }
}

