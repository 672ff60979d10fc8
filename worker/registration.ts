/**
 * The worker's entry in the Redis registry (`infergate worker --register <redis-url>`): while the
 * worker runs, every heartbeat rewrites its record with a TTL, so a worker that dies without a word
 * (kill -9, a lost node) vanishes from the registry when the TTL runs out; `withdraw` deletes it at
 * once, for a drain, so gateways stop routing before the worker stops listening.
 *
 * One heartbeat is one MULTI on keys of one hash slot (Cluster-safe, see shared/registry/keys.ts):
 *   EXISTS <record>; SET <record> <json> PX <ttl>; ZADD <index> <expiry> <id>
 * and, when EXISTS said the record was absent (first registration, a Redis restart, an expiry after
 * an outage), a PUBLISH of a join message so gateways add the worker at once instead of at their
 * next resync. The record is rewritten each time, so a change in the models served reaches the
 * registry within a heartbeat.
 *
 * Redis being down never reaches the worker: a failed heartbeat is logged (once per outage at warn)
 * and retried at the next beat, and immediately when the connection comes back. No command queues
 * while disconnected and each has a timeout, so a beat never piles up behind a dead server.
 *
 * @example
 *   const registration = new WorkerRegistration({
 *     redisUrl: 'redis://127.0.0.1:6379', workerId: worker.workerId, advertiseUrl: 'http://10.0.0.7:9001',
 *     describe: () => ({ models: servedModels(worker.repository.servedVersions()), capacity: 8 }),
 *     version: PACKAGE_VERSION, logger,
 *   });
 *   await registration.start();    // after worker.start(): registers only a ready worker
 *   // SIGTERM:
 *   await registration.withdraw(); // first: gateways drop it, then drain
 */
import { waitForEvent } from '../shared/wait-for-event.ts';
import { networkInterfaces } from 'node:os';
import type { RedisOptions } from 'ioredis';
import { connectRedis, type RedisClient } from '../shared/redis/connect.ts';
import type { RedisTarget } from '../shared/redis/topology.ts';
import type { Logger } from '../shared/logger.ts';
import { DEFAULT_HEARTBEAT_MS, DEFAULT_REGISTRY_TTL_MS, registryKeys, type RegistryKeys } from '../shared/registry/keys.ts';
import { encodeMessage, encodeRecord, isValidWorkerId, originOf, type WorkerRecord } from '../shared/registry/record.ts';

export interface WorkerRegistrationOptions {
  /** Where Redis is: a URL of any form in shared/redis/topology.ts (one node, Sentinel, Cluster) or a topology; or give `client`. */
  redisUrl?: RedisTarget;
  /** A client made by the caller (e.g. an ioredis Cluster); `withdraw` leaves it connected. */
  client?: RedisClient;
  /** The worker's id: its record key. Letters, digits and `_.:@/+=-`, at most 128. */
  workerId: string;
  /** The URL gateways use to reach this worker (its origin is kept), e.g. http://10.0.0.7:9001 */
  advertiseUrl: string;
  /** Called at every heartbeat: what the record says the worker serves now. */
  describe: () => { models: Record<string, string[]>; capacity: number };
  /** The infergate version, written into the record. */
  version: string;
  /** Epoch ms the worker started; default: when the registration was built. */
  startedAt?: number;
  /** Default 2000 ms. */
  heartbeatMs?: number;
  /** Life of the record after each heartbeat; default 6000 ms, at least twice the heartbeat. */
  ttlMs?: number;
  /** Registry namespace (key and channel prefix); default 'infergate'. */
  namespace?: string;
  /** Longest a Redis command may take; default 1000 ms (capped at the heartbeat period). */
  commandTimeoutMs?: number;
  /** Longest `start` waits for a first connection, and `withdraw` for Redis; default 1000 ms. */
  waitMs?: number;
  /** Extra ioredis options for a connection opened from `redisUrl` (TLS, password...). */
  redisOptions?: RedisOptions;
  logger: Logger;
  /** Wall clock for startedAt and index scores; default Date.now. */
  now?: () => number;
}

