/**
 * Leases: tokens one gateway took ahead from a shared bucket in Redis, to admit its next requests
 * for that bucket without a round trip each. docs/throttling.md, "Leases", has the reasoning; in short:
 *
 * - A bucket gets a lease only under steady demand at this gateway: the tokens its takes asked for
 *   in the previous window of `leaseMs` are what it asks for ahead (a key seen for the first time,
 *   or a burst arriving within one window, gets none; it is decided request by request).
 * - The script grants tokens ahead only from above half the burst, so the lower half of every bucket
 *   is always decided request by request, as every replica sees it.
 * - A lease lives `leaseMs`. What it has not used by then is given back to the bucket (never past
 *   the burst), as is a lease whose plan changed (capped by the new plan's burst), and every lease
 *   when the limiter closes.
 * - Leased tokens are taken from the bucket before any request spends them, so admitted(t) <=
 *   burst + rate·t holds across replicas as before. What a lease can cost is the other way: tokens
 *   one gateway holds while another is refused, at most its demand over `leaseMs`, for at most
 *   `leaseMs`.
 *
 * A decision served from a lease reports `remaining` as the bucket's tokens when the lease was
 * granted plus what the lease still holds: exact for one gateway, an estimate with several.
 */
import type { Decision, RatePlan } from './limiter.ts';

/** Tokens a lease gives back: the bucket key, its plan (the bucket's burst caps the give-back) and how many. */
export type GiveBack = (key: string, plan: RatePlan, tokens: number) => void;

export interface LeaseBookOptions {
  /** How long a lease may be used, and the window demand is counted over (ms, > 0). */
  leaseMs: number;
  /** Most buckets followed at once; a bucket beyond them is decided request by request. */
  maxKeys?: number;
  /** Monotonic clock in ms; default performance.now(). */
  now?: () => number;
  giveBack: GiveBack;
}

interface Lease {
  plan: RatePlan;
  /** Whole tokens still held. */
  tokens: number;
  /** Tokens in the shared bucket right after the grant. */
  sharedLeft: number;
  expiresAt: number;
}

/** What this gateway knows of one bucket: its demand here, and its lease if it holds one. */
interface Bucket {
  /** Tokens asked for (the takes' costs) in the current window, and in the one before it. */
  demand: number;
  previousDemand: number;
  windowStart: number;
  lease: Lease | undefined;
}

const DEFAULT_MAX_KEYS = 10_000;

export class LeaseBook {
  private readonly leaseMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly giveBack: GiveBack;
  private readonly buckets = new Map<string, Bucket>();
  /** Rolls windows, returns expired leases and forgets idle buckets; armed while any is followed. */
  private sweeper: NodeJS.Timeout | undefined;

  constructor(options: LeaseBookOptions) {
    if (!(options.leaseMs > 0)) throw new TypeError('LeaseBook: leaseMs must be positive');
    this.leaseMs = options.leaseMs;
    this.maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    this.now = options.now ?? (() => performance.now());
    this.giveBack = options.giveBack;
  }

  /** Buckets followed now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Tokens held ahead for `key` now, unused (0 without a live lease). */
  held(key: string): number {
    const lease = this.buckets.get(key)?.lease;
    return lease === undefined || this.now() >= lease.expiresAt ? 0 : lease.tokens;
  }

  /**
   * Counts a take of `key` and, when the bucket's lease under `plan` covers `cost`, admits it from
   * the lease. Undefined: ask the shared bucket.
   */
  take(key: string, cost: number, plan: RatePlan): Decision | undefined {
    const now = this.now();
    const bucket = this.bucketOf(key, now);
    if (bucket === undefined) return undefined;
    bucket.demand += cost;
    return this.fromLease(key, bucket, cost, plan, now);
  }

  /** Admits a take counted already (it waited for a call that has since granted a lease), when the lease covers it. */
  admit(key: string, cost: number, plan: RatePlan): Decision | undefined {
    const bucket = this.buckets.get(key);
    return bucket === undefined ? undefined : this.fromLease(key, bucket, cost, plan, this.now());
  }

