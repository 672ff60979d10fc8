/**
 * The token bucket shared by every gateway replica, in Redis: one call is one run of
 * token-bucket.lua, registered once with ioredis `defineCommand` — ioredis sends EVAL the first time
 * on each connection and EVALSHA after, and on NOSCRIPT (a restarted Redis, SCRIPT FLUSH, a failover)
 * resends the script itself, so a lost script cache never reaches the caller.
 *
 * Coalescing: at most one call per bucket key is in flight. A take for a key with nothing in flight
 * is sent at once, alone; takes for a key whose call is in flight wait, and its reply sends them
 * together as ONE call carrying their costs in arrival order (up to MAX_BATCH; takes under another
 * plan, after a reload, go in the next call). The script decides them as the same takes one by one
 * at one instant: each is admitted if the tokens left by those before it cover its cost, so mixed
 * costs stay exact, and each gets its own remaining/reset/retry-after. A hot key (one client on
 * many connections) thus costs one Redis round trip per round trip's worth of requests instead of
 * one per request; a key with one request at a time costs what it did. Exactness across replicas
 * is the script's atomicity, unchanged: a batch is one atomic step, so admitted(t) <= burst + rate*t.
 *
 * A slow or dead Redis costs a call at most `deadlineMs`: no offline queue (a command while
 * disconnected fails at once instead of waiting for a reconnect), a command timeout as a backstop,
 * no retries or resends of a command after a reconnect (a late EVALSHA would spend tokens for a
 * request that was already decided), and the deadline itself kept for every take by one shared
 * timer (DeadlineQueue: the takes share one deadline length, so they expire in arrival order),
 * instead of a timer and a promise race per take. A take that expires while waiting behind its
 * key's call is dropped, never sent. The reconnect strategy retries every 50-500 ms for ever, so
 * limiting goes back to Redis on its own when it returns.
 *
 * Leases (`leaseMs` > 0; lease-book.ts): under steady demand for a bucket, a call also takes tokens
 * ahead for this gateway, from above half the burst only, and the next requests for that bucket are
 * admitted from them without a round trip; what a lease has not used after `leaseMs` goes back.
 * Every call reports what this gateway's lease on the bucket still holds (as `holder`), and the
 * script refills the bucket only up to the burst minus every live lease.
 * Off by default here; the gateway turns it on with `throttle.leaseMs`.
 *
 * Auto-pipelining stays off: measured on this code (test/integration/throttle/evalsha-cpu.ts), it
 * costs 45-60% more client CPU per EVALSHA and 23-45% of the throughput (it helps GET).
 *
 * A command that timed out may still run later on a slow Redis: it then spends tokens for requests
 * the caller decided another way (fail open/closed). That errs on the strict side, and only while
 * Redis is slower than the deadline.
 *
 * @example
 *   const limiter = new RedisLimiter({ url: 'redis://127.0.0.1:6379', deadlineMs: 50 });
 *   await limiter.ready(); // optional: until connected, every take() throws StoreUnavailableError
 *   const d = await limiter.take(bucketKey('key:ab12', 'iris'), 1, { ratePerSec: 10, burst: 20 });
 *   await limiter.close();
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { RedisOptions } from 'ioredis';
import { closeRedis, connectRedis, type RedisClient } from '../../shared/redis/connect.ts';
import type { RedisTarget } from '../../shared/redis/topology.ts';
import { promised, StoreUnavailableError, validateTake, type Decision, type RateLimiter, type RatePlan } from './limiter.ts';
import { DEFAULT_MAX_TTL_MS } from './memory-limiter.ts';
import { DeadlineQueue, type Deadlined } from './deadline-queue.ts';
import { LeaseBook, samePlan } from './lease-book.ts';

const TOKEN_BUCKET_LUA = readFileSync(new URL('./token-bucket.lua', import.meta.url), 'utf8');
const COMMAND = 'infergateTokenBucket';

export interface RedisLimiterOptions {
  /**
   * Where Redis is (a URL of any form in shared/redis/topology.ts — one node, Sentinel, Cluster — or
   * a topology): the limiter opens (and closes) its own connection with `limiterRedisOptions`.
   */
  url?: RedisTarget;
  /** Or a client made by the caller (ideally with `limiterRedisOptions`); `close` leaves it open. */
  client?: RedisClient;
  /** The decision deadline: the longest `take` waits for Redis; default 50 ms. */
  deadlineMs?: number;
  /** Longest life of a bucket key (caps the TTL of a plan with no or a very slow refill); default 24 h. */
  maxTtlMs?: number;
  /**
   * Tokens may be taken ahead for a bucket with steady demand and used for this long (ms); 0 (the
   * default) = every take asks Redis. See lease-book.ts.
   */
  leaseMs?: number;
  /** Extra ioredis options for a connection opened from `url` (password, TLS, db...). */
  redisOptions?: RedisOptions;
  /** Connection errors (refused, reset...), for the log; `take` reports failures by throwing anyway. */
  onConnectionError?: (err: Error) => void;
}

