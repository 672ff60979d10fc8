/**
 * Leases: tokens one gateway took ahead from a shared bucket in Redis, to admit its next requests
 * for that bucket without a round trip each. docs/throttling.md, "Leases", has the reasoning; in short:
 *
 * - A bucket gets a lease only under steady demand at this gateway: it asks ahead for the tokens its
 *   takes asked for in each of the last two windows of `leaseMs` (the smaller), so a key seen for the
 *   first time, or one burst, gets none: it is decided request by request.
 * - The script grants tokens ahead only from above half the burst, so the lower half of every bucket
 *   is always decided request by request, as every replica sees it.
 * - Tokens a lease holds still count against the burst: every call reports what this gateway's
 *   lease on the bucket still holds, and the script refills the bucket only up to the burst minus
 *   every live lease (token-bucket.lua). So admitted(t) <= burst + rate·t holds across replicas.
 * - A lease may be used until `leaseMs` after its call was sent (the script keeps its record until
 *   `leaseMs` after it ran, which is later). A take it cannot cover ends it (its tokens go back, so
 *   the take is decided against the whole bucket), as do a plan change, its expiry and close. A
 *   grant that arrives for a lease ended while its call was under way goes straight back.
 *
 * What a lease can cost is the other way: tokens one gateway holds while another is refused, at
 * most its demand over one window, from the top half only, for at most `leaseMs` (plus the sweep).
 *
 * A decision served from a lease reports `remaining` as the bucket's tokens when the lease was
 * granted plus what the lease still holds: exact for one gateway, an estimate with several.
 */
import type { Decision, RatePlan } from './limiter.ts';

/**
 * Tokens a lease gives back: the bucket key, the plan in force (its burst caps the give-back), how
 * many, and what this gateway's lease on the bucket holds once they are back (the script's record
 * of it is replaced by that).
 */
export type GiveBack = (key: string, plan: RatePlan, tokens: number, held: number) => void;

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
  /** Tokens asked for (the takes' costs) in the current window and in the two before it. */
  demand: number;
  previousDemand: number;
  earlierDemand: number;
  windowStart: number;
  lease: Lease | undefined;
  /** Counts the leases ended: a grant for a call sent before the last end is not kept. */
  epoch: number;
}

/** What a call for a bucket must know when it is sent, to report the lease and place its grant. */
export interface CallTicket {
  /** Tokens the live lease holds now (reported to the script: they count against the burst). */
  held: number;
  /** Tokens to ask ahead. */
  want: number;
  sentAt: number;
  epoch: number;
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
  private closed = false;

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
   * the lease. Undefined: ask the shared bucket (any lease that cannot serve the take has ended).
   */
  take(key: string, cost: number, plan: RatePlan): Decision | undefined {
    const now = this.now();
    // A bucket that never refills is spent request by request: not followed, unless it already is
    // (a lease under another plan must end here, not linger unreported).
    const bucket = plan.ratePerSec > 0 ? this.bucketOf(key, now) : this.buckets.get(key);
    if (bucket === undefined) return undefined;
    this.roll(bucket, now);
    bucket.demand += cost;
    return this.fromLease(key, bucket, cost, plan, now);
  }

  /** Admits a take counted already (it waited for a call that has since granted a lease), when the lease covers it. */
  admit(key: string, cost: number, plan: RatePlan): Decision | undefined {
    const bucket = this.buckets.get(key);
    return bucket === undefined ? undefined : this.fromLease(key, bucket, cost, plan, this.now());
  }

  /** What the next call for `key` under `plan` reports and asks; taken when it is sent. */
  ticket(key: string, plan: RatePlan): CallTicket {
    const now = this.now();
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return { held: 0, want: 0, sentAt: now, epoch: 0 };
    this.roll(bucket, now);
    // Whatever its plan: tokens a live lease holds are held, and the script must count them.
    const lease = bucket.lease;
    const held = lease !== undefined && now < lease.expiresAt ? lease.tokens : 0;
    const steady = Math.ceil(Math.min(bucket.previousDemand, bucket.earlierDemand));
    const want = this.closed || !(plan.ratePerSec > 0) ? 0 : Math.max(0, steady - held);
    return { held, want, sentAt: now, epoch: bucket.epoch };
  }

