/**
 * Both key stores through one conformance suite (key-store-conformance.ts), then what only one of
 * them has: the file's mode, locking and reload; Redis's key layout, pub/sub and failing fast
 * (a real redis-server on a free port from test/helpers/redis.ts, or REDIS_URL).
 *
 * Tolerances: "fails fast" is < 200 ms per call — a killed server resets the connection, so ioredis
 * refuses commands at once (no offline queue), and a stalled one is cut by the 150 ms command
 * timeout. A peer's change is seen within 2 s: the file store polls every 50 ms here (500 ms by
 * default), Redis pub/sub takes a round trip.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { openFileKeyStore } from '../../../gateway/auth/file-key-store.ts';
import { KeyStoreUnavailableError, type KeyStore } from '../../../gateway/auth/key-store.ts';
import { createApiKeyVerifier } from '../../../gateway/auth/key-verifier.ts';
import { DEFAULT_REDIS_KEY_PREFIX, openRedisKeyStore, type RedisKeyStoreOptions } from '../../../gateway/auth/redis-key-store.ts';
import { skipUnlessControllable, startRedis, type RedisFixture } from '../../helpers/redis.ts';
import { eventually, keyStoreConformance, type Clock, type KeyStoreBackend } from './key-store-conformance.ts';

const FAST_MS = 200;

/**
 * One test's temp dir and stores, cleaned up by one hook in the right order: stores first (closing
 * one flushes its last-used times, which would recreate a directory removed before it), then the dir.
 */
interface Scratch {
  dir(): Promise<string>;
  track(store: KeyStore): KeyStore;
}

const scratches = new WeakMap<TestContext, Scratch>();

function scratch(t: TestContext): Scratch {
  const existing = scratches.get(t);
  if (existing !== undefined) return existing;
  const stores: KeyStore[] = [];
  let dir: string | undefined;
  t.after(async () => {
    await Promise.all(stores.map((s) => s.close().catch(() => {})));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });
  const created: Scratch = {
    async dir() {
      dir ??= await mkdtemp(join(tmpdir(), 'infergate-keys-'));
      return dir;
    },
    track(store) {
      stores.push(store);
      return store;
    },
  };
  scratches.set(t, created);
  return created;
}

async function tempDir(t: TestContext): Promise<string> {
  return scratch(t).dir();
}

/** Closes every store a test opened, whatever happened (before its temp dir is removed). */
function closing(t: TestContext): (store: KeyStore) => KeyStore {
  return scratch(t).track;
}

const fileBackend: KeyStoreBackend = {
  name: 'file',
  async open(t, clock) {
    const { dir, track } = scratch(t);
    const path = join(await dir(), 'nested', 'keys.json');
    const openOne = async (): Promise<KeyStore> => track(await openFileKeyStore({ path, now: () => clock.ms, watchIntervalMs: 50, touchFlushMs: 60_000 }));
    let current = await openOne();
    return {
      store: current,
      openPeer: openOne,
      rawContents: async () => readFile(path, 'utf8'),
      reopen: async () => {
        await current.close();
        current = await openOne();
        return current;
      },
    };
  },
};

let sharedRedis: RedisFixture | undefined;

function redisBackend(): KeyStoreBackend {
  return {
    name: 'redis',
    async open(t, clock) {
      const redis = sharedRedis!;
      // Each test gets its own prefix (and hash tag), so tests never see each other's keys, even on a shared REDIS_URL.
      const keyPrefix = `{infergate-test-${randomBytes(6).toString('hex')}}:`;
      const track = closing(t);
      const openOne = async (): Promise<KeyStore> => track(await openRedisKeyStore({ url: redis.url, keyPrefix, now: () => clock.ms, touchFlushMs: 60_000 }));
      let current = await openOne();
      const raw = redis.client();
      return {
        store: current,
        openPeer: openOne,
        rawContents: async () => {
          const keys = await raw.keys(`${keyPrefix}*`);
          const dump: Record<string, unknown> = {};
          for (const key of keys) dump[key] = (await raw.type(key)) === 'hash' ? await raw.hgetall(key) : await raw.smembers(key);
          return JSON.stringify(dump);
        },
        reopen: async () => {
          await current.close();
          current = await openOne();
          return current;
        },
      };
    },
  };
}

keyStoreConformance(fileBackend);

describe('redis', () => {
  before(async () => {
    sharedRedis = await startRedis();
  });
  after(() => sharedRedis?.stop());
  keyStoreConformance(redisBackend());
});