/**
 * ioredis options under which no command outlives the deadline.
 * @example connectRedis(url, limiterRedisOptions(50))
 */
export function limiterRedisOptions(deadlineMs: number): RedisOptions {
  return {
    enableOfflineQueue: false, // disconnected: fail now, do not queue until a reconnect
    // Connected but slow (or SIGSTOPped): a backstop well past the deadline. The deadline itself is
    // enforced in take(), which lets a reply that has already arrived be read first.
    commandTimeout: deadlineMs * 4 + 100,
    maxRetriesPerRequest: 0, // a connection drop fails the commands in flight, no retry on the next one
    autoResendUnfulfilledCommands: false, // nor resend them after a reconnect (they were decided already)
    enableAutoPipelining: false, // measured: more CPU and less throughput for EVALSHA
    connectTimeout: 1000,
    connectionName: 'infergate:rate-limiter', // names the connection in CLIENT LIST
    retryStrategy: (times) => Math.min(times * 50, 500), // keep reconnecting, at most every 0.5 s
  };
}

/** Most takes sent in one script call; more wait for the next (bounds how long one script runs). */
export const MAX_BATCH = 256;

type WithCommand = RedisClient & {
  /** (key, ratePerSec, burst, maxTtlMs, leaseMs, holder, seq, held, returned, want, ...costs): token-bucket.lua */
  [COMMAND](...args: Array<string | number>): Promise<number[]>;
};

/** One take waiting for its decision. */
interface PendingTake extends Deadlined {
  cost: number;
  plan: RatePlan;
  resolve(decision: Decision): void;
  reject(err: StoreUnavailableError): void;
}

/** The takes of one bucket key waiting for the call in flight for that key to answer. */
interface KeyQueue {
  waiting: PendingTake[];
}

