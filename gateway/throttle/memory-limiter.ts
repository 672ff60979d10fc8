/**
 * The token bucket in process memory: the embedded default when no Redis is configured, and the
 * local fallback of a fail-open FailoverLimiter. Same maths as token-bucket.lua, step for step
 * (refill, take only when enough, a denial changes nothing, forget a bucket once it is full), so one
 * conformance suite holds both to the same behaviour. Limits are per process: N replicas with memory
 * limiters admit up to N times the plan.
 *
 * Memory is bounded two ways: a bucket is dropped once it would be full again (a full bucket and no
 * bucket are the same thing; the TTL of the Redis key), swept every `sweepIntervalMs` on the way
 * through `take`; and beyond `maxKeys` the least recently used bucket is dropped (which can only make
 * that key's next request more lenient, never wrongly denied).
 *
 * @example
 *   const limiter = new MemoryLimiter();
 *   await limiter.take(bucketKey('alice'), 1, { ratePerSec: 5, burst: 10 }); // { allowed: true, remaining: 9, ... }
 */
import { validateTake, type Decision, type RateLimiter, type RatePlan } from './limiter.ts';

export interface MemoryLimiterOptions {
  /** Milliseconds on a monotonic clock; default `performance.now()`. Tests pass a manual clock. */
  now?: () => number;
  /** Most buckets held at once; default 100 000 (about 10 MB). */
  maxKeys?: number;
  /** Longest a bucket is kept (bounds a plan with no or a very slow refill); default 24 h, as the Redis TTL cap. */
  maxTtlMs?: number;
  /** How often `take` sweeps out expired buckets; default 10 s. */
  sweepIntervalMs?: number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was computed (ms, `now()` clock). */
  ts: number;
  /** When the bucket would be full again, plus margin: it is dropped after this. */
  expiresAt: number;
}

/** Tolerance for float sums of small refills landing a hair below an integer (as in the Lua script). */
const EPS = 1e-9;
/** Kept past the moment a bucket is full, as the Redis key's TTL margin. */
const EXPIRY_MARGIN_MS = 1000;

export const DEFAULT_MAX_TTL_MS = 24 * 60 * 60 * 1000;

export class MemoryLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxKeys: number;
  private readonly maxTtlMs: number;
  private readonly sweepIntervalMs: number;
  private lastSweep: number;

  constructor(options: MemoryLimiterOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.maxKeys = options.maxKeys ?? 100_000;
    this.maxTtlMs = options.maxTtlMs ?? DEFAULT_MAX_TTL_MS;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 10_000;
    if (!(Number.isInteger(this.maxKeys) && this.maxKeys > 0)) throw new TypeError('MemoryLimiter: maxKeys must be a positive integer');
    if (!(this.maxTtlMs >= 1)) throw new TypeError('MemoryLimiter: maxTtlMs must be >= 1');
    if (!(this.sweepIntervalMs > 0)) throw new TypeError('MemoryLimiter: sweepIntervalMs must be positive');
    this.lastSweep = this.now();
  }

  /** Buckets currently held (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  async take(key: string, cost: number, plan: RatePlan): Promise<Decision> {
    return this.takeNow(key, cost, plan);
  }

  /** `take` without the promise: this limiter never waits. */
  takeNow(key: string, cost: number, plan: RatePlan): Decision {
    validateTake(cost, plan);
    const now = this.now();
    if (now - this.lastSweep >= this.sweepIntervalMs) this.sweep(now);
    const { ratePerSec: rate, burst } = plan;

    let bucket = this.buckets.get(key);
    if (bucket !== undefined && bucket.expiresAt <= now) bucket = undefined; // full again: same as none
    let tokens = burst;
    let ts = now;
    if (bucket !== undefined) {
      ts = bucket.ts;
      tokens = bucket.tokens;
    }
    const elapsed = Math.max(0, now - ts);
    tokens = Math.min(burst, tokens + (elapsed * rate) / 1000);

    let allowed = false;
    let retryAfterMs = 0;
    if (tokens + EPS >= cost) {
      allowed = true;
      tokens -= cost;
      bucket = { tokens, ts: now, expiresAt: 0 };
    } else if (cost > burst || rate <= 0) {
      retryAfterMs = Number.POSITIVE_INFINITY;
    } else {
      retryAfterMs = Math.ceil(((cost - tokens) * 1000) / rate);
    }

    let resetMs = 0;
    if (tokens + EPS < burst) resetMs = rate > 0 ? Math.ceil(((burst - tokens) * 1000) / rate) : this.maxTtlMs;
    if (bucket !== undefined) {
      // Every call moves the expiry, as PEXPIRE does in the script; a denial of an unknown key stores nothing.
      bucket.expiresAt = now + Math.min(resetMs + EXPIRY_MARGIN_MS, this.maxTtlMs);
      this.buckets.delete(key); // re-insert: Map order is then least recently used first
      this.buckets.set(key, bucket);
      if (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    return { allowed, limit: burst, remaining: Math.floor(tokens + EPS), resetMs, retryAfterMs };
  }

  /** Drops every bucket that is full again. Called by `take` every `sweepIntervalMs`. */
  sweep(now = this.now()): void {
    this.lastSweep = now;
    for (const [key, bucket] of this.buckets) if (bucket.expiresAt <= now) this.buckets.delete(key);
  }
}
