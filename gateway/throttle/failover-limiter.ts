/**
 * What happens when the shared store cannot decide: wraps the Redis limiter with the configured
 * policy.
 * - `open`: the request is decided by a local in-memory bucket instead (same plan, per replica, so
 *   N replicas admit up to N times the plan while Redis is away); each such decision is reported
 *   to `onFallback` (count it), each change of state to `onStateChange` (log it).
 * - `closed`: `take` throws StoreUnavailableError; the throttle stage answers 503
 *   GW_ERR_RATE_LIMIT_UNAVAILABLE.
 *
 * After a store failure the store is left alone for `cooldownMs` — decisions are local (open) or
 * refused (closed) at once, so a Redis that is slow rather than down does not cost every request the
 * full deadline — then one request at a time probes it again; the first success puts every request
 * back on the shared store. No restart: the Redis client reconnects on its own.
 *
 * @example
 *   const limiter = new FailoverLimiter(new RedisLimiter({ url, deadlineMs: 50 }), {
 *     policy: 'open',
 *     onFallback: () => metrics.rateLimitFallbacks.inc(),
 *     onStateChange: (state, err) => logger.warn({ err }, `rate limit store ${state}`),
 *   });
 */
import { MemoryLimiter } from './memory-limiter.ts';
import { promised, StoreUnavailableError, type Decision, type RateLimiter, type RatePlan } from './limiter.ts';

export type FailurePolicy = 'open' | 'closed';

export interface FailoverLimiterOptions {
  policy: FailurePolicy;
  /** The local limiter of policy `open`; default a new MemoryLimiter. */
  local?: RateLimiter;
  /** After a failure, skip the store for this long (ms); default 1000. 0 = try it on every call. */
  cooldownMs?: number;
  /** Monotonic clock in ms; default performance.now(). */
  now?: () => number;
  /** Every decision that could not come from the store (open: decided locally; closed: refused). */
  onFallback?: (err: StoreUnavailableError) => void;
  /** The store went away (`degraded`, with the error) or answered again (`recovered`). */
  onStateChange?: (state: 'degraded' | 'recovered', err?: StoreUnavailableError) => void;
}

export class FailoverLimiter implements RateLimiter {
  private readonly policy: FailurePolicy;
  private readonly local: RateLimiter;
  private readonly cooldownMs: number;
  private readonly now: () => number;
  private readonly onFallback: (err: StoreUnavailableError) => void;
  private readonly onStateChange: (state: 'degraded' | 'recovered', err?: StoreUnavailableError) => void;
  private degraded = false;
  /** Until when the store is skipped, after a failure. */
  private skipUntil = 0;
  private probing = false;
  private lastError: StoreUnavailableError | undefined;

  constructor(
    private readonly store: RateLimiter,
    options: FailoverLimiterOptions,
  ) {
    if (options.policy !== 'open' && options.policy !== 'closed') throw new TypeError(`FailoverLimiter: policy must be 'open' or 'closed', got ${String(options.policy)}`);
    this.policy = options.policy;
    this.local = options.local ?? new MemoryLimiter();
    this.cooldownMs = options.cooldownMs ?? 1000;
    if (!(this.cooldownMs >= 0)) throw new TypeError('FailoverLimiter: cooldownMs must be >= 0');
    this.now = options.now ?? (() => performance.now());
    this.onFallback = options.onFallback ?? (() => {});
    this.onStateChange = options.onStateChange ?? (() => {});
  }

  /** True while the store is failing and decisions are local (open) or refused (closed). */
  get isDegraded(): boolean {
    return this.degraded;
  }

  take(key: string, cost: number, plan: RatePlan): Promise<Decision> {
    return promised(this.takeNow(key, cost, plan));
  }

  /** `take`, decided at once when the store can (its lease covers the take): no word from the store, so no change of state. */
  takeNow(key: string, cost: number, plan: RatePlan): Decision | Promise<Decision> {
    if (this.degraded && (this.probing || this.now() < this.skipUntil)) {
      return this.fallback(key, cost, plan, this.lastError ?? new StoreUnavailableError('rate limit store unavailable'));
    }
    let decided: Decision | Promise<Decision>;
    try {
      decided = this.store.takeNow !== undefined ? this.store.takeNow(key, cost, plan) : this.store.take(key, cost, plan);
    } catch (err) {
      decided = Promise.reject(err);
    }
    if (!(decided instanceof Promise)) return decided;
    const probe = this.degraded;
    if (probe) this.probing = true;
    // Plain then() rather than an async function: this runs for every request, and each await
    // layer is a promise and a microtask more.
    return decided.then(
      probe ? (decision) => this.probeDone(decision) : this.storeAnswered,
      (err: unknown) => {
        if (probe) this.probing = false;
        if (!(err instanceof StoreUnavailableError)) throw err; // a caller bug (bad plan), not the store
        this.lastError = err;
        this.skipUntil = this.now() + this.cooldownMs;
        if (!this.degraded) {
          this.degraded = true;
          this.onStateChange('degraded', err);
        }
        return this.fallback(key, cost, plan, err);
      },
    );
  }

  private readonly storeAnswered = (decision: Decision): Decision => {
    if (this.degraded) {
      this.degraded = false;
      this.onStateChange('recovered');
    }
    return decision;
  };

  private probeDone(decision: Decision): Decision {
    this.probing = false;
    return this.storeAnswered(decision);
  }

  private fallback(key: string, cost: number, plan: RatePlan, err: StoreUnavailableError): Decision | Promise<Decision> {
    this.onFallback(err);
    if (this.policy === 'closed') return Promise.reject(err);
    return this.local.takeNow !== undefined ? this.local.takeNow(key, cost, plan) : this.local.take(key, cost, plan);
  }
}
