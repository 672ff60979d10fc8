/**
 * The API-key verifier's logic (gateway/auth/key-verifier.ts) against a scripted in-memory store:
 * check order, caching and its bounds, invalidation, coalescing, fail-closed. The same behaviour
 * against the real file and Redis stores is in test/integration/auth/key-store.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatApiKey, generateApiKey } from '../../../../gateway/auth/api-key.ts';
import {
  InvalidationHub, KeyStoreUnavailableError, mintKey, type CreateKeyInput, type CreatedKey, type KeyRecord, type KeyStore,
} from '../../../../gateway/auth/key-store.ts';
import { createApiKeyVerifier, type ApiKeyVerification } from '../../../../gateway/auth/key-verifier.ts';

class ScriptedStore implements KeyStore {
  readonly records = new Map<string, KeyRecord>();
  readonly hub = new InvalidationHub();
  gets = 0;
  touches: Array<[string, number]> = [];
  down = false;
  /** When set, get() waits for it (to hold lookups in flight). */
  gate: Promise<void> | undefined;

  constructor(readonly clock: { ms: number }) {}

  async create(input: CreateKeyInput): Promise<CreatedKey> {
    const created = mintKey(input, this.clock.ms);
    this.records.set(created.record.id, created.record);
    return created;
  }

  async get(id: string): Promise<KeyRecord | undefined> {
    this.gets++;
    await this.gate;
    if (this.down) throw new KeyStoreUnavailableError('down');
    return this.records.get(id);
  }

  async list(): Promise<KeyRecord[]> {
    return [...this.records.values()];
  }

  /** Revokes without telling anyone, unless `notify`. */
  async revoke(id: string, notify = false): Promise<KeyRecord | undefined> {
    const record = this.records.get(id);
    if (record === undefined) return undefined;
    this.records.set(id, { ...record, revokedAt: this.clock.ms });
    if (notify) this.hub.emit(id);
    return this.records.get(id);
  }

  async rotate(): Promise<CreatedKey | undefined> {
    throw new Error('not used here');
  }

  touch(id: string, now: number): void {
    this.touches.push([id, now]);
  }

  onInvalidate(listener: (id: string | undefined) => void): () => void {
    return this.hub.add(listener);
  }

  async close(): Promise<void> {}
}

function setup(options: { cacheTtlMs?: number; negativeCacheTtlMs?: number; maxCacheEntries?: number } = {}) {
  const clock = { ms: 1_000_000 };
  const store = new ScriptedStore(clock);
  const verifier = createApiKeyVerifier(store, { now: () => clock.ms, ...options });
  return { clock, store, verifier };
}

function reason(result: ApiKeyVerification): string {
  return result.ok ? 'ok' : result.reason;
}

test('a valid key yields the api-key principal with the key\'s own rate plan', async () => {
  const { store, verifier } = setup();
  const { key, record } = await store.create({ name: 'a', models: ['iris'], ratePerSec: 5, burst: 20 });
  const result = await verifier.verify(key);
  assert.ok(result.ok);
  assert.deepEqual(result.principal, { subject: `key:${record.id}`, kind: 'api-key', models: ['iris'], plan: { ratePerSec: 5, burst: 20 } });
  assert.equal(result.keyId, record.id);
});

test('plan: rate without burst gets burst ⌈rate⌉; no rate → the named plan, or undefined', async () => {
  const { store, verifier } = setup();
  const plan = async (input: Partial<CreateKeyInput>): Promise<unknown> => {
    const result = await verifier.verify((await store.create({ name: 'p', models: '*', ...input })).key);
    assert.ok(result.ok);
    return result.principal.plan;
  };
  assert.deepEqual(await plan({ ratePerSec: 2.5 }), { ratePerSec: 2.5, burst: 3 });
  assert.deepEqual(await plan({ ratePerSec: 0.1 }), { ratePerSec: 0.1, burst: 1 });
  assert.equal(await plan({ plan: 'gold' }), 'gold');
  assert.equal(await plan({}), undefined);
});

test('malformed keys never reach the store', async () => {
  const { store, verifier } = setup();
  const { key } = await store.create({ name: 'a', models: '*' });
  for (const text of ['', 'nope', key.slice(0, -1), `${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`, key.replace('igk_', 'igk-')]) {
    assert.equal(reason(await verifier.verify(text)), 'malformed');
  }
  assert.equal(store.gets, 0);
  assert.equal(verifier.stats().malformed, 5);
});

