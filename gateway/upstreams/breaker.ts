/**
 * One opossum circuit breaker per worker. Connection errors, timeouts and 5xx answers count as
 * failures; 4xx answers are the client's fault and count as successes. Open: the worker leaves the
 * candidates. After resetTimeoutMs it is half-open: exactly one trial request goes through (the
 * others are refused while it is pending) and its outcome closes or re-opens the breaker; a trial
 * that ends in a way that does not count (the client left, or shortened the deadline) decides
 * nothing, and the next request is the trial.
 * The per-request deadline is enforced by the forwarder, not by opossum's own `timeout`, because
 * opossum aborts one shared AbortController per breaker and our deadlines differ per request.
 */
import CircuitBreaker from 'opossum';
import type { GatewayConfig } from '../config/schema.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** Thrown or rejected by an attempt to say how the breaker should count it. */
export class UpstreamFailure extends Error {
  constructor(message: string, readonly reason: 'connect' | 'reset' | 'timeout' | 'status' | 'malformed' | 'aborted', readonly countsAsFailure = true) {
    super(message);
    this.name = 'UpstreamFailure';
  }
}

export interface Breaker {
  readonly state: BreakerState;
  /** Whether a request may be sent now (closed, or half-open with no trial under way). */
  readonly admits: boolean;
  fire<T>(attempt: () => Promise<T>): Promise<T>;
  shutdown(): void;
}

/** What opossum rejects with while it refuses calls: forward.ts retries these elsewhere. */
function breakerOpenError(): Error {
  return Object.assign(new Error('Breaker is open'), { code: 'EOPENBREAKER' });
}

export function createBreaker(options: GatewayConfig['breaker'], onTransition: (state: BreakerState) => void): Breaker {
  const breaker = new CircuitBreaker((attempt: () => Promise<unknown>) => attempt(), {
    timeout: false,
    errorThresholdPercentage: options.errorThresholdPercentage,
    volumeThreshold: options.volumeThreshold,
    resetTimeout: options.resetTimeoutMs,
    rollingCountTimeout: options.rollingWindowMs,
    rollingCountBuckets: 10,
    // Only counts decide the breaker. Latency percentiles would sort every sample in the window on
    // each snapshot and failure (costliest in a failure storm); the pool keeps its own latency EWMA.
    rollingPercentilesEnabled: false,
    enableSnapshots: false,
    // Failures the client caused (or a client that went away) do not count against the worker.
    errorFilter: (err: unknown) => err instanceof UpstreamFailure && !err.countsAsFailure,
  });
  let trialUnderWay = false;
  breaker.on('open', () => onTransition('open'));
  breaker.on('halfOpen', () => onTransition('half-open'));
  breaker.on('close', () => onTransition('closed'));
  const state = (): BreakerState => (breaker.opened ? 'open' : breaker.halfOpen ? 'half-open' : 'closed');
  return {
    get state() {
      return state();
    },
    get admits() {
      const s = state();
      return s === 'closed' || (s === 'half-open' && !trialUnderWay);
    },
    fire<T>(attempt: () => Promise<T>): Promise<T> {
      // Closed (the steady state) or open (opossum refuses at once): opossum's own promise.
      if (!breaker.halfOpen) return breaker.fire(attempt) as Promise<T>;
      if (trialUnderWay) return Promise.reject(breakerOpenError());
      // Half-open: the trial runs beside opossum, which would count an outcome its errorFilter
      // spares (the client went away, or its own short deadline) as a success and close the
      // breaker on a worker that never answered. Here such a trial decides nothing: the breaker
      // stays half-open and the next request is the trial.
      trialUnderWay = true;
      const trial = attempt();
      trial.then(
        () => {
          trialUnderWay = false;
          breaker.close();
        },
        (err: unknown) => {
          trialUnderWay = false;
          if (err instanceof UpstreamFailure && !err.countsAsFailure) return;
          breaker.open();
        },
      );
      return trial;
    },
    shutdown() {
      breaker.shutdown();
    },
  };
}