describe('file key store only', () => {
  test('the file is mode 0600 in a 0700 directory, and no temp or lock file is left behind', async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'sub', 'keys.json');
    const store = closing(t)(await openFileKeyStore({ path, watchIntervalMs: false }));
    await store.create({ name: 'a', models: '*' });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'sub'))).mode & 0o777, 0o700);
    await store.revoke((await store.list())[0]!.id);
    assert.deepEqual(await readdir(join(dir, 'sub')), ['keys.json']);
    const body = JSON.parse(await readFile(path, 'utf8')) as { version: number; keys: unknown[] };
    assert.equal(body.version, 1);
    assert.equal(body.keys.length, 1);
  });

  test('two processes writing at once lose nothing (lock + re-read before each write)', async (t) => {
    const path = join(await tempDir(t), 'keys.json');
    const track = closing(t);
    const a = track(await openFileKeyStore({ path, watchIntervalMs: false }));
    const b = track(await openFileKeyStore({ path, watchIntervalMs: false }));
    await Promise.all(Array.from({ length: 15 }, (_, i) => [a.create({ name: `a${i}`, models: '*' }), b.create({ name: `b${i}`, models: '*' })]).flat());
    const fresh = track(await openFileKeyStore({ path, watchIntervalMs: false }));
    assert.equal((await fresh.list()).length, 30);
  });

  test('a revocation by the CLI is not undone by the gateway flushing last-used times', async (t) => {
    const path = join(await tempDir(t), 'keys.json');
    const track = closing(t);
    const gateway = track(await openFileKeyStore({ path, watchIntervalMs: false, touchFlushMs: 60_000 }));
    const { record } = await gateway.create({ name: 'a', models: '*' });
    gateway.touch(record.id, 123);
    const cli = track(await openFileKeyStore({ path, watchIntervalMs: false }));
    await cli.revoke(record.id);
    await gateway.close(); // flushes the touch into the file the CLI just changed
    const after = await track(await openFileKeyStore({ path, watchIntervalMs: false })).get(record.id);
    assert.ok(after?.revokedAt !== undefined, 'still revoked');
    assert.equal(after?.lastUsedAt, 123);
  });

  test('a file that turns unreadable keeps the last good records in use (and says so)', async (t) => {
    const path = join(await tempDir(t), 'keys.json');
    const errors: Error[] = [];
    const store = closing(t)(await openFileKeyStore({ path, watchIntervalMs: 20, onError: (err) => errors.push(err) }));
    const { record } = await store.create({ name: 'a', models: '*' });
    await writeFile(path, '{ half a file');
    await eventually(async () => errors.length > 0, 2000);
    assert.deepEqual((await store.get(record.id))?.id, record.id);
    assert.match(errors[0]!.message, /not valid JSON/);
  });

  test('a stale lock left by a crashed writer is broken', async (t) => {
    const path = join(await tempDir(t), 'keys.json');
    await writeFile(`${path}.lock`, '99999');
    const { utimes } = await import('node:fs/promises');
    const old = new Date(Date.now() - 60_000);
    await utimes(`${path}.lock`, old, old);
    const store = closing(t)(await openFileKeyStore({ path, watchIntervalMs: false }));
    await store.create({ name: 'a', models: '*' });
    assert.equal((await store.list()).length, 1);
  });

  test('a live lock that is never released fails the write with KeyStoreUnavailableError', async (t) => {
    const path = join(await tempDir(t), 'keys.json');
    await writeFile(`${path}.lock`, String(process.pid));
    const store = closing(t)(await openFileKeyStore({ path, watchIntervalMs: false, lockTimeoutMs: 100 }));
    await assert.rejects(store.create({ name: 'a', models: '*' }), KeyStoreUnavailableError);
  });
});

