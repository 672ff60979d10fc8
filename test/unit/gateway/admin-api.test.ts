// The admin API built in-process (buildGateway, no listening socket) and driven with supertest:
// authentication, strategy changes, worker management and API keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { buildGateway } from '../../../gateway/app.ts';
import { openFileKeyStore } from '../../../gateway/auth/file-key-store.ts';
import { parseGatewayConfig } from '../../../gateway/config/load.ts';
import { MemoryLimiter } from '../../../gateway/throttle/memory-limiter.ts';
import { silentLogger } from '../../../shared/logger.ts';

const TOKEN = 'admin-token-for-unit-tests-0123';

test('admin API', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-admin-'));
  const keyStore = await openFileKeyStore({ path: join(dir, 'keys.json'), watchIntervalMs: false });
  // A Redis address with a password: the config view must mask it (nothing connects to it here).
  const config = parseGatewayConfig({ balancing: { strategy: 'round-robin' }, health: { intervalMs: 60_000 }, redis: { url: 'redis://probe:hunter2-redis-pw@127.0.0.1:1' } }, 'test');
  const gateway = buildGateway(config, { logger: silentLogger(), now: () => performance.now(), rng: Math.random, adminToken: TOKEN, keyStore, limiter: new MemoryLimiter() });
  t.after(async () => {
    gateway.close();
    await keyStore.close();
    await rm(dir, { recursive: true, force: true });
  });
  const admin = (): request.Agent => request.agent(gateway.handleAdmin).set('authorization', `Bearer ${TOKEN}`);

  await t.test('every route needs the admin token, compared in full', async () => {
    const none = await request(gateway.handleAdmin).get('/admin/workers');
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'GW_ERR_ADMIN_UNAUTHORIZED');
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="infergate-admin"');
    const wrong = await request(gateway.handleAdmin).get('/admin/workers').set('authorization', `Bearer ${TOKEN}x`);
    assert.equal(wrong.status, 401);
    assert.match(wrong.headers['www-authenticate'] ?? '', /invalid_token/);
  });

  await t.test('strategy: get, switch, refuse an unknown name and keep the old one', async () => {
    assert.equal((await admin().get('/admin/strategy')).body.strategy, 'round-robin');
    const switched = await admin().put('/admin/strategy').send({ strategy: 'peak-ewma' });
    assert.equal(switched.status, 200);
    assert.equal(gateway.strategy, 'peak-ewma');
    const unknown = await admin().put('/admin/strategy').send({ strategy: 'fastest' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.code, 'ERR_BAD_REQUEST');
    assert.equal(gateway.strategy, 'peak-ewma');
    const extra = await admin().put('/admin/strategy').send({ strategy: 'p2c', force: true });
    assert.equal(extra.status, 400, 'unknown keys are refused');
  });

  await t.test('workers: add (dedupe by URL: 409), drain, remove', async () => {
    const added = await admin().post('/admin/workers').send({ url: 'http://127.0.0.1:1/', weight: 2 });
    assert.equal(added.status, 201);
    assert.equal(added.body.url, 'http://127.0.0.1:1');
    assert.equal((await admin().post('/admin/workers').send({ url: 'http://127.0.0.1:1' })).status, 409);
    const drained = await admin().post(`/admin/workers/${added.body.id}/drain`);
    assert.equal(drained.body.draining, true);
    assert.equal((await admin().delete(`/admin/workers/${added.body.id}`)).status, 204);
    assert.equal((await admin().get('/admin/workers')).body.workers.length, 0);
    assert.equal((await admin().delete('/admin/workers/w-nope')).status, 404);
  });

  await t.test('keys: create shows the key once; list never shows digests; revoke', async () => {
    const created = await admin().post('/admin/keys').send({ name: 'unit', models: ['iris'], ratePerSec: 5, burst: 10 });
    assert.equal(created.status, 201);
    assert.match(created.body.key, /^igk_/);
    const listed = await admin().get('/admin/keys');
    assert.equal(listed.body.keys.length, 1);
    assert.equal(listed.body.keys[0].digest, undefined);
    assert.ok(!JSON.stringify(listed.body).includes(created.body.key), 'the secret is never listed');
    const revoked = await admin().delete(`/admin/keys/${created.body.record.id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revokedAt > 0);
    assert.equal((await admin().post('/admin/keys').send({ name: '' })).status, 400);
    // What the schema lets through but the key store refuses: still the client's mistake.
    for (const body of [{ name: 'x', burst: 5 }, { name: '   ' }, { name: 'x', plan: '' }]) {
      const res = await admin().post('/admin/keys').send(body);
      assert.deepEqual([res.status, res.body.code], [400, 'ERR_BAD_REQUEST'], JSON.stringify(body));
      assert.equal(typeof res.body.error, 'string');
    }
    const everything = await admin().post('/admin/keys').send({ name: 'all', models: ['*'] });
    assert.equal(everything.status, 201);
    assert.equal(everything.body.record.models, '*', '["*"] is every model, not a model named "*"');
  });

  await t.test('config: effective configuration with the admin token masked', async () => {
    const res = await admin().get('/admin/config');
    assert.equal(res.status, 200);
    assert.equal(res.body.balancing.strategy, 'round-robin', 'the configuration, not the live strategy');
    assert.ok(!JSON.stringify(res.body).includes(TOKEN));
    assert.ok(!JSON.stringify(res.body).includes('hunter2-redis-pw'), 'a password inside an address is masked too');
    assert.equal(res.body.redis.url, 'redis://probe:***@127.0.0.1:1', 'the rest of the address stays readable');
  });
});
