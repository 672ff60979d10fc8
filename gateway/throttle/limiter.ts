/**
 * The rate limiter interface every store implements (memory, Redis, failover), and the pieces they
 * share: the bucket key, the validation of a call, the store-unavailable error.
 *
 * A denial is a value, not an exception (unkey `internal/services/ratelimit/interface.go`): `take`
 * resolves `{ allowed: false, retryAfterMs }` for a request over its limit and throws only when the
 * store cannot answer in time — the caller's policy (fail open or closed) decides what that means.
 *
 * @example
 *   const decision = await limiter.take(bucketKey(principal.subject, model), cost, { ratePerSec: 10, burst: 20 });
 *   if (!decision.allowed) throw new InfergateError('GW_ERR_RATE_LIMITED', 'rate limit exceeded', rateLimitHeaders(decision));
 */
import type { RatePlan } from '../auth/principal.ts';

export type { RatePlan };

export interface Decision {
  allowed: boolean;
  /** The bucket's capacity (the plan's burst): `RateLimit-Limit`. */
  limit: number;
  /** Whole tokens left after this call (unchanged by a denial). */
  remaining: number;
  /** Milliseconds until the bucket is full again (0 when it is full). */
  resetMs: number;
  /**
   * Milliseconds until `cost` tokens will be there: 0 when allowed; `Infinity` when the request can
   * never be admitted (cost > burst, or a plan with no refill) — map that to an error that says so,
   * since retrying will not help.
   */
  retryAfterMs: number;
}

export interface RateLimiter {
  /**
   * Takes `cost` tokens from the bucket `key` under `plan`, if it holds that many; a denial takes
   * nothing. Throws `StoreUnavailableError` only when the store did not answer within its deadline,
   * and `TypeError` for an invalid cost or plan (a caller bug, never a store failure).
   */
  take(key: string, cost: number, plan: RatePlan): Promise<Decision>;
  /**
   * `take`, without the promise when it decides at once: always for the in-memory limiter, and for
   * a Redis limiter admitting from its lease. The throttle stage then goes on with no microtask.
   */
  takeNow?(key: string, cost: number, plan: RatePlan): Decision | Promise<Decision>;
}

/** `take` from `takeNow`: the same decision, as a promise. */
export function promised(decided: Decision | Promise<Decision>): Promise<Decision> {
  return decided instanceof Promise ? decided : Promise.resolve(decided);
}

/**
 * The store behind a limiter is unreachable, or too slow for the decision deadline. The throttle
 * stage maps it to 503 `GW_ERR_RATE_LIMIT_UNAVAILABLE` when the policy is fail-closed.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** The namespace of every bucket key, for the default `redis.namespace`. */
export const BUCKET_PREFIX = bucketPrefix('infergate');

/** The bucket key prefix of a `redis.namespace`. */
export function bucketPrefix(namespace: string): string {
  return `${namespace}:rl:`;
}

/**
 * The key of one bucket: `{infergate:rl:<subject>}` per principal, `{infergate:rl:<subject>}:<model>`
 * per principal and model. The braces are a Redis Cluster hash tag, so all of a principal's buckets
 * live in one slot. `%`, `{` and `}` in the parts are percent-escaped: the first `}` then always ends
 * the subject, so two different (subject, model) pairs never share a key.
 *
 * @example bucketKey('key:ab12', 'iris') // '{infergate:rl:key:ab12}:iris'
 */
export function bucketKey(subject: string, model?: string, prefix = BUCKET_PREFIX): string {
  const tagged = `{${prefix}${escapePart(subject)}}`;
  return model === undefined ? tagged : `${tagged}:${escapePart(model)}`;
}

function escapePart(s: string): string {
  return s.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Throws a TypeError unless cost and plan are usable; shared by every limiter. */
export function validateTake(cost: number, plan: RatePlan): void {
  if (!Number.isFinite(cost) || cost < 0) throw new TypeError(`rate limit cost must be a finite number >= 0, got ${cost}`);
  if (!Number.isFinite(plan.ratePerSec) || plan.ratePerSec < 0) {
    throw new TypeError(`rate plan ratePerSec must be a finite number >= 0, got ${plan.ratePerSec}`);
  }
  if (!Number.isFinite(plan.burst) || plan.burst <= 0) throw new TypeError(`rate plan burst must be a finite number > 0, got ${plan.burst}`);
}

/** True when retrying can never help: cost above the burst, or a plan that never refills. */
export function neverAdmissible(decision: Decision): boolean {
  return !decision.allowed && decision.retryAfterMs === Number.POSITIVE_INFINITY;
}
