/**
 * The one conformance suite every KeyStore passes (run by key-store.test.ts against the file and the
 * Redis store): lifecycle, what is stored, and how the verifier in front of it sees changes.
 *
 * A backend opens a store on a manual clock, a *peer* on the same data (another gateway replica or
 * the `infergate keys` CLI, as far as the store can tell) and shows its raw storage, so the suite can
 * check that no secret is ever written.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { digest, parseApiKey } from '../../../gateway/auth/api-key.ts';
import { KeyStateError, type KeyStore } from '../../../gateway/auth/key-store.ts';
import { createApiKeyVerifier, type ApiKeyVerification } from '../../../gateway/auth/key-verifier.ts';

export interface Clock {
  ms: number;
}

export interface OpenedBackend {
  store: KeyStore;
  /** Another store instance on the same data, e.g. a second replica or the CLI. Closed by the backend. */
  openPeer(): Promise<KeyStore>;
  /** Everything the backend has written, as text (file contents, or every Redis key and value). */
  rawContents(): Promise<string>;
  /** Closes `store` and opens it again on the same data (touches are flushed on close). */
  reopen(): Promise<KeyStore>;
}

export interface KeyStoreBackend {
  name: string;
  /** Opens a fresh, empty store for one test; everything is cleaned up through `t`. */
  open(t: TestContext, clock: Clock): Promise<OpenedBackend>;
}

const START = Date.UTC(2030, 0, 1);

function reason(result: ApiKeyVerification): string {
  return result.ok ? 'ok' : result.reason;
}

/** Polls `check` in real time until it is true or `timeoutMs` passes; returns the time it took. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The store as a verifier sees it, minus the invalidation hook: only the cache TTL bounds staleness. */
function withoutInvalidation(store: KeyStore): KeyStore {
  return {
    create: (input) => store.create(input),
    get: (id) => store.get(id),
    list: () => store.list(),
    revoke: (id) => store.revoke(id),
    rotate: (id, graceMs) => store.rotate(id, graceMs),
    touch: (id, now) => store.touch(id, now),
    onInvalidate: () => () => {},
    close: () => store.close(),
  };
}

