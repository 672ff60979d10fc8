/**
 * Which key store a gateway or `infergate keys` uses, decided the same way for both so that a key
 * made with the CLI is the one the gateway sees: Redis when configured, else the key file.
 *
 * From a (raw or validated) gateway config:
 *   `auth.apiKeys.store: 'redis' | 'file'`  forces a kind (optional)
 *   `redis.url` | `redis.sentinel` | `redis.cluster`, `redis.keyPrefix`
 *                                           the Redis store (when no `store: 'file'`)
 *   `auth.apiKeys.file`                     the key file (default `.infergate/keys.json`, relative to cwd)
 *
 * @example
 *   const store = await openKeyStore(keyStoreLocation(config, process.cwd()), { now: Date.now });
 */
import { resolve } from 'node:path';
import type { RedisTarget } from '../../shared/redis/topology.ts';
import { topologyOf } from '../../shared/redis/topology.ts';
import { describeIssues } from '../config/load.ts';
import { RedisClusterSchema, RedisSentinelSchema } from '../config/schema.ts';
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
  const forced = at('auth.apiKeys.store');
  const url = redisTargetOf(at('redis.url'), at('redis.sentinel'), at('redis.cluster'));
  const file = at('auth.apiKeys.file');
  const prefix = at('redis.keyPrefix');
  if (forced === 'redis' && url === undefined) throw new Error("auth.apiKeys.store is 'redis' but no redis.url, redis.sentinel or redis.cluster is set");
  if (forced !== 'file' && url !== undefined) {
    return typeof prefix === 'string' ? { kind: 'redis', url, keyPrefix: prefix } : { kind: 'redis', url };
  }
  return { kind: 'file', path: resolve(cwd, typeof file === 'string' && file !== '' ? file : DEFAULT_KEY_FILE) };
}

/** A URL stays a string (any form of shared/redis/topology.ts); a sentinel or cluster section becomes a topology. */
function redisTargetOf(url: unknown, sentinel: unknown, cluster: unknown): RedisTarget | undefined {
  const fail = (key: string, issues: Parameters<typeof describeIssues>[0]): never => {
    throw new Error(`redis.${key}: ${describeIssues(issues)}`);
  };
  if (sentinel !== undefined) {
    const parsed = RedisSentinelSchema.safeParse(sentinel);
    return parsed.success ? topologyOf({ sentinel: parsed.data }) : fail('sentinel', parsed.error.issues);
  }
  if (cluster !== undefined) {
    const parsed = RedisClusterSchema.safeParse(cluster);
    return parsed.success ? topologyOf({ cluster: parsed.data }) : fail('cluster', parsed.error.issues);
  }
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