describe('redis key store only', () => {
  const open = async (t: TestContext, redis: RedisFixture, clock: Clock, extra: Partial<RedisKeyStoreOptions> = {}): Promise<KeyStore> =>
    closing(t)(await openRedisKeyStore({ url: redis.url, keyPrefix: `{ig-${randomBytes(4).toString('hex')}}:`, now: () => clock.ms, ...extra }));

  test('every key lives under the hash-tagged prefix (default {infergate}:): one hash per key and one index set', async (t) => {
    assert.equal(DEFAULT_REDIS_KEY_PREFIX, '{infergate}:');
    const redis = await startRedis(t);
    const raw = redis.client();
    const prefix = `{ig-${randomBytes(4).toString('hex')}}:`;
    const store = closing(t)(await openRedisKeyStore({ url: redis.url, keyPrefix: prefix }));
    const { record } = await store.create({ name: 'a', models: ['iris'] });
    assert.deepEqual((await raw.keys(`${prefix}*`)).sort(), [`${prefix}key:${record.id}`, `${prefix}keys`]);
    assert.equal(await raw.type(`${prefix}key:${record.id}`), 'hash');
    assert.equal(await raw.hget(`${prefix}key:${record.id}`, 'models'), '["iris"]');
    assert.deepEqual(await raw.smembers(`${prefix}keys`), [record.id]);
  });

  test('Redis killed: the store throws fast; the verifier fails closed for uncached keys, cached ones verify until their TTL', async (t) => {
    const redis = await startRedis(t);
    if (skipUnlessControllable(t, redis)) return;
    const clock = { ms: Date.UTC(2030, 0, 1) };
    const store = await open(t, redis, clock);
    const cached = await store.create({ name: 'cached', models: '*' });
    const uncached = await store.create({ name: 'uncached', models: '*' });
    const verifier = createApiKeyVerifier(store, { now: () => clock.ms, cacheTtlMs: 2000 });
    t.after(() => verifier.close());
    assert.ok((await verifier.verify(cached.key)).ok);

    await redis.kill();
    for (const attempt of [1, 2, 3]) {
      const started = performance.now();
      await assert.rejects(store.get(uncached.record.id), KeyStoreUnavailableError, `attempt ${attempt}`);
      const took = performance.now() - started;
      assert.ok(took < FAST_MS, `store.get took ${took.toFixed(1)} ms`);
    }
    for (const operation of [() => store.list(), () => store.create({ name: 'x', models: '*' }), () => store.revoke(cached.record.id), () => store.rotate(cached.record.id, 1)]) {
      const started = performance.now();
      await assert.rejects(operation(), KeyStoreUnavailableError);
      assert.ok(performance.now() - started < FAST_MS);
    }
    const started = performance.now();
    await assert.rejects(verifier.verify(uncached.key), KeyStoreUnavailableError);
    assert.ok(performance.now() - started < FAST_MS);
    assert.ok((await verifier.verify(cached.key)).ok, 'cached: still verifies');
    clock.ms += 2000;
    await assert.rejects(verifier.verify(cached.key), KeyStoreUnavailableError, 'past its TTL: fail closed');
    store.touch(cached.record.id, clock.ms); // never throws, even now
  });

  test('Redis stalled (SIGSTOP): calls fail at the command timeout, not later', async (t) => {
    const redis = await startRedis(t);
    if (skipUnlessControllable(t, redis)) return;
    const clock = { ms: Date.UTC(2030, 0, 1) };
    const store = await open(t, redis, clock, { commandTimeoutMs: 100 });
    const { record } = await store.create({ name: 'a', models: '*' });
    redis.pause();
    t.after(() => {
      try {
        redis.resume();
      } catch {
        // already stopped
      }
    });
    const started = performance.now();
    await assert.rejects(store.get(record.id), KeyStoreUnavailableError);
    const took = performance.now() - started;
    assert.ok(took >= 90 && took < FAST_MS, `took ${took.toFixed(1)} ms`);
    redis.resume();
    await eventually(async () => (await store.get(record.id).catch(() => undefined))?.id === record.id, 3000);
  });

  test('Redis restarted: the store reconnects by itself, and caches are flushed since pub/sub messages may have been lost', async (t) => {
    const redis = await startRedis(t);
    if (skipUnlessControllable(t, redis)) return;
    const clock = { ms: Date.UTC(2030, 0, 1) };
    const store = await open(t, redis, clock);
    const { key } = await store.create({ name: 'a', models: '*' });
    const verifier = createApiKeyVerifier(store, { now: () => clock.ms, cacheTtlMs: 3_600_000 });
    t.after(() => verifier.close());
    assert.ok((await verifier.verify(key)).ok);
    await redis.restart(); // empty: the key is gone, as if deleted while we could not hear about it
    await eventually(async () => {
      const result = await verifier.verify(key).catch(() => undefined);
      return result !== undefined && !result.ok && result.reason === 'unknown';
    }, 5000);
    const fresh = await store.create({ name: 'b', models: '*' });
    assert.ok((await verifier.verify(fresh.key)).ok, 'working again');
  });

  test('a revocation reaches three replicas through pub/sub', async (t) => {
    const redis = await startRedis(t);
    const clock = { ms: Date.UTC(2030, 0, 1) };
    const keyPrefix = `{ig-${randomBytes(4).toString('hex')}}:`;
    const track = closing(t);
    const replicas = await Promise.all([1, 2, 3].map(async () => track(await openRedisKeyStore({ url: redis.url, keyPrefix, now: () => clock.ms }))));
    const cli = track(await openRedisKeyStore({ url: redis.url, keyPrefix, now: () => clock.ms }));
    const { key, record } = await cli.create({ name: 'a', models: '*' });
    const verifiers = replicas.map((store) => createApiKeyVerifier(store, { now: () => clock.ms, cacheTtlMs: 3_600_000 }));
    t.after(() => verifiers.forEach((v) => v.close()));
    for (const v of verifiers) assert.ok((await v.verify(key)).ok);
    await cli.revoke(record.id);
    const took = await eventually(async () => {
      const results = await Promise.all(verifiers.map((v) => v.verify(key)));
      return results.every((r) => !r.ok && r.reason === 'revoked');
    }, 3000);
    assert.ok(took < 1000, `all three saw it after ${Math.round(took)} ms`);
  });
});