/**
 * The URL to advertise when none is given: the listening address, or — when the worker listens on
 * every interface (0.0.0.0, ::) — the first non-internal IPv4 address (a pod's IP in Kubernetes).
 * Undefined when there is none: the caller then asks for --advertise-url.
 */
export function defaultAdvertiseUrl(host: string, port: number, interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string | undefined {
  if (host !== '0.0.0.0' && host !== '::' && host !== '') return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  for (const addresses of Object.values(interfaces)) {
    const address = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (address !== undefined) return `http://${address.address}:${port}`;
  }
  return undefined;
}

/** `repository.servedVersions()` → the record's `models` field. */
export function servedModels(versions: ReadonlyArray<{ name: string; version: string }>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const { name, version } of versions) (out[name] ??= []).push(version);
  for (const list of Object.values(out)) list.sort((a, b) => Number(a) - Number(b));
  return out;
}

export type RegistrationState = 'idle' | 'registered' | 'failing' | 'withdrawn';

export class WorkerRegistration {
  readonly #options: WorkerRegistrationOptions;
  readonly #keys: RegistryKeys;
  readonly #client: RedisClient;
  readonly #ownsClient: boolean;
  readonly #url: string;
  readonly #heartbeatMs: number;
  readonly #ttlMs: number;
  readonly #waitMs: number;
  readonly #startedAt: number;
  readonly #now: () => number;
  readonly #logger: Logger;
  #state: RegistrationState = 'idle';
  #timer: NodeJS.Timeout | undefined;
  #beat: Promise<void> | undefined;
  #started = false;
  #stopped = false;
  /** A heartbeat was sent, so a record may exist to withdraw. */
  #sent = false;
  #onReady = (): void => {
    // A reconnection: re-register now rather than at the next beat (the record may have expired,
    // or Redis may have restarted empty).
    if (this.#started && !this.#stopped) this.#scheduleBeat(0);
  };

