/**
 * The balancing interface. A strategy only chooses among the candidates it is handed: health,
 * breaker state, in-flight caps and retry exclusions are filtered out before `pick`, by the pool.
 * The pool owns the load figures (in-flight leases, latency EWMA, reported queue depth); strategies
 * only read them. (Envoy `LoadBalancer::chooseHost`; tower `balance/p2c`.)
 *
 * @example
 *   const strategy = createStrategy('p2c', {});
 *   const chosen = strategy.pick(pool.candidatesFor('iris'), { rng: Math.random, now: performance.now });
 */

/** What a strategy may read about a worker. */
export interface Candidate {
  /** Stable, opaque worker id. */
  readonly id: string;
  /** Requests this gateway process has in flight to the worker (leases not yet released). */
  readonly inFlight: number;
  /** Peak-EWMA of response latency in ms (gateway/upstreams/peak-ewma.ts); 0 before any sample. */
  readonly latencyMs: number;
  /** Queue depth the worker last reported (X-Infergate-Queue-Depth). */
  readonly queueDepth: number;
  /** Relative weight from config, > 0 (weighted round-robin). */
  readonly weight: number;
}

export interface PickContext {
  /** Uniform in [0, 1); seeded in tests. */
  rng: () => number;
  /** Monotonic ms. */
  now: () => number;
}

export interface BalancingStrategy {
  readonly name: string;
  /** One of `candidates`, or undefined when there are none. Never mutates its input. */
  pick(candidates: readonly Candidate[], ctx: PickContext): Candidate | undefined;
}
