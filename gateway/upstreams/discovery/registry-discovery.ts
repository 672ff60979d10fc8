/**
 * Registry discovery: keeps the pool's 'registry' workers equal to the live records in the Redis
 * worker registry (written by worker/registration.ts).
 *
 * Two paths, as in Consul's blocking queries plus anti-entropy:
 * - messages: a join adds the worker at once (the pool checks it immediately and admits it on its
 *   first passed readiness check), a leave removes it at once — a draining worker withdraws before
 *   it stops listening, so the gateway stops routing to it first;
 * - resync every `resyncMs`: a snapshot of the registry replaces the known set, so a missed
 *   message costs at most one period, and a worker that died without a word (its record expired
 *   after the TTL) is removed within TTL + `resyncMs` of its last heartbeat.
 *
 * A message that arrives while a snapshot is being read is newer than the snapshot for that worker,
 * and wins over it; otherwise a leave could be undone by a snapshot read just before the DEL.
 *
 * Redis down: snapshots fail, the current set stays (the pool's own readiness checks still stop
 * routing to dead workers), and resyncs go on retrying. When Redis answers again it may have
 * restarted empty, before the workers have re-registered (each does within one heartbeat of its
 * own reconnection); so for `ttlMs` after any reconnection a snapshot only adds workers and never
 * removes one. Leave messages are honoured throughout.
 *
 * The pool dedupes by URL: a URL the pool knows from another source (static, admin) is not added
 * again and never removed here; with a DiscoveryMembership shared with DNS discovery, a URL both see
 * stays while either does (see membership.ts).
 *
 * @example
 *   const discovery = new RegistryDiscovery({ pool: gateway.pool, redisUrl: 'redis://127.0.0.1:6379', logger });
 *   await discovery.start(); // first snapshot attempted; never throws for Redis being down
 *   // ...
 *   await discovery.stop();  // leaves the pool as it is
 */
import type { RedisOptions } from 'ioredis';
import type { Logger } from '../../../shared/logger.ts';
import type { RedisTarget } from '../../../shared/redis/topology.ts';
import { DEFAULT_REGISTRY_TTL_MS } from '../../../shared/registry/keys.ts';
import type { RegistryMessage, WorkerRecord } from '../../../shared/registry/record.ts';
import { DiscoveryMembership, type DiscoveryPool } from './membership.ts';
import { RedisRegistryFeed, type RegistryFeed } from './redis-registry-feed.ts';

export const DEFAULT_RESYNC_MS = 1000;

export interface RegistryDiscoveryOptions {
  /** The gateway's pool (or anything with its add/remove/get). */
  pool: DiscoveryPool;
  /** Shared with DNS discovery so a URL both see stays while either does; default: a private one. */
  membership?: DiscoveryMembership;
  /** Where records come from: default a RedisRegistryFeed on `redisUrl`. */
  feed?: RegistryFeed;
  /** Where Redis is, for the default feed: any URL form of shared/redis/topology.ts, or a topology. */
  redisUrl?: RedisTarget;
  /** Extra ioredis options for the default feed (TLS, password...). */
  redisOptions?: RedisOptions;
  /** Registry namespace for the default feed; default 'infergate'. */
  namespace?: string;
  /** Period of the full resync; default 1000 ms. */
  resyncMs?: number;
  /** The workers' record TTL: after a reconnection, snapshots add but do not remove for this long. Default 6000 ms. */
  ttlMs?: number;
  /** Pool weight of a registered worker; default 1 (e.g. `(r) => r.capacity` to weight by capacity). */
  weightOf?: (record: WorkerRecord) => number;
  logger: Logger;
  /** Monotonic clock (ms); default performance.now. */
  now?: () => number;
}

export class RegistryDiscovery {
  readonly #membership: DiscoveryMembership;
  readonly #feed: RegistryFeed;
  readonly #resyncMs: number;
  readonly #ttlMs: number;
  readonly #weightOf: (record: WorkerRecord) => number;
  readonly #logger: Logger;
  readonly #now: () => number;
  /** id → record: the workers this discovery believes registered. */
  readonly #known = new Map<string, WorkerRecord>();
  /** id → sequence number of the last message about it (messages newer than a snapshot win). */
  readonly #touched = new Map<string, number>();
  #seq = 0;
  #holdRemovalsUntil = -Infinity;
  #failing = false;
  #running: Promise<boolean> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #stopped = false;