  private fromLease(key: string, bucket: Bucket, cost: number, plan: RatePlan, now: number): Decision | undefined {
    const lease = bucket.lease;
    if (lease === undefined) return undefined;
    if (now >= lease.expiresAt || !samePlan(lease.plan, plan)) {
      // Given back under the plan in force now: its burst caps the bucket from here on. The give-back
      // goes out before the take that asks Redis instead, on the same connection, so Redis runs it first.
      this.end(key, bucket, plan);
      return undefined;
    }
    if (lease.tokens < cost) return undefined;
    lease.tokens -= cost;
    const remaining = lease.sharedLeft + lease.tokens;
    return { allowed: true, limit: plan.burst, remaining, resetMs: resetMsOf(remaining, plan), retryAfterMs: 0 };
  }

  /** Whole tokens to ask ahead for `key` with the next call to the shared bucket: its demand here in the last window, less what it holds. */
  wanted(key: string, plan: RatePlan): number {
    if (!(plan.ratePerSec > 0)) return 0; // a bucket that never refills is spent request by request
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return 0;
    this.roll(bucket, this.now());
    return Math.max(0, Math.ceil(bucket.previousDemand) - (bucket.lease?.tokens ?? 0));
  }

  /** The shared bucket granted `tokens` ahead for `key` under `plan`, leaving `sharedLeft` in it. */
  grant(key: string, plan: RatePlan, tokens: number, sharedLeft: number): void {
    if (!(tokens > 0)) return;
    const bucket = this.buckets.get(key);
    if (bucket === undefined) {
      this.giveBack(key, plan, tokens); // forgotten meanwhile (closed, or too many buckets): not ours to keep
      return;
    }
    const held = bucket.lease !== undefined && samePlan(bucket.lease.plan, plan) ? bucket.lease.tokens : 0;
    if (bucket.lease !== undefined && held === 0) this.end(key, bucket);
    bucket.lease = { plan, tokens: held + tokens, sharedLeft, expiresAt: this.now() + this.leaseMs };
  }

  /** Gives back every lease and forgets every bucket. */
  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const [key, bucket] of this.buckets) this.end(key, bucket);
    this.buckets.clear();
  }

  private bucketOf(key: string, now: number): Bucket | undefined {
    let bucket = this.buckets.get(key);
    if (bucket !== undefined) {
      this.roll(bucket, now);
      return bucket;
    }
    if (this.buckets.size >= this.maxKeys) return undefined;
    bucket = { demand: 0, previousDemand: 0, windowStart: now, lease: undefined };
    this.buckets.set(key, bucket);
    this.sweeper ??= setInterval(this.sweep, this.leaseMs).unref();
    return bucket;
  }

  /** Starts a new demand window once `leaseMs` has passed; more than one window ago means no recent demand. */
  private roll(bucket: Bucket, now: number): void {
    const elapsed = now - bucket.windowStart;
    if (elapsed < this.leaseMs) return;
    bucket.previousDemand = elapsed < 2 * this.leaseMs ? bucket.demand : 0;
    bucket.demand = 0;
    bucket.windowStart = now;
  }

  private end(key: string, bucket: Bucket, plan?: RatePlan): void {
    const lease = bucket.lease;
    bucket.lease = undefined;
    if (lease !== undefined && lease.tokens > 0) this.giveBack(key, plan ?? lease.plan, lease.tokens);
  }

  private readonly sweep = (): void => {
    const now = this.now();
    for (const [key, bucket] of this.buckets) {
      if (bucket.lease !== undefined && now >= bucket.lease.expiresAt) this.end(key, bucket);
      this.roll(bucket, now);
      if (bucket.lease === undefined && bucket.demand === 0 && bucket.previousDemand === 0) this.buckets.delete(key);
    }
    if (this.buckets.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  };
}

export function samePlan(a: RatePlan, b: RatePlan): boolean {
  return a === b || (a.ratePerSec === b.ratePerSec && a.burst === b.burst);
}

/** Milliseconds until a bucket holding `remaining` is full again. */
function resetMsOf(remaining: number, plan: RatePlan): number {
  return remaining >= plan.burst ? 0 : Math.ceil(((plan.burst - remaining) * 1000) / plan.ratePerSec);
}