test('unknown ids are cached negatively for a while, then asked again', async () => {
  const { clock, store, verifier } = setup({ cacheTtlMs: 2000, negativeCacheTtlMs: 500 });
  const { key } = generateApiKey();
  assert.equal(reason(await verifier.verify(key)), 'unknown');
  assert.equal(reason(await verifier.verify(key)), 'unknown');
  assert.equal(store.gets, 1);
  clock.ms += 501;
  assert.equal(reason(await verifier.verify(key)), 'unknown');
  assert.equal(store.gets, 2);
});

test('a wrong secret for a real id is a mismatch, whatever the key\'s state', async () => {
  const { store, verifier } = setup();
  const { record } = await store.create({ name: 'a', models: '*' });
  const forged = formatApiKey(record.id, generateApiKey().secret);
  assert.equal(reason(await verifier.verify(forged)), 'mismatch');
  await store.revoke(record.id, true);
  assert.equal(reason(await verifier.verify(forged)), 'mismatch', 'revocation is not revealed without the secret');
});

test('expiry and the rotation grace period are exact, cache or not', async () => {
  const { clock, store, verifier } = setup({ cacheTtlMs: 60_000 });
  const { key, record } = await store.create({ name: 'a', models: '*', expiresAt: clock.ms + 1000 });
  assert.equal(reason(await verifier.verify(key)), 'ok');
  clock.ms += 999;
  assert.equal(reason(await verifier.verify(key)), 'ok');
  clock.ms += 1;
  assert.equal(reason(await verifier.verify(key)), 'expired');
  assert.equal(store.gets, 1, 'judged from the cached record');

  const rotated = await store.create({ name: 'b', models: '*' });
  store.records.set(rotated.record.id, { ...rotated.record, graceUntil: clock.ms + 500 });
  assert.equal(reason(await verifier.verify(rotated.key)), 'ok');
  clock.ms += 500;
  assert.equal(reason(await verifier.verify(rotated.key)), 'expired');
  assert.ok(record);
});

test('a revocation nobody announces is seen once the cache TTL has passed', async () => {
  const { clock, store, verifier } = setup({ cacheTtlMs: 2000 });
  const { key, record } = await store.create({ name: 'a', models: '*' });
  assert.equal(reason(await verifier.verify(key)), 'ok');
  await store.revoke(record.id);
  clock.ms += 1999;
  assert.equal(reason(await verifier.verify(key)), 'ok', 'still cached');
  clock.ms += 1;
  assert.equal(reason(await verifier.verify(key)), 'revoked');
});

test('an announced revocation is seen at once; invalidate-all clears everything', async () => {
  const { store, verifier } = setup({ cacheTtlMs: 60_000 });
  const a = await store.create({ name: 'a', models: '*' });
  const b = await store.create({ name: 'b', models: '*' });
  assert.equal(reason(await verifier.verify(a.key)), 'ok');
  assert.equal(reason(await verifier.verify(b.key)), 'ok');
  await store.revoke(a.record.id, true);
  assert.equal(reason(await verifier.verify(a.key)), 'revoked');
  store.records.set(b.record.id, { ...b.record, revokedAt: 0 });
  store.hub.emit(undefined);
  assert.equal(reason(await verifier.verify(b.key)), 'revoked');
});

test('store down: uncached keys throw (fail closed), cached keys verify until their TTL', async () => {
  const { clock, store, verifier } = setup({ cacheTtlMs: 2000 });
  const cached = await store.create({ name: 'a', models: '*' });
  const uncached = await store.create({ name: 'b', models: '*' });
  assert.equal(reason(await verifier.verify(cached.key)), 'ok');
  store.down = true;
  await assert.rejects(verifier.verify(uncached.key), KeyStoreUnavailableError);
  await assert.rejects(verifier.verify(generateApiKey().key), KeyStoreUnavailableError, 'unknown ids are not assumed unknown');
  assert.equal(reason(await verifier.verify('garbage')), 'malformed', 'malformed keys need no store');
  clock.ms += 1999;
  assert.equal(reason(await verifier.verify(cached.key)), 'ok');
  clock.ms += 1;
  await assert.rejects(verifier.verify(cached.key), KeyStoreUnavailableError);
  store.down = false;
  assert.equal(reason(await verifier.verify(uncached.key)), 'ok', 'recovers with the store');
});

