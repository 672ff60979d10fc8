/**
 * Which key store a gateway or `infergate keys` uses, decided the same way for both so that a key
 * made with the CLI is the one the gateway sees: Redis when configured, else the key file.
 *
 * From a (raw or validated) gateway config, with the gateway schema's rules for each key:
 *   `auth.apiKeys.store: 'redis' | 'file'`  forces a kind (optional)
 *   `redis.url` | `redis.sentinel` | `redis.cluster`, `auth.apiKeys.redisKeyPrefix`
 *                                           the Redis store (when no `store: 'file'`)
 *   `auth.apiKeys.file`                     the key file (default `.infergate/keys.json`, relative to cwd)
 *
 * @example
 *   const store = await openKeyStore(keyStoreLocation(config, process.cwd()), { now: Date.now });
 */
import { resolve } from 'node:path';
import type { z } from 'zod';
import type { RedisTarget } from '../../shared/redis/topology.ts';
import { topologyOf } from '../../shared/redis/topology.ts';
import { describeIssues } from '../config/load.ts';
import { ApiKeyRedisPrefixSchema, ApiKeyStoreSchema, RedisClusterSchema, RedisSentinelSchema } from '../config/schema.ts';
import type { KeyStore } from './key-store.ts';
import type { FileKeyStoreOptions } from './file-key-store.ts';
import type { RedisKeyStoreOptions } from './redis-key-store.ts';

export const DEFAULT_KEY_FILE = '.infergate/keys.json';

export type KeyStoreLocation =
  | { kind: 'file'; path: string }
  | { kind: 'redis'; url: RedisTarget; keyPrefix?: string };

/** Reads the location out of a gateway config object; absent keys mean the default file. */
export function keyStoreLocation(config: unknown, cwd: string): KeyStoreLocation {
  const at = (path: string): unknown => path.split('.').reduce<unknown>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), config);
  const forced = checked('auth.apiKeys.store', ApiKeyStoreSchema, at('auth.apiKeys.store'));
  const url = redisTargetOf(at('redis.url'), at('redis.sentinel'), at('redis.cluster'));
  const file = at('auth.apiKeys.file');
  const prefix = checked('auth.apiKeys.redisKeyPrefix', ApiKeyRedisPrefixSchema, at('auth.apiKeys.redisKeyPrefix'));
  if (forced === 'redis' && url === undefined) throw new Error("auth.apiKeys.store is 'redis' but no redis.url, redis.sentinel or redis.cluster is set");
  if (forced !== 'file' && url !== undefined) {
    return prefix !== undefined ? { kind: 'redis', url, keyPrefix: prefix } : { kind: 'redis', url };
  }
  return { kind: 'file', path: resolve(cwd, typeof file === 'string' && file !== '' ? file : DEFAULT_KEY_FILE) };
}

/** An optional key of the config, validated by the gateway schema's rule for it. */
function checked<T>(key: string, schema: z.ZodType<T>, value: unknown): T | undefined {
  if (value === undefined) return undefined;
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(describeIssues(parsed.error.issues.map((issue) => ({ ...issue, path: [...key.split('.'), ...issue.path] }))));
  return parsed.data;
}

/** A URL stays a string (any form of shared/redis/topology.ts); a sentinel or cluster section becomes a topology. */
function redisTargetOf(url: unknown, sentinel: unknown, cluster: unknown): RedisTarget | undefined {
  if (sentinel !== undefined) return topologyOf({ sentinel: checked('redis.sentinel', RedisSentinelSchema, sentinel)! });
  if (cluster !== undefined) return topologyOf({ cluster: checked('redis.cluster', RedisClusterSchema, cluster)! });
  return typeof url === 'string' && url !== '' ? url : undefined;
}

export type OpenKeyStoreOptions = Omit<FileKeyStoreOptions, 'path'> & Omit<RedisKeyStoreOptions, 'url' | 'keyPrefix'>;

/** Opens the store at `location`; ioredis is loaded only for a Redis store. */
export async function openKeyStore(location: KeyStoreLocation, options: OpenKeyStoreOptions = {}): Promise<KeyStore> {
  if (location.kind === 'file') {
    const { openFileKeyStore } = await import('./file-key-store.ts');
    return openFileKeyStore({ ...options, path: location.path });
  }
  const { openRedisKeyStore } = await import('./redis-key-store.ts');
  return openRedisKeyStore({ ...options, url: location.url, ...(location.keyPrefix !== undefined && { keyPrefix: location.keyPrefix }) });
}
