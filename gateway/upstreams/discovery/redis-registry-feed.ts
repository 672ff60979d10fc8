/**
 * The gateway's view of the Redis worker registry (layout in shared/registry/keys.ts): a snapshot of
 * every live record, and the join/leave messages as they are published.
 *
 * A snapshot is `ZRANGE <index>` then `MGET` of the record keys — O(workers), where a SCAN would
 * walk every key in the database (rate-limit buckets included) on every resync of every gateway.
 * Ids in the index whose record has expired are dropped from it (ZREM) on the way: that is how the
 * index forgets workers that died without withdrawing. A worker re-adds itself to the index at every
 * heartbeat, so the rare ZREM racing a fresh registration heals within one heartbeat.
 *
 * Two connections, since a subscribed connection can run nothing else. Commands fail fast (no
 * offline queue, a timeout) so a dead Redis costs a resync a rejected promise, never a hang; the
 * subscription waits in the offline queue instead, and ioredis re-subscribes after every reconnect.
 *
 * @example
 *   const feed = new RedisRegistryFeed({ redisUrl: 'redis://127.0.0.1:6379', logger });
 *   feed.subscribe({ message: (m) => console.log(m.type), subscribed: () => undefined, reconnected: () => undefined });
 *   const records = await feed.snapshot(); // throws while Redis is unreachable
 *   await feed.close();
 */
import { waitForEvent } from '../../../shared/wait-for-event.ts';
import type { RedisOptions } from 'ioredis';
import { connectRedis, type RedisClient } from '../../../shared/redis/connect.ts';
import type { RedisTarget } from '../../../shared/redis/topology.ts';
import type { Logger } from '../../../shared/logger.ts';
import { registryKeys, type RegistryKeys } from '../../../shared/registry/keys.ts';
import { parseMessage, parseRecord, type RegistryMessage, type WorkerRecord } from '../../../shared/registry/record.ts';

export interface RegistryFeedHandlers {
  /** A join or leave message (malformed ones are dropped and logged). */
  message(message: RegistryMessage): void;
  /** The subscription is in force (first time and after every reconnect): messages may have been missed. */
  subscribed(): void;
  /** A connection came back after a loss: Redis may have restarted empty. */
  reconnected(): void;
}

/** Where registry discovery reads from; RedisRegistryFeed in production, a fake in unit tests. */
export interface RegistryFeed {
  /** Every record live now; throws when the registry cannot be read. */
  snapshot(): Promise<WorkerRecord[]>;
  /** Starts delivering messages to `handlers` (once). */
  subscribe(handlers: RegistryFeedHandlers): void;
  close(): Promise<void>;
}

export interface RedisRegistryFeedOptions {
  /** Where Redis is: a URL of any form in shared/redis/topology.ts (one node, Sentinel, Cluster) or a topology; or give `clients`. */
  redisUrl?: RedisTarget;
  /**
   * Connections made by the caller (e.g. ioredis Cluster or Sentinel clients): one for commands,
   * one that only subscribes. `close` leaves them connected.
   */
  clients?: { commands: RedisClient; subscriber: RedisClient };
  /** Registry namespace; default 'infergate'. */
  namespace?: string;
  /** Longest a snapshot command may take; default 1000 ms. */
  commandTimeoutMs?: number;
  /** How long the first snapshot waits for the first connection; default 1000 ms. */
  connectWaitMs?: number;
  /** Extra ioredis options for connections opened from `redisUrl` (TLS, password...). */
  redisOptions?: RedisOptions;
  logger: Logger;
}

/** Records fetched per MGET: bounds one reply's size with thousands of workers. */
const MGET_CHUNK = 500;

export class RedisRegistryFeed implements RegistryFeed {
  readonly #keys: RegistryKeys;
  readonly #commands: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #owns: boolean;
  readonly #logger: Logger;
  readonly #connectWaitMs: number;
  #everReady = false;
  #handlers: RegistryFeedHandlers | undefined;
  #closed = false;

