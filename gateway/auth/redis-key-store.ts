/**
 * The shared key store: Redis, for any number of gateway replicas.
 *
 * Layout (every key carries the `{infergate}` hash tag, so all of them live in one Redis Cluster
 * slot and the multi-key scripts below are legal there):
 *   `{infergate}:key:<id>`  hash, one per key: the KeyRecord fields (models as JSON, times as epoch ms)
 *   `{infergate}:keys`      set of every key id (for `list`)
 * Changes are published on `{infergate}:keys:invalidate` (message: the key id) and every store
 * subscribes, so each replica's verifier cache drops a revoked or rotated key at once; the cache TTL
 * bounds the delay when a message is missed, and a re-subscription after a disconnect invalidates
 * everything, since messages sent meanwhile are lost (Redis pub/sub is at-most-once).
 *
 * Failing fast: `enableOfflineQueue: false` rejects a command at once while disconnected, and
 * `commandTimeout` bounds a stalled one, so a dead Redis costs a request milliseconds, not a hang;
 * every such failure is thrown as KeyStoreUnavailableError and the caller fails closed. ioredis keeps
 * reconnecting in the background, so the store recovers without a restart.
 *
 * @example
 *   const store = await openRedisKeyStore({ url: 'redis://127.0.0.1:6379' });
 *   const record = await store.get('4Fq0ZbW9xK2m'); // throws KeyStoreUnavailableError if Redis is down
 */
import type { RedisOptions } from 'ioredis';
import { closeRedis, connectRedis, whenUsable, type RedisClient } from '../../shared/redis/connect.ts';
import type { RedisTarget } from '../../shared/redis/topology.ts';
import {
  InvalidationHub,
  KeyStateError,
  KeyStoreUnavailableError,
  checkCreateInput,
  mintKey,
  parseKeyRecord,
  rotationRefusal,
  type CreateKeyInput,
  type CreatedKey,
  type InvalidationListener,
  type KeyRecord,
  type KeyStore,
  type KeyStoreOptions,
  TouchBatcher,
} from './key-store.ts';

export const DEFAULT_REDIS_KEY_PREFIX = '{infergate}:';

export interface RedisKeyStoreOptions extends KeyStoreOptions {
  /** Where Redis is: a URL of any form in shared/redis/topology.ts (one node, Sentinel, Cluster) or a topology. */
  url: RedisTarget;
  /** Prefix of every key and of the channel; keep a `{hash tag}` in it for Redis Cluster. Default `{infergate}:`. */
  keyPrefix?: string;
  /** A command not answered within this fails (KeyStoreUnavailableError). Default 150 ms. */
  commandTimeoutMs?: number;
  /** How long `openRedisKeyStore` waits for the first connection before returning anyway. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Told about connection errors and failed background writes (touches, publishes). */
  onError?: (err: Error) => void;
  /** Extra ioredis options (TLS, sentinel…); the fail-fast options above win. */
  redisOptions?: RedisOptions;
}

const HASH_NUMBERS = ['createdAt', 'ratePerSec', 'burst', 'lastUsedAt', 'expiresAt', 'revokedAt', 'graceUntil'] as const;

// Revoke only an existing key, and keep the first revocation time (HSETNX).
const REVOKE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSETNX', KEYS[1], 'revokedAt', ARGV[1])
return redis.call('HGETALL', KEYS[1])`;

// Rotation in one step, re-checking the old key's state so that a concurrent revoke or rotate wins
// cleanly. KEYS: old hash, new hash, index. ARGV: graceUntil, new id, then the new hash's field/value pairs.
const ROTATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('HEXISTS', KEYS[1], 'revokedAt') == 1 then return 'revoked' end
if redis.call('HEXISTS', KEYS[1], 'replacedBy') == 1 then return 'rotated' end
redis.call('HSET', KEYS[1], 'graceUntil', ARGV[1], 'replacedBy', ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
redis.call('SADD', KEYS[3], ARGV[2])
return 'ok'`;

// Last-used time: only on a key that exists (never resurrect a partial hash) and only forwards.
const TOUCH_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  local last = tonumber(redis.call('HGET', KEYS[1], 'lastUsedAt') or '0')
  if tonumber(ARGV[1]) > last then redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[1]) end
