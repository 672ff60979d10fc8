/**
 * The token bucket shared by every gateway replica, in Redis: one call is one run of
 * token-bucket.lua, registered once with ioredis `defineCommand` — ioredis sends EVAL the first time
 * on each connection and EVALSHA after, and on NOSCRIPT (a restarted Redis, SCRIPT FLUSH, a failover)
 * resends the script itself, so a lost script cache never reaches the caller.
 *
 * A slow or dead Redis costs a call at most `deadlineMs`: no offline queue (a command while
 * disconnected fails at once instead of waiting for a reconnect), a command timeout of the deadline,
 * no retries or resends of a command after a reconnect (a late EVALSHA would spend tokens for a
 * request that was already decided), and a `Promise.race` deadline on top in case a command escapes
 * those (a NOSCRIPT resend starts its own timeout). The reconnect strategy retries every 50-500 ms
 * for ever, so limiting goes back to Redis on its own when it returns.
 *
 * Auto-pipelining stays off: measured on this code (test/integration/throttle/evalsha-cpu.ts), it
 * costs 45-60% more client CPU per EVALSHA and 23-45% of the throughput (it helps GET).
 *
 * A command that timed out may still run later on a slow Redis: it then spends tokens for a request
 * the caller decided another way (fail open/closed). That errs on the strict side, and only while
 * Redis is slower than the deadline.
 *
 * @example
 *   const limiter = new RedisLimiter({ url: 'redis://127.0.0.1:6379', deadlineMs: 50 });
 *   await limiter.ready(); // optional: until connected, every take() throws StoreUnavailableError
 *   const d = await limiter.take(bucketKey('key:ab12', 'iris'), 1, { ratePerSec: 10, burst: 20 });
 *   await limiter.close();
 */
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import type { RedisOptions } from 'ioredis';
import { closeRedis, connectRedis, type RedisClient } from '../../shared/redis/connect.ts';
import type { RedisTarget } from '../../shared/redis/topology.ts';
import { StoreUnavailableError, validateTake, type Decision, type RateLimiter, type RatePlan } from './limiter.ts';
import { DEFAULT_MAX_TTL_MS } from './memory-limiter.ts';

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

type TokenBucketReply = [number, number, number, number];
type WithCommand = RedisClient & {
  [COMMAND](key: string, rate: number, burst: number, cost: number, maxTtlMs: number): Promise<TokenBucketReply>;
};

export class RedisLimiter implements RateLimiter {
  readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly deadlineMs: number;
  private readonly maxTtlMs: number;

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
  }

  /** Resolves once connected (or throws after `timeoutMs`); take() fails fast until then. */
  async ready(timeoutMs = 5000): Promise<void> {
    if (this.client.status === 'ready') return;
    await once(this.client, 'ready', { signal: AbortSignal.timeout(timeoutMs) }).catch((err: unknown) => {
      throw new StoreUnavailableError(`Redis not ready within ${timeoutMs} ms`, { cause: err });
    });
  }

  async take(key: string, cost: number, plan: RatePlan): Promise<Decision> {
    validateTake(cost, plan);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      // A busy event loop runs an expired timer before it reads the sockets, so a reply that came in
      // time would lose the race: reject only after one more turn of the loop (setImmediate runs
      // after the poll phase has read whatever arrived).
      timer = setTimeout(() => setImmediate(() => reject(new StoreUnavailableError(`rate limit store did not answer within ${this.deadlineMs} ms`))), this.deadlineMs);
    });
    try {
      const call = (this.client as WithCommand)[COMMAND](key, plan.ratePerSec, plan.burst, cost, this.maxTtlMs);
      const [allowed, remaining, resetMs, retryAfterMs] = await Promise.race([call, deadline]);
      return {
        allowed: allowed === 1,
        limit: plan.burst,
        remaining,
        resetMs,
        retryAfterMs: retryAfterMs < 0 ? Number.POSITIVE_INFINITY : retryAfterMs,
      };
    } catch (err) {
      // Every failure of the store — refused, reset, timed out, even a script error — means "no
      // decision from the store": the caller's policy applies.
      if (err instanceof StoreUnavailableError) throw err;
      throw new StoreUnavailableError(`rate limit store failed: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the connection the limiter opened (not a client it was given). */
  async close(): Promise<void> {
    if (this.ownsClient) await closeRedis(this.client);
  }
}