  constructor(options: RegistryDiscoveryOptions) {
    this.#logger = options.logger.child({ component: 'registry-discovery' });
    this.#membership = options.membership ?? new DiscoveryMembership(options.pool, this.#logger);
    this.#resyncMs = options.resyncMs ?? DEFAULT_RESYNC_MS;
    this.#ttlMs = options.ttlMs ?? DEFAULT_REGISTRY_TTL_MS;
    if (!(this.#resyncMs >= 50)) throw new Error('resyncMs must be at least 50');
    if (!(this.#ttlMs >= 0)) throw new Error('ttlMs must not be negative');
    if (options.feed === undefined && options.redisUrl === undefined) throw new Error('give redisUrl or feed');
    this.#weightOf = options.weightOf ?? (() => 1);
    this.#now = options.now ?? (() => performance.now());
    this.#feed = options.feed ?? new RedisRegistryFeed({
      redisUrl: options.redisUrl!,
      logger: this.#logger,
      ...(options.redisOptions !== undefined && { redisOptions: options.redisOptions }),
      ...(options.namespace !== undefined && { namespace: options.namespace }),
    });
  }

  /** Subscribes, runs the first resync and starts the periodic ones. Never throws for Redis being down. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#feed.subscribe({
      message: (m) => this.#onMessage(m),
      subscribed: () => void this.resync(),
      reconnected: () => {
        this.#holdRemovals('Redis reconnected');
        void this.resync();
      },
    });
    await this.resync();
    this.#schedule();
  }

  /** Stops listening; the pool keeps the workers it has (the gateway is usually closing). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    await this.#feed.close();
  }

  /** The registered workers as last known (for the admin API and tests). */
  records(): WorkerRecord[] {
    return [...this.#known.values()];
  }

  /**
   * Reads a snapshot now and applies it; concurrent calls share one run. Resolves false when the
   * registry could not be read (the current set is kept).
   */
  resync(): Promise<boolean> {
    if (this.#stopped) return Promise.resolve(false);
    this.#running ??= this.#resync().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #resync(): Promise<boolean> {
    const from = this.#seq;
    let records: WorkerRecord[];
    try {
      records = await this.#feed.snapshot();
    } catch (err) {
      if (!this.#failing) this.#logger.warn({ err: (err as Error).message }, 'worker registry unreachable; keeping the current registry workers and retrying');
      this.#failing = true;
      return false;
    }
    if (this.#stopped) return false;
    if (this.#failing) {
      this.#failing = false;
      this.#logger.info('worker registry answering again');
      this.#holdRemovals('registry reachable again');
    }
    const holding = this.#now() < this.#holdRemovalsUntil;
    const seen = new Map(records.map((r) => [r.id, r]));
    for (const [id, record] of seen) {
      if ((this.#touched.get(id) ?? -1) > from) continue; // a message since the snapshot began knows better
      this.#known.set(id, record);
    }
    for (const id of [...this.#known.keys()]) {
      if (seen.has(id) || (this.#touched.get(id) ?? -1) > from) continue;
      if (holding) continue;
      this.#logger.info({ id, url: this.#known.get(id)?.url }, 'registry record gone (expired); removing the worker');
      this.#known.delete(id);
    }
    for (const [id, seq] of this.#touched) if (seq <= from) this.#touched.delete(id);
    this.#apply();
    return true;
  }

  #onMessage(message: RegistryMessage): void {
    if (this.#stopped) return;
    const id = message.type === 'join' ? message.record.id : message.id;
    this.#touched.set(id, ++this.#seq);
    if (message.type === 'join') {
      this.#known.set(id, message.record);
      this.#logger.debug({ id, url: message.record.url }, 'worker joined the registry');
    } else {
      const known = this.#known.get(id);
      // A leave names the URL it withdraws: a stale leave must not drop a re-registration elsewhere.
      if (known !== undefined && known.url !== message.url) return;
      this.#known.delete(id);
      this.#logger.info({ id, url: message.url }, 'worker left the registry');
    }
    this.#apply();
  }

  /** Makes the pool's registry claims equal to the known records (several ids may share a URL). */
  #apply(): void {
    const wanted = new Map<string, number>();
    for (const record of this.#known.values()) {
      const weight = this.#weightOf(record);
      wanted.set(record.url, Math.max(wanted.get(record.url) ?? 0, Number.isFinite(weight) && weight > 0 ? weight : 1));
    }
    const { added, removed } = this.#membership.reconcile('registry', wanted);
    if (added.length > 0 || removed.length > 0) this.#logger.info({ added, removed, registered: this.#known.size }, 'registry workers changed');
  }

  #holdRemovals(why: string): void {
    this.#holdRemovalsUntil = this.#now() + this.#ttlMs;
    this.#logger.info({ why, holdMs: this.#ttlMs }, 'registry snapshots only add workers until every live worker has re-registered');
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.resync().finally(() => this.#schedule());
    }, this.#resyncMs);
    this.#timer.unref();
  }

  /** For tests and the admin API: whether snapshots currently only add. */
  get holdingRemovals(): boolean {
    return this.#now() < this.#holdRemovalsUntil;
  }
}