  /** The shared bucket granted `tokens` ahead for `key` under `plan` on the call of `ticket`, leaving `sharedLeft` in it. */
  grant(key: string, plan: RatePlan, tokens: number, sharedLeft: number, ticket: CallTicket): void {
    if (!(tokens > 0)) return;
    const bucket = this.buckets.get(key);
    if (this.closed || bucket === undefined || bucket.epoch !== ticket.epoch) {
      this.giveBack(key, plan, tokens, 0); // closed, forgotten, or its lease ended while the call was under way
      return;
    }
    // A live lease under the same plan was reported with the call, so the script's record covers it
    // too; one that expired (or another plan's) goes back once the new one is in place.
    const old = bucket.lease;
    const kept = old !== undefined && samePlan(old.plan, plan) && this.now() < old.expiresAt ? old.tokens : 0;
    bucket.lease = { plan, tokens: kept + tokens, sharedLeft, expiresAt: ticket.sentAt + this.leaseMs };
    if (old !== undefined && kept === 0 && old.tokens > 0) this.giveBack(key, plan, old.tokens, tokens);
  }

  /** Gives back every lease and forgets every bucket; grants arriving later go straight back. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const [key, bucket] of this.buckets) this.end(key, bucket);
    this.buckets.clear();
  }

  private fromLease(key: string, bucket: Bucket, cost: number, plan: RatePlan, now: number): Decision | undefined {
    const lease = bucket.lease;
    if (lease === undefined) return undefined;
    if (now >= lease.expiresAt || !samePlan(lease.plan, plan) || lease.tokens < cost) {
      // Given back under the plan in force now (its burst caps the bucket from here on), before the
      // call this take makes instead: on the same connection, so Redis has the tokens back when it
      // decides the take against the whole bucket.
      this.end(key, bucket, plan);
      return undefined;
    }
    lease.tokens -= cost;
    const remaining = lease.sharedLeft + lease.tokens;
    return { allowed: true, limit: plan.burst, remaining, resetMs: resetMsOf(remaining, plan), retryAfterMs: 0 };
  }

  private bucketOf(key: string, now: number): Bucket | undefined {
    let bucket = this.buckets.get(key);
    if (bucket !== undefined) return bucket;
    if (this.closed || this.buckets.size >= this.maxKeys) return undefined;
    bucket = { demand: 0, previousDemand: 0, earlierDemand: 0, windowStart: now, lease: undefined, epoch: 0 };
    this.buckets.set(key, bucket);
    // A quarter of a lease's life: an expired lease's tokens are back within 1.25 × leaseMs.
    this.sweeper ??= setInterval(this.sweep, Math.max(5, this.leaseMs / 4)).unref();
    return bucket;
  }

  /** Starts a new demand window once `leaseMs` has passed; a window with no take in it counts as no demand. */
  private roll(bucket: Bucket, now: number): void {
    const elapsed = now - bucket.windowStart;
    if (elapsed < this.leaseMs) return;
    const windows = Math.floor(elapsed / this.leaseMs);
    bucket.earlierDemand = windows === 1 ? bucket.previousDemand : 0;
    bucket.previousDemand = windows === 1 ? bucket.demand : 0;
    bucket.demand = 0;
    bucket.windowStart += windows * this.leaseMs;
  }

  private end(key: string, bucket: Bucket, plan?: RatePlan): void {
    const lease = bucket.lease;
    if (lease === undefined) return;
    bucket.lease = undefined;
    bucket.epoch++;
    if (lease.tokens > 0) this.giveBack(key, plan ?? lease.plan, lease.tokens, 0);
  }

  private readonly sweep = (): void => {
    const now = this.now();
    for (const [key, bucket] of this.buckets) {
      if (bucket.lease !== undefined && now >= bucket.lease.expiresAt) this.end(key, bucket);
      this.roll(bucket, now);
      if (bucket.lease === undefined && bucket.demand === 0 && bucket.previousDemand === 0 && bucket.earlierDemand === 0) this.buckets.delete(key);
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