export function keyStoreConformance(backend: KeyStoreBackend): void {
  describe(`KeyStore conformance: ${backend.name}`, () => {
    const open = async (t: TestContext): Promise<OpenedBackend & { clock: Clock }> => {
      const clock = { ms: START };
      return { clock, ...(await backend.open(t, clock)) };
    };

    test('create returns the key once; get and list return the record, which holds only the digest', async (t) => {
      const { store, clock } = await open(t);
      const { record, key } = await store.create({ name: 'ci', models: ['iris', 'mnist'], ratePerSec: 5, burst: 10, plan: 'gold' });
      const parsed = parseApiKey(key);
      assert.ok(parsed, 'the key has the documented format');
      assert.equal(record.id, parsed.id);
      assert.equal(record.digest, digest(parsed.secret));
      assert.equal(record.displayPrefix, `igk_${parsed.id}_${parsed.secret.slice(0, 4)}`);
      assert.deepEqual(
        { name: record.name, models: record.models, ratePerSec: record.ratePerSec, burst: record.burst, plan: record.plan, createdAt: record.createdAt },
        { name: 'ci', models: ['iris', 'mnist'], ratePerSec: 5, burst: 10, plan: 'gold', createdAt: clock.ms },
      );
      assert.equal(record.revokedAt, undefined);
      assert.deepEqual(await store.get(record.id), record);
      clock.ms += 1;
      const all = await store.create({ name: 'all', models: '*' });
      assert.deepEqual(await store.get(all.record.id), all.record);
      assert.deepEqual((await store.list()).map((r) => r.id), [record.id, all.record.id], 'oldest first');
      assert.equal(await store.get('000000000000'), undefined);
    });

    test('create refuses bad input', async (t) => {
      const { store } = await open(t);
      for (const input of [
        { name: '', models: '*' as const },
        { name: 'x', models: [''] },
        { name: 'x', models: '*' as const, ratePerSec: 0 },
        { name: 'x', models: '*' as const, ratePerSec: 1, burst: 0.5 },
        { name: 'x', models: '*' as const, burst: 5 },
      ]) {
        await assert.rejects(store.create(input), TypeError, JSON.stringify(input));
      }
      assert.deepEqual(await store.list(), []);
    });

    test('no secret and no key is ever written; the digest is', async (t) => {
      await assertNoSecretsWritten(await open(t));
    });

    test('revoke marks the key (idempotently); unknown ids are undefined', async (t) => {
      const { store, clock } = await open(t);
      const { record } = await store.create({ name: 'a', models: '*' });
      clock.ms += 1000;
      const revoked = await store.revoke(record.id);
      assert.equal(revoked?.revokedAt, clock.ms);
      clock.ms += 1000;
      assert.equal((await store.revoke(record.id))?.revokedAt, clock.ms - 1000, 'the first revocation time stays');
      assert.equal((await store.get(record.id))?.revokedAt, clock.ms - 1000);
      assert.equal(await store.revoke('000000000000'), undefined);
      assert.equal((await store.list()).length, 1, 'revoked keys stay listed');
    });

    test('rotate: a new key at once, the old one valid for the grace period, then expired', async (t) => {
      const { store, clock } = await open(t);
      const old = await store.create({ name: 'svc', models: ['iris'], ratePerSec: 3, burst: 6 });
      const verifier = createApiKeyVerifier(store, { now: () => clock.ms });
      t.after(() => verifier.close());
      clock.ms += 10;
      const rotated = await store.rotate(old.record.id, 60_000);
      assert.ok(rotated);
      assert.notEqual(rotated.record.id, old.record.id);
      assert.deepEqual(
        { name: rotated.record.name, models: rotated.record.models, ratePerSec: rotated.record.ratePerSec, burst: rotated.record.burst, rotatedFrom: rotated.record.rotatedFrom },
        { name: 'svc', models: ['iris'], ratePerSec: 3, burst: 6, rotatedFrom: old.record.id },
      );
      const oldNow = await store.get(old.record.id);
      assert.equal(oldNow?.graceUntil, clock.ms + 60_000);
      assert.equal(oldNow?.replacedBy, rotated.record.id);
      assert.equal(reason(await verifier.verify(rotated.key)), 'ok');
      assert.equal(reason(await verifier.verify(old.key)), 'ok');
      clock.ms += 59_999;
      assert.equal(reason(await verifier.verify(old.key)), 'ok');
      clock.ms += 1;
      assert.equal(reason(await verifier.verify(old.key)), 'expired');
      assert.equal(reason(await verifier.verify(rotated.key)), 'ok');

      await assert.rejects(store.rotate(old.record.id, 1000), KeyStateError, 'a rotated-out key cannot be rotated again');
      assert.equal(await store.rotate('000000000000', 1000), undefined);
      await store.revoke(rotated.record.id);
      await assert.rejects(store.rotate(rotated.record.id, 1000), KeyStateError, 'nor a revoked one');
    });

    test('rotate with no grace ends the old key at once', async (t) => {
      const { store, clock } = await open(t);
      const old = await store.create({ name: 'svc', models: '*' });
      const verifier = createApiKeyVerifier(store, { now: () => clock.ms });
      t.after(() => verifier.close());
      const rotated = await store.rotate(old.record.id, 0);
      assert.ok(rotated);
      assert.equal(reason(await verifier.verify(old.key)), 'expired');
      assert.equal(reason(await verifier.verify(rotated.key)), 'ok');
    });

    test('a key with an expiry works until then, and is listed as expired after', async (t) => {
      const { store, clock } = await open(t);
      const { key, record } = await store.create({ name: 'temp', models: '*', expiresAt: clock.ms + 30 * 86_400_000 });
      const verifier = createApiKeyVerifier(store, { now: () => clock.ms });
      t.after(() => verifier.close());
      assert.equal(reason(await verifier.verify(key)), 'ok');
      clock.ms += 30 * 86_400_000 - 1;
      assert.equal(reason(await verifier.verify(key)), 'ok');
      clock.ms += 1;
      assert.equal(reason(await verifier.verify(key)), 'expired');
      assert.equal((await store.get(record.id))?.expiresAt, START + 30 * 86_400_000);
      await assert.rejects(store.rotate(record.id, 1000), KeyStateError, 'an expired key cannot be rotated');
    });

    test('touch records the latest use (batched); older times and unknown ids change nothing', async (t) => {
      const backend = await open(t);
      const { record } = await backend.store.create({ name: 'a', models: '*' });
      backend.store.touch(record.id, START + 5000);
      backend.store.touch(record.id, START + 4000);
      backend.store.touch('000000000000', START + 5000);
      const store = await backend.reopen();
      assert.equal((await store.get(record.id))?.lastUsedAt, START + 5000);
      assert.equal(await store.get('000000000000'), undefined, 'touch never creates a record');
      store.touch(record.id, START + 3000);
      const again = await backend.reopen();
      assert.equal((await again.get(record.id))?.lastUsedAt, START + 5000);
    });

    test('the verifier touches keys it accepts', async (t) => {
      const backend = await open(t);
      const { key, record } = await backend.store.create({ name: 'a', models: '*' });
      const verifier = createApiKeyVerifier(backend.store, { now: () => backend.clock.ms });
      backend.clock.ms += 777;
      assert.equal(reason(await verifier.verify(key)), 'ok');
      verifier.close();
      const store = await backend.reopen();
      assert.equal((await store.get(record.id))?.lastUsedAt, START + 777);
    });

    test('the verifier sees a revocation within its cache TTL, even with no invalidation', async (t) => {
      const { store, clock } = await open(t);
      const { key, record } = await store.create({ name: 'a', models: '*' });
      const verifier = createApiKeyVerifier(withoutInvalidation(store), { now: () => clock.ms, cacheTtlMs: 2000 });
      assert.equal(reason(await verifier.verify(key)), 'ok');
      await store.revoke(record.id);
      clock.ms += 1999;
      assert.equal(reason(await verifier.verify(key)), 'ok', 'cached, as allowed');
      clock.ms += 1;
      assert.equal(reason(await verifier.verify(key)), 'revoked');
    });

    test('the verifier sees a revocation by this store at once, through the invalidation hook', async (t) => {
      const { store, clock } = await open(t);
      const { key, record } = await store.create({ name: 'a', models: '*' });
      const verifier = createApiKeyVerifier(store, { now: () => clock.ms, cacheTtlMs: 3_600_000 });
      t.after(() => verifier.close());
      assert.equal(reason(await verifier.verify(key)), 'ok');
      await store.revoke(record.id);
      assert.equal(reason(await verifier.verify(key)), 'revoked');
    });

    test('the verifier sees a revocation by a peer (another replica, the CLI) within about a second, with the clock stopped', async (t) => {
      const { store, clock, openPeer } = await open(t);
      const peer = await openPeer();
      const { key, record } = await store.create({ name: 'a', models: '*' });
      // The cache TTL is an hour of a stopped clock: only the invalidation can explain seeing the change.
      const verifier = createApiKeyVerifier(store, { now: () => clock.ms, cacheTtlMs: 3_600_000 });
      t.after(() => verifier.close());
      assert.equal(reason(await verifier.verify(key)), 'ok');
      await peer.revoke(record.id);
      const took = await eventually(async () => reason(await verifier.verify(key)) === 'revoked', 3000);
      assert.ok(took < 2000, `seen after ${Math.round(took)} ms`);
      // And a key the peer creates is usable here without waiting for a negative-cache entry to lapse.
      const fresh = await peer.create({ name: 'b', models: '*' });
      await eventually(async () => reason(await verifier.verify(fresh.key)) === 'ok', 3000);
    });

    test('list shows every state; records round-trip exactly', async (t) => {
      const { store, clock, openPeer } = await open(t);
      const a = await store.create({ name: 'a', models: '*', expiresAt: START + 5 });
      clock.ms += 1;
      const b = await store.create({ name: 'b', models: ['x'] });
      clock.ms += 1;
      const c = await store.create({ name: 'c', models: ['y', 'z'], ratePerSec: 0.5 });
      await store.revoke(b.record.id);
      const peer = await openPeer();
      assert.deepEqual(await peer.list(), await store.list());
      assert.deepEqual((await peer.list()).map((r) => r.name), ['a', 'b', 'c']);
      assert.deepEqual(await peer.get(c.record.id), c.record);
      assert.deepEqual(await peer.get(a.record.id), a.record);
    });
  });
}

/** Creates and rotates keys, then searches everything written for any part of a secret. */
async function assertNoSecretsWritten(backend: OpenedBackend): Promise<void> {
  const created = await Promise.all([1, 2, 3].map((n) => backend.store.create({ name: `k${n}`, models: '*' })));
  const rotated = await backend.store.rotate(created[0]!.record.id, 60_000);
  assert.ok(rotated);
  const raw = await backend.rawContents();
  for (const { key, record } of [...created, rotated]) {
    const { secret } = parseApiKey(key)!;
    assert.ok(!raw.includes(secret), 'a secret was written');
    assert.ok(!raw.includes(key), 'a key was written');
    assert.ok(!raw.includes(secret.slice(4, 20)), 'part of a secret was written');
    assert.ok(raw.includes(record.digest), 'the digest is stored');
  }
}