end
return 0`;

interface ScriptCommands {
  infergateRevokeKey(key: string, now: number): Promise<string[] | null>;
  infergateRotateKey(oldKey: string, newKey: string, index: string, graceUntil: number, newId: string, ...fields: string[]): Promise<string>;
  infergateTouchKey(key: string, at: number): Promise<number>;
}

/** Connects (waiting up to connectTimeoutMs) and subscribes; resolves even if Redis is down meanwhile. */
export async function openRedisKeyStore(options: RedisKeyStoreOptions): Promise<KeyStore> {
  const store = new RedisKeyStore(options);
  await store.connected(options.connectTimeoutMs ?? 2000);
  return store;
}

class RedisKeyStore implements KeyStore {
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #now: () => number;
  readonly #onError: (err: Error) => void;
  readonly #hub = new InvalidationHub();
  readonly #touches: TouchBatcher;
  #subscribedBefore = false;
  #closed = false;

  constructor(options: RedisKeyStoreOptions) {
    this.#prefix = options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
    // Without a hash tag a record's hash and the index land in different Cluster slots, where the
    // MULTI and scripts below are refused (CROSSSLOT).
    if (!/\{[^{}]+\}/.test(this.#prefix)) throw new TypeError(`key prefix '${this.#prefix}' needs a {hash tag}, e.g. '{infergate}:'`);
    this.#channel = `${this.#prefix}keys:invalidate`;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    const failFast: RedisOptions = {
      ...options.redisOptions,
      commandTimeout: options.commandTimeoutMs ?? 150,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: options.redisOptions?.connectTimeout ?? 1000,
      connectionName: 'infergate:key-store',
      retryStrategy: (times) => Math.min(50 * times, 1000),
    };
    this.#client = connectRedis(options.url, failFast);
    this.#client.defineCommand('infergateRevokeKey', { numberOfKeys: 1, lua: REVOKE_LUA });
    this.#client.defineCommand('infergateRotateKey', { numberOfKeys: 3, lua: ROTATE_LUA });
    this.#client.defineCommand('infergateTouchKey', { numberOfKeys: 1, lua: TOUCH_LUA });
    // The subscriber may queue its SUBSCRIBE until connected; it is never on a request's path.
    this.#subscriber = connectRedis(options.url, { ...failFast, enableOfflineQueue: true, commandTimeout: undefined, maxRetriesPerRequest: null, connectionName: 'infergate:key-store-subscriber' });
    for (const connection of [this.#client, this.#subscriber]) connection.on('error', (err: Error) => this.#onError(err));
    this.#subscriber.on('message', (channel: string, id: string) => {
      if (channel === this.#channel) this.#hub.emit(id === '' ? undefined : id);
    });
    this.#subscriber.on('ready', () => {
      // ioredis re-subscribes after a reconnect; anything published while we were away was lost.
      if (this.#subscribedBefore) this.#hub.emit(undefined);
      this.#subscribedBefore = true;
    });
    this.#subscriber.subscribe(this.#channel).catch((err: Error) => this.#onError(err));
    this.#touches = new TouchBatcher(options.touchFlushMs ?? 10_000, (touches) => this.#writeTouches(touches));
  }

  /** Resolves when both connections are up, or after `timeoutMs`, whichever is first. */
  async connected(timeoutMs: number): Promise<void> {
    await Promise.all([whenUsable(this.#client, timeoutMs), whenUsable(this.#subscriber, timeoutMs)]);
  }

  #keyOf(id: string): string {
    return `${this.#prefix}key:${id}`;
  }

  get #index(): string {
    return `${this.#prefix}keys`;
  }

  get #scripts(): ScriptCommands {
    return this.#client as unknown as ScriptCommands;
  }

  async create(input: CreateKeyInput): Promise<CreatedKey> {
    checkCreateInput(input);
    const created = mintKey(input, this.#now());
    await this.#call(async () => {
      const results = await this.#client.multi().hset(this.#keyOf(created.record.id), toHash(created.record)).sadd(this.#index, created.record.id).exec();
      const failed = results?.find(([err]) => err !== null)?.[0];
      if (results === null || failed) throw failed ?? new Error('transaction aborted');
    });
    // Not published: a fresh random id cannot be in anyone's cache, not even as "unknown".
    return created;
  }

  async get(id: string): Promise<KeyRecord | undefined> {
    return fromHash(await this.#call(() => this.#client.hgetall(this.#keyOf(id))));
  }

  async list(): Promise<KeyRecord[]> {
    return this.#call(async () => {
      const ids = await this.#client.smembers(this.#index);
      if (ids.length === 0) return [];
      const pipeline = this.#client.pipeline();
      for (const id of ids) pipeline.hgetall(this.#keyOf(id));
      const results = (await pipeline.exec()) ?? [];
      const records: KeyRecord[] = [];
      for (const [err, hash] of results) {
        if (err) throw err;
        const record = fromHash(hash as Record<string, string>);
        if (record !== undefined) records.push(record);
      }
      return records.sort((a, b) => a.createdAt - b.createdAt);
    });
  }

  async revoke(id: string): Promise<KeyRecord | undefined> {
    const flat = await this.#call(() => this.#scripts.infergateRevokeKey(this.#keyOf(id), this.#now()));
    if (flat === null) return undefined;
    const hash: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
    this.#publish(id);
    return fromHash(hash);
  }

  async rotate(id: string, graceMs: number): Promise<CreatedKey | undefined> {
    if (!(Number.isFinite(graceMs) && graceMs >= 0)) throw new TypeError('graceMs must be ≥ 0');
    const old = await this.get(id);
    if (old === undefined) return undefined;
    const now = this.#now();
    const refusal = rotationRefusal(old, now);
    if (refusal !== undefined) throw new KeyStateError(refusal);
    const created = mintKey(old, now, old.id);
    const fields = Object.entries(toHash(created.record)).flat();
    const outcome = await this.#call(() => this.#scripts.infergateRotateKey(this.#keyOf(id), this.#keyOf(created.record.id), this.#index, now + graceMs, created.record.id, ...fields));
    if (outcome === 'missing') return undefined;
    if (outcome !== 'ok') throw new KeyStateError(outcome === 'revoked' ? `key ${id} is revoked` : `key ${id} was already rotated`);
    this.#publish(id);
    return created;
  }

  touch(id: string, now: number): void {
    this.#touches.touch(id, now);
  }

  onInvalidate(listener: InvalidationListener): () => void {
    return this.#hub.add(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#touches.stop();
    this.#closed = true;
    this.#subscriber.disconnect();
    await closeRedis(this.#client);
  }

  async #writeTouches(touches: ReadonlyMap<string, number>): Promise<void> {
    if (this.#closed) return;
    try {
      const pipeline = this.#client.pipeline() as unknown as ScriptCommands & { exec(): Promise<unknown> };
      for (const [id, at] of touches) void pipeline.infergateTouchKey(this.#keyOf(id), at);
      await pipeline.exec();
    } catch (err) {
      // Last-used times are advisory; losing a batch while Redis is down is acceptable.
      this.#onError(err as Error);
    }
  }

  /** Tells this process's caches at once, and every other replica through pub/sub. */
  #publish(id: string): void {
    this.#hub.emit(id);
    this.#client.publish(this.#channel, id).catch((err: Error) => this.#onError(err));
  }

  async #call<T>(command: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error('the key store is closed');
    try {
      return await command();
    } catch (err) {
      const state = this.#client.status === 'ready' ? (err as Error).message : `not connected (${this.#client.status})`;
      throw new KeyStoreUnavailableError(`the Redis key store is unavailable: ${state}`, { cause: err });
    }
  }
}

function toHash(record: KeyRecord): Record<string, string> {
  const hash: Record<string, string> = {};
  for (const [field, value] of Object.entries(record)) {
    if (value === undefined) continue;
    hash[field] = field === 'models' ? JSON.stringify(value) : String(value);
  }
  return hash;
}

function fromHash(hash: Record<string, string>): KeyRecord | undefined {
  if (Object.keys(hash).length === 0) return undefined;
  const value: Record<string, unknown> = { ...hash };
  for (const field of HASH_NUMBERS) if (hash[field] !== undefined) value[field] = Number(hash[field]);
  try {
    value.models = JSON.parse(hash.models ?? 'null');
  } catch {
    return undefined;
  }
  return parseKeyRecord(value);
}