  constructor(options: RedisRegistryFeedOptions) {
    if (options.clients === undefined && options.redisUrl === undefined) throw new Error('give redisUrl or clients');
    this.#keys = registryKeys(options.namespace);
    this.#logger = options.logger;
    this.#owns = options.clients === undefined;
    const reconnect = (times: number): number => Math.min(times * 100, 1000);
    this.#commands = options.clients?.commands ?? connectRedis(options.redisUrl!, {
      ...options.redisOptions,
      enableOfflineQueue: false,
      commandTimeout: options.commandTimeoutMs ?? 1000,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      connectionName: 'infergate:registry',
      retryStrategy: reconnect,
    });
    this.#subscriber = options.clients?.subscriber ?? connectRedis(options.redisUrl!, {
      ...options.redisOptions,
      // The SUBSCRIBE waits for a connection however long it takes; ioredis re-subscribes after each reconnect.
      maxRetriesPerRequest: null,
      connectTimeout: 1000,
      connectionName: 'infergate:registry-subscriber',
      retryStrategy: reconnect,
    });
    this.#connectWaitMs = options.connectWaitMs ?? 1000;
    this.#everReady = this.#commands.status === 'ready';
    this.#commands.once('ready', () => {
      this.#everReady = true;
    });
    for (const [name, client] of [['commands', this.#commands], ['subscriber', this.#subscriber]] as const) {
      let lost = false;
      client.on('error', (err: Error) => this.#logger.debug({ connection: name, err: err.message }, 'registry Redis connection error'));
      client.on('close', () => {
        lost = true;
      });
      client.on('ready', () => {
        if (!lost || this.#closed) return;
        lost = false;
        this.#handlers?.reconnected();
        if (name === 'subscriber') this.#handlers?.subscribed();
      });
    }
  }

  subscribe(handlers: RegistryFeedHandlers): void {
    if (this.#handlers !== undefined) throw new Error('the feed is already subscribed');
    this.#handlers = handlers;
    this.#subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.#keys.channel || this.#closed) return;
      const message = parseMessage(text);
      if (message === undefined) this.#logger.warn({ channel, text: text.slice(0, 200) }, 'ignored a malformed registry message');
      else handlers.message(message);
    });
    this.#subscriber.subscribe(this.#keys.channel).then(
      () => {
        if (!this.#closed) handlers.subscribed();
      },
      (err: Error) => this.#logger.warn({ err: err.message }, 'registry subscription failed; resyncs still find workers'),
    );
  }

  async snapshot(): Promise<WorkerRecord[]> {
    // Until the first connection is up, wait for it (bounded): a gateway's first snapshot should
    // find the registry, not fail on a socket still connecting. Later outages fail fast.
    if (!this.#everReady && this.#commands.status !== 'ready') await waitForEvent(this.#commands, 'ready', this.#connectWaitMs);
    const ids = await this.#commands.zrange(this.#keys.index, 0, -1);
    const records: WorkerRecord[] = [];
    const expired: string[] = [];
    for (let i = 0; i < ids.length; i += MGET_CHUNK) {
      const chunk = ids.slice(i, i + MGET_CHUNK);
      const values = await this.#commands.mget(chunk.map((id) => this.#keys.record(id)));
      chunk.forEach((id, j) => {
        const value = values[j];
        if (value === null || value === undefined) {
          expired.push(id);
          return;
        }
        const record = parseRecord(value);
        if (record === undefined || record.id !== id) this.#logger.warn({ id }, 'ignored a malformed registry record');
        else records.push(record);
      });
    }
    if (expired.length > 0) {
      this.#commands.zrem(this.#keys.index, ...expired).catch((err: Error) => this.#logger.debug({ err: err.message }, 'could not prune expired registry ids'));
    }
    return records;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owns) {
      this.#commands.disconnect();
      this.#subscriber.disconnect();
    } else {
      await this.#subscriber.unsubscribe(this.#keys.channel).catch(() => undefined);
    }
  }
}