export class RedisLimiter implements RateLimiter {
  readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly deadlineMs: number;
  private readonly maxTtlMs: number;
  /** The bucket keys with a call in flight, and the takes waiting for it to answer. */
  private readonly queues = new Map<string, KeyQueue>();
  private readonly deadlines: DeadlineQueue<PendingTake>;
  /** Tokens taken ahead per bucket; undefined when leases are off. */
  private readonly leases: LeaseBook | undefined;
  private readonly leaseMs: number;
  /** This limiter's name in the buckets' lease records ("" with leases off). */
  private readonly holder: string;
  /** Numbers this limiter's script commands, so the script can tell a late older one (token-bucket.lua, ARGV[6]). */
  private seq = 0;
  /** Script calls under way (takes and give-backs), awaited by close() so no grant is lost. */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(options: RedisLimiterOptions) {
    this.deadlineMs = options.deadlineMs ?? 50;
    this.maxTtlMs = options.maxTtlMs ?? DEFAULT_MAX_TTL_MS;
    if (!(this.deadlineMs > 0)) throw new TypeError('RedisLimiter: deadlineMs must be positive');
    if (!(Number.isInteger(this.maxTtlMs) && this.maxTtlMs >= 1)) throw new TypeError('RedisLimiter: maxTtlMs must be an integer >= 1');
    if ((options.url === undefined) === (options.client === undefined)) throw new TypeError('RedisLimiter: give exactly one of url or client');
    if (options.client !== undefined) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      this.client = connectRedis(options.url!, { ...options.redisOptions, ...limiterRedisOptions(this.deadlineMs) });
      this.ownsClient = true;
      // Without a listener ioredis prints every connection error; failures surface through take().
      this.client.on('error', options.onConnectionError ?? (() => {}));
    }
    this.client.defineCommand(COMMAND, { numberOfKeys: 1, lua: TOKEN_BUCKET_LUA });
    const deadlineMs = this.deadlineMs;
    this.deadlines = new DeadlineQueue<PendingTake>(deadlineMs, (take) => take.reject(new StoreUnavailableError(`rate limit store did not answer within ${deadlineMs} ms`)));
    const leaseMs = options.leaseMs ?? 0;
    if (!(Number.isFinite(leaseMs) && leaseMs >= 0)) throw new TypeError('RedisLimiter: leaseMs must be >= 0');
    this.leaseMs = leaseMs;
    this.holder = leaseMs > 0 ? randomBytes(6).toString('hex') : '';
    this.leases = leaseMs > 0 ? new LeaseBook({ leaseMs, giveBack: (key, plan, tokens, held) => this.giveBack(key, plan, tokens, held) }) : undefined;
  }

  /** Tokens this gateway holds ahead for `key`, unused. */
  heldAhead(key: string): number {
    return this.leases?.held(key) ?? 0;
  }

  /** Resolves once connected (or throws after `timeoutMs`); take() fails fast until then. */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.client.status === 'ready') return;
    await once(this.client, 'ready', { signal: AbortSignal.timeout(timeoutMs) }).catch((err: unknown) => {
      throw new StoreUnavailableError(`Redis not ready within ${timeoutMs} ms`, { cause: err });
    });
  }

  take(key: string, cost: number, plan: RatePlan): Promise<Decision> {
    return promised(this.takeNow(key, cost, plan));
  }

  /** `take`, decided at once (no promise) when this gateway's lease on the bucket covers it. */
  takeNow(key: string, cost: number, plan: RatePlan): Decision | Promise<Decision> {
    try {
      validateTake(cost, plan);
    } catch (err) {
      return Promise.reject(err);
    }
    const leased = this.leases?.take(key, cost, plan);
    if (leased !== undefined) return leased;
    return new Promise<Decision>((resolve, reject) => {
      const take: PendingTake = { cost, plan, resolve, reject, deadline: 0, settled: false };
      this.deadlines.add(take);
      const queue = this.queues.get(key);
      if (queue !== undefined) {
        // A call for this key is in flight: this take goes with the next one, sent on its reply.
        queue.waiting.push(take);
        return;
      }
      // Nothing in flight for the key: no reason to wait, send it alone now.
      const fresh: KeyQueue = { waiting: [] };
      this.queues.set(key, fresh);
      this.call(key, fresh, [take], plan);
    });
  }

  /** On a reply: sends the takes that came in meanwhile (those not yet past their deadline) as one call. */
  private sendWaiting(key: string, queue: KeyQueue): void {
    const batch: PendingTake[] = [];
    let plan: RatePlan | undefined;
    let i = 0;
    const { waiting } = queue;
    for (; i < waiting.length && batch.length < MAX_BATCH; i++) {
      const take = waiting[i]!;
      if (take.settled) continue; // expired while waiting: decided already, never spend tokens for it
      const leased = this.leases?.admit(key, take.cost, take.plan);
      if (leased !== undefined) {
        // The reply just granted this gateway tokens ahead: a take that waited for it needs no call.
        take.settled = true;
        take.resolve(leased);
        continue;
      }
      // One call decides takes under one plan; a take under another plan (a reload between two
      // takes) or beyond the batch size waits for the next call, keeping arrival order.
      plan ??= take.plan;
      if (!samePlan(take.plan, plan)) break;
      batch.push(take);
    }
    queue.waiting = i === waiting.length ? [] : waiting.slice(i);
    if (plan === undefined) {
      this.queues.delete(key);
      return;
    }
    this.call(key, queue, batch, plan);
  }

  /** One script call for `batch` (takes of `key` under `plan`, in arrival order); settles each of them. */
  private call(key: string, queue: KeyQueue, batch: PendingTake[], plan: RatePlan): void {
    const ticket = this.leases?.ticket(key, plan);
    const args: Array<string | number> = [key, plan.ratePerSec, plan.burst, this.maxTtlMs, this.leaseMs, this.holder, ++this.seq, ticket?.held ?? 0, 0, ticket?.want ?? 0];
    for (const take of batch) args.push(take.cost);
    const next = (): void => {
      if (queue.waiting.length === 0) this.queues.delete(key);
      else this.sendWaiting(key, queue);
    };
    let reply: Promise<number[]>;
    try {
      reply = (this.client as WithCommand)[COMMAND](...args);
    } catch (err) {
      reply = Promise.reject(err);
    }
    const settled = reply.then(
      (values) => {
        const lease = leaseOf(values, batch.length);
        if (lease !== undefined && ticket !== undefined) this.leases?.grant(key, plan, lease.granted, lease.left, ticket);
        next();
        settleAll(batch, values, plan.burst);
      },
      (err: unknown) => {
        next();
        // Every failure of the store — refused, reset, timed out, even a script error — means "no
        // decision from the store": the caller's policy applies.
        failAll(batch, new StoreUnavailableError(`rate limit store failed: ${(err as Error).message}`, { cause: err }));
      },
    );
    if (this.leases !== undefined) this.track(settled); // its grant must be placed or given back before close
  }

  /**
   * Returns unused lease tokens to the bucket, with what this limiter's lease on it holds after.
   * Best effort: a give-back that fails leaves the tokens spent, which errs on the strict side.
   */
  private giveBack(key: string, plan: RatePlan, tokens: number, held: number): void {
    let done: Promise<unknown>;
    try {
      done = (this.client as WithCommand)[COMMAND](key, plan.ratePerSec, plan.burst, this.maxTtlMs, this.leaseMs, this.holder, ++this.seq, held, tokens, 0).catch(() => undefined);
    } catch {
      return;
    }
    this.track(done);
  }

  private track(call: Promise<unknown>): void {
    this.pending.add(call);
    void call.finally(() => this.pending.delete(call));
  }

  /**
   * Waits for the calls under way (a grant arriving now goes straight back), gives back every
   * lease, then closes the connection the limiter opened (not a client it was given).
   */
  async close(): Promise<void> {
    this.leases?.close();
    while (this.pending.size > 0) await Promise.all(this.pending);
    if (this.ownsClient) await closeRedis(this.client);
  }
}