test('concurrent lookups of one id share one store call', async () => {
  const { store, verifier } = setup();
  const { key } = await store.create({ name: 'a', models: '*' });
  let open!: () => void;
  store.gate = new Promise((resolve) => { open = resolve; });
  const results = Array.from({ length: 20 }, () => verifier.verify(key));
  open();
  for (const result of await Promise.all(results)) assert.equal(reason(result), 'ok');
  assert.equal(store.gets, 1);
});

test('a record invalidated while its lookup was in flight is not cached', async () => {
  const { store, verifier } = setup({ cacheTtlMs: 60_000 });
  const { key, record } = await store.create({ name: 'a', models: '*' });
  let open!: () => void;
  store.gate = new Promise((resolve) => { open = resolve; });
  const pending = verifier.verify(key);
  await store.revoke(record.id, true); // announced while the old record is on its way
  store.records.set(record.id, record); // the lookup still returns the stale, live record
  open();
  assert.equal(reason(await pending), 'ok');
  store.gate = undefined;
  await store.revoke(record.id);
  assert.equal(reason(await verifier.verify(key)), 'revoked', 'asked the store again');
  assert.equal(store.gets, 2);
});

test('an invalidation of another id while a lookup is in flight does not stop it being cached', async () => {
  const { store, verifier } = setup({ cacheTtlMs: 60_000 });
  const { key } = await store.create({ name: 'a', models: '*' });
  let open!: () => void;
  store.gate = new Promise((resolve) => { open = resolve; });
  const pending = verifier.verify(key);
  store.hub.emit('someOtherId0');
  open();
  assert.equal(reason(await pending), 'ok');
  store.gate = undefined;
  await verifier.verify(key);
  assert.equal(store.gets, 1);
});

test('successful uses are touched with the current time; failures are not', async () => {
  const { clock, store, verifier } = setup();
  const { key, record } = await store.create({ name: 'a', models: '*' });
  await verifier.verify(key);
  await verifier.verify(formatApiKey(record.id, generateApiKey().secret));
  assert.deepEqual(store.touches, [[record.id, clock.ms]]);
});

test('the cache is bounded: least recently used ids are asked again', async () => {
  const { store, verifier } = setup({ maxCacheEntries: 2 });
  const keys = await Promise.all([1, 2, 3].map((n) => store.create({ name: `k${n}`, models: '*' })));
  for (const { key } of keys) await verifier.verify(key);
  assert.equal(store.gets, 3);
  await verifier.verify(keys[2]!.key);
  await verifier.verify(keys[1]!.key);
  assert.equal(store.gets, 3);
  await verifier.verify(keys[0]!.key);
  assert.equal(store.gets, 4);
});

test('close() stops listening to the store', async () => {
  const { store, verifier } = setup({ cacheTtlMs: 60_000 });
  const { key, record } = await store.create({ name: 'a', models: '*' });
  await verifier.verify(key);
  verifier.close();
  await store.revoke(record.id, true);
  assert.equal(reason(await verifier.verify(key)), 'ok', 'the cached record was not dropped');
});

test('verifyCached answers without a promise once the id is cached, and defers to verify otherwise', async () => {
  const { clock, store, verifier } = setup({ cacheTtlMs: 2000 });
  const { key, record } = await store.create({ name: 'a', models: ['iris'], ratePerSec: 5, burst: 20 });
  assert.equal(verifier.verifyCached(key), undefined, 'not cached yet: only verify can tell');
  assert.equal(store.gets, 0, 'verifyCached never asks the store');
  const first = await verifier.verify(key);
  const cached = verifier.verifyCached(key);
  assert.ok(cached !== undefined && cached.ok && first.ok);
  assert.equal(cached.principal, first.principal, 'one principal per cache entry, shared by every request');
  assert.equal(reason(verifier.verifyCached(formatApiKey(record.id, generateApiKey().secret))!), 'mismatch');
  assert.equal(reason(verifier.verifyCached('igk_nope')!), 'malformed');
  await store.revoke(record.id, true);
  assert.equal(verifier.verifyCached(key), undefined, 'an announced revocation drops the entry');
  assert.equal(reason(await verifier.verify(key)), 'revoked');
  assert.equal(reason(verifier.verifyCached(key)!), 'revoked', 'the revoked record is cached in turn');
  clock.ms += 2001;
  assert.equal(verifier.verifyCached(key), undefined, 'past the TTL the store is asked again');
  assert.equal(store.gets, 2);
});
