/**
 * Which key store a gateway or `infergate keys` uses, decided the same way for both so that a key
 * made with the CLI is the one the gateway sees: Redis when configured, else the key file.
 *
 * From a (raw or validated) gateway config:
 *   `auth.apiKeys.store: 'redis' | 'file'`  forces a kind (optional)
 *   `redis.url`, `redis.keyPrefix`          the Redis store (when no `store: 'file'`)
 *   `auth.apiKeys.file`                     the key file (default `.infergate/keys.json`, relative to cwd)
 *
 * @example
 *   const store = await openKeyStore(keyStoreLocation(config, process.cwd()), { now: Date.now });
 */
import { resolve } from 'node:path';
import type { KeyStore } from './key-store.ts';
import type { FileKeyStoreOptions } from './file-key-store.ts';
import type { RedisKeyStoreOptions } from './redis-key-store.ts';

export const DEFAULT_KEY_FILE = '.infergate/keys.json';

export type KeyStoreLocation =
  | { kind: 'file'; path: string }
  | { kind: 'redis'; url: string; keyPrefix?: string };

/** Reads the location out of a gateway config object; absent keys mean the default file. */
export function keyStoreLocation(config: unknown, cwd: string): KeyStoreLocation {
  const at = (path: string): unknown => path.split('.').reduce<unknown>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), config);
  const forced = at('auth.apiKeys.store');
  const url = at('redis.url');
  const file = at('auth.apiKeys.file');
  const prefix = at('redis.keyPrefix');
  if (forced === 'redis' && typeof url !== 'string') throw new Error("auth.apiKeys.store is 'redis' but redis.url is not set");
  if (forced !== 'file' && typeof url === 'string' && url !== '') {
    return typeof prefix === 'string' ? { kind: 'redis', url, keyPrefix: prefix } : { kind: 'redis', url };
  }
  return { kind: 'file', path: resolve(cwd, typeof file === 'string' && file !== '' ? file : DEFAULT_KEY_FILE) };
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