  constructor(options: WorkerRegistrationOptions) {
    if (!isValidWorkerId(options.workerId)) throw new Error(`worker id '${options.workerId}' cannot name a registry entry: use letters, digits and _.:@/+=- (at most 128)`);
    const url = originOf(options.advertiseUrl);
    if (url === undefined) throw new Error(`advertised URL '${options.advertiseUrl}' is not an http(s) URL`);
    const host = new URL(url).hostname;
    if (host === '0.0.0.0' || host === '[::]') throw new Error(`advertised URL '${options.advertiseUrl}' names no reachable host: give the address gateways should use`);
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#ttlMs = options.ttlMs ?? DEFAULT_REGISTRY_TTL_MS;
    if (!(this.#heartbeatMs >= 100)) throw new Error('heartbeatMs must be at least 100');
    if (!(this.#ttlMs >= 2 * this.#heartbeatMs)) throw new Error(`ttlMs (${this.#ttlMs}) must be at least twice heartbeatMs (${this.#heartbeatMs}): one late beat must not expire the record`);
    if (options.client === undefined && options.redisUrl === undefined) throw new Error('give redisUrl or client');
    this.#options = options;
    this.#keys = registryKeys(options.namespace);
    this.#url = url;
    this.#waitMs = options.waitMs ?? 1000;
    this.#now = options.now ?? Date.now;
    this.#startedAt = options.startedAt ?? this.#now();
    this.#logger = options.logger.child({ component: 'registration' });
    this.#ownsClient = options.client === undefined;
    this.#client = options.client ?? connectRedis(options.redisUrl!, {
      ...options.redisOptions,
      enableOfflineQueue: false, // disconnected: a beat fails now and the next one retries
      commandTimeout: Math.min(options.commandTimeoutMs ?? 1000, this.#heartbeatMs),
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: 1000,
      connectionName: 'infergate:worker-registration',
      retryStrategy: (times) => Math.min(times * 100, 1000), // reconnect for ever, at most every second
    });
    this.#client.on('error', (err: Error) => this.#logger.debug({ err: err.message }, 'registry Redis connection error'));
    this.#client.on('ready', this.#onReady);
  }

  /** 'idle' before the first heartbeat, 'registered' after a successful one, 'failing' while Redis does not answer. */
  get state(): RegistrationState {
    return this.#state;
  }

  /** The record as the next heartbeat writes it. */
  record(): WorkerRecord {
    const { models, capacity } = this.#options.describe();
    return { id: this.#options.workerId, url: this.#url, models, capacity, startedAt: this.#startedAt, version: this.#options.version };
  }

  /**
   * Writes the first record (waiting up to `waitMs` for a connection) and starts the heartbeats.
   * Never throws: with Redis down it logs and keeps retrying in the background.
   */
  async start(): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    if (this.#client.status !== 'ready') await waitForEvent(this.#client, 'ready', this.#waitMs);
    if (this.#stopped) return;
    await this.#runBeat();
  }

  /**
   * Stops the heartbeats and deletes the record (DEL + ZREM, then a leave message), waiting at most
   * `waitMs` for Redis; with Redis down the record simply expires within the TTL. Never throws.
   */
  async withdraw(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#client.off('ready', this.#onReady);
    // A beat still in flight would otherwise rewrite the record after the DEL.
    await this.#beat;
    this.#state = 'withdrawn';
    if (this.#sent) {
      const { workerId } = this.#options;
      const deleted = (async () => {
        await this.#client.multi().del(this.#keys.record(workerId)).zrem(this.#keys.index, workerId).exec();
        await this.#client.publish(this.#keys.channel, encodeMessage({ type: 'leave', id: workerId, url: this.#url }));
      })();
      try {
        await withTimeout(deleted, this.#waitMs);
        this.#logger.info({ workerId, url: this.#url }, 'withdrawn from the registry');
      } catch (err) {
        deleted.catch(() => undefined);
        this.#logger.warn({ workerId, err: (err as Error).message, ttlMs: this.#ttlMs }, 'could not withdraw from the registry; the entry expires with its TTL');
      }
    }
    if (this.#ownsClient) this.#client.disconnect();
  }

  #scheduleBeat(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      // Re-armed after the beat completes, so beats never overlap; a beat already running is
      // joined, not doubled.
      void (this.#beat ?? this.#runBeat());
    }, delayMs);
    this.#timer.unref();
  }

  #runBeat(): Promise<void> {
    const beat = this.#heartbeat().finally(() => {
      this.#beat = undefined;
      this.#scheduleBeat(this.#heartbeatMs);
    });
    this.#beat = beat;
    return beat;
  }

  async #heartbeat(): Promise<void> {
    if (this.#stopped) return;
    const { workerId } = this.#options;
    try {
      const record = this.record();
      this.#sent = true;
      const replies = await this.#client.multi()
        .exists(this.#keys.record(workerId))
        .set(this.#keys.record(workerId), encodeRecord(record), 'PX', this.#ttlMs)
        .zadd(this.#keys.index, this.#now() + this.#ttlMs, workerId)
        .exec();
      const failed = replies?.find(([err]) => err !== null)?.[0];
      if (replies === null || failed) throw failed ?? new Error('transaction aborted');
      const existed = replies[0]?.[1] === 1;
      if (this.#stopped) return; // withdraw() waits for this beat and deletes what it just wrote
      // Joins are published when the record was absent, so gateways learn of a worker at once;
      // a lost message costs at most one gateway resync.
      if (!existed) await this.#client.publish(this.#keys.channel, encodeMessage({ type: 'join', record }));
      if (!existed) this.#logger.info({ workerId, url: this.#url, ttlMs: this.#ttlMs, models: Object.keys(record.models) }, 'registered in the worker registry');
      else if (this.#state === 'failing') this.#logger.info({ workerId }, 'registry heartbeats answered again');
      this.#state = 'registered';
    } catch (err) {
      if (this.#state !== 'failing') this.#logger.warn({ workerId, err: (err as Error).message }, 'registry heartbeat failed; retrying at every heartbeat and on reconnection');
      else this.#logger.debug({ workerId, err: (err as Error).message }, 'registry heartbeat failed again');
      this.#state = 'failing';
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