/** The lease figures after the per-request ones: tokens granted ahead, tokens left in the bucket. */
function leaseOf(reply: unknown, requests: number): { granted: number; left: number } | undefined {
  if (!Array.isArray(reply) || reply.length !== 4 * requests + 2) return undefined;
  const granted = Number(reply[4 * requests]);
  const left = Number(reply[4 * requests + 1]);
  return granted > 0 && Number.isFinite(left) ? { granted, left } : undefined;
}

/** Resolves each take still waiting from its four integers of the script's reply. */
function settleAll(batch: readonly PendingTake[], reply: unknown, limit: number): void {
  if (!Array.isArray(reply) || reply.length !== 4 * batch.length + 2) {
    failAll(batch, new StoreUnavailableError(`rate limit store gave a malformed reply (${String(reply).slice(0, 100)})`));
    return;
  }
  const values = reply as number[];
  for (let i = 0; i < batch.length; i++) {
    const take = batch[i]!;
    if (take.settled) continue; // past its deadline: the caller has decided already
    take.settled = true;
    const retryAfterMs = values[4 * i + 3]!;
    take.resolve({
      allowed: values[4 * i] === 1,
      limit,
      remaining: values[4 * i + 1]!,
      resetMs: values[4 * i + 2]!,
      retryAfterMs: retryAfterMs < 0 ? Number.POSITIVE_INFINITY : retryAfterMs,
    });
  }
}

function failAll(takes: readonly PendingTake[], err: StoreUnavailableError): void {
  for (const take of takes) {
    if (take.settled) continue;
    take.settled = true;
    take.reject(err);
  }
}
