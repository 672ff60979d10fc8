// The Redis worker registry end to end with a real redis-server: worker/registration.ts on one side,
// gateway/upstreams/discovery/registry-discovery.ts feeding a real Pool on the other.
//   register → in the pool and admitted within 2 s;  withdraw → removed at once;
//   kill -9 of the registering process → removed within TTL + resync interval (and not before the
//   record could have expired);  Redis killed → the set stays, nothing throws;  Redis restarted
//   empty → every worker re-registers, none is dropped meanwhile, and new ones are found again.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../../shared/logger.ts';
import { registryKeys } from '../../../shared/registry/keys.ts';
import { parseRecord } from '../../../shared/registry/record.ts';
import { GatewayConfigSchema } from '../../../gateway/config/schema.ts';
import { Pool } from '../../../gateway/upstreams/pool.ts';
import { RegistryDiscovery, type RegistryDiscoveryOptions } from '../../../gateway/upstreams/discovery/registry-discovery.ts';
import { WorkerRegistration, type WorkerRegistrationOptions } from '../../../worker/registration.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { REPO_ROOT, startWorker, waitFor } from '../../helpers/processes.ts';
import { skipUnlessControllable, startRedis } from '../../helpers/redis.ts';
import { irisRepository } from '../gateway/support.ts';

const KEYS = registryKeys();
let ids = 0;
/** Unique per test run, so an external REDIS_URL shared with other runs is not confused. */
const uniqueId = (name: string): string => `${name}-${process.pid}-${++ids}`;

function makePool(t: TestContext, health: object = {}): Pool {
  const pool = new Pool(GatewayConfigSchema.parse({ health }), { logger: silentLogger(), now: () => performance.now() });
  t.after(() => pool.close());
  return pool;
}

async function startDiscovery(t: TestContext, options: Omit<RegistryDiscoveryOptions, 'logger'>): Promise<RegistryDiscovery> {
  const discovery = new RegistryDiscovery({ logger: silentLogger(), ...options });
  t.after(() => discovery.stop());
  await discovery.start();
  return discovery;
}

function registration(t: TestContext, options: Omit<WorkerRegistrationOptions, 'logger' | 'version' | 'describe'> & Partial<WorkerRegistrationOptions>): WorkerRegistration {
  const r = new WorkerRegistration({ logger: silentLogger(), version: 'test', describe: () => ({ models: { echo: ['1'] }, capacity: 2 }), ...options });
  t.after(() => r.withdraw());
  return r;
}

/** Polls `check` every 5 ms; resolves with the ms it took, throws after `timeoutMs`. */
async function timeUntil(check: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  await waitFor(check, timeoutMs, 5);
  return performance.now() - t0;
}

test('a real worker registered is in the pool and admitted within 2 s; withdrawn, it leaves at once', async (t) => {
  const redis = await startRedis(t);
  const worker = await startWorker(t, await irisRepository(t));
  const pool = makePool(t); // default health settings: the first check runs as the worker is added
  await startDiscovery(t, { pool, redisUrl: redis.url });
  const id = uniqueId('iris-worker');
  const reg = registration(t, { redisUrl: redis.url, workerId: id, advertiseUrl: worker.url, describe: () => ({ models: { iris: ['1'] }, capacity: 4 }) });

  const t0 = performance.now();
  await reg.start();
  assert.equal(reg.state, 'registered');
  await waitFor(() => pool.get(worker.url)?.ready === true, 2000, 5);
  const admittedMs = performance.now() - t0;
  t.diagnostic(`registered → admitted in ${admittedMs.toFixed(0)} ms`);
  assert.ok(admittedMs < 2000);
  assert.equal(pool.get(worker.url)?.source, 'registry');
  assert.equal(pool.candidates('iris', undefined, new Set()).length, 1);

  // The record as Redis holds it: TTL'd, indexed.
  const client = redis.client();
  const stored = parseRecord(await client.get(KEYS.record(id)));
  assert.deepEqual(stored && { id: stored.id, url: stored.url, models: stored.models, capacity: stored.capacity }, { id, url: worker.url, models: { iris: ['1'] }, capacity: 4 });
  const pttl = await client.pttl(KEYS.record(id));
  assert.ok(pttl > 0 && pttl <= 6000, `PTTL ${pttl}`);
  assert.notEqual(await client.zscore(KEYS.index, id), null);

  const removedMs = await (async () => {
    const t1 = performance.now();
    await reg.withdraw();
    await waitFor(() => pool.get(worker.url) === undefined, 1000, 2);
    return performance.now() - t1;
  })();
  t.diagnostic(`withdraw → removed in ${removedMs.toFixed(0)} ms`);
  assert.ok(removedMs < 500);
  assert.equal(await client.exists(KEYS.record(id)), 0);
  assert.equal(await client.zscore(KEYS.index, id), null);
});

test('kill -9 of a registered worker: removed within TTL + resync, not before its record expires', async (t) => {
  const redis = await startRedis(t);
  const upstream = await startFaultUpstream(t);
  const pool = makePool(t);
  // Production defaults: TTL 6 s, heartbeat 2 s, resync 1 s.
  const ttlMs = 6000;
  const heartbeatMs = 2000;
  const resyncMs = 1000;
  await startDiscovery(t, { pool, redisUrl: redis.url, resyncMs, ttlMs });
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./register-child.ts', import.meta.url))], {
    cwd: REPO_ROOT,
    env: { ...process.env, REDIS_URL: redis.url, WORKER_ID: uniqueId('doomed'), ADVERTISE_URL: upstream.url, HEARTBEAT_MS: String(heartbeatMs), TTL_MS: String(ttlMs) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => child.kill('SIGKILL'));
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  assert.deepEqual(JSON.parse(line), { registered: true });
  await waitFor(() => pool.get(upstream.url)?.ready === true, 2000, 5);

  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
  const goneMs = await timeUntil(() => pool.get(upstream.url) === undefined, ttlMs + resyncMs + 1000);
  t.diagnostic(`kill -9 → removed in ${goneMs.toFixed(0)} ms (TTL ${ttlMs}, heartbeat ${heartbeatMs}, resync ${resyncMs})`);
  // The last heartbeat was at most one period before the kill, so the record outlives the kill by
  // TTL - heartbeat at least; the next resync after its expiry removes it.
  assert.ok(goneMs >= ttlMs - heartbeatMs - 100, `removed too early (${goneMs.toFixed(0)} ms): something other than the TTL removed it`);
  assert.ok(goneMs <= ttlMs + resyncMs + 250, `removed after ${goneMs.toFixed(0)} ms`);
});

test('Redis killed: the gateway keeps its set and nothing throws; Redis back (empty): workers re-register, none dropped meanwhile', async (t) => {
  const redis = await startRedis(t, { spawn: true });
  if (skipUnlessControllable(t, redis)) return;
  const [u1, u2, u3] = await Promise.all([startFaultUpstream(t), startFaultUpstream(t), startFaultUpstream(t)]);
  const pool = makePool(t, { intervalMs: 200 });
  const ttlMs = 1500;
  const heartbeatMs = 500;
  await startDiscovery(t, { pool, redisUrl: redis.url, resyncMs: 250, ttlMs });
  const r1 = registration(t, { redisUrl: redis.url, workerId: uniqueId('w1'), advertiseUrl: u1.url, heartbeatMs, ttlMs });
  const r2 = registration(t, { redisUrl: redis.url, workerId: uniqueId('w2'), advertiseUrl: u2.url, heartbeatMs, ttlMs });
  await Promise.all([r1.start(), r2.start()]);
  await waitFor(() => [u1, u2].every((u) => pool.get(u.url)?.ready === true), 2000, 5);

  // Watch the pool for the rest of the test: neither registered worker may drop out.
  let dropped = '';
  const watch = setInterval(() => {
    for (const u of [u1, u2]) if (pool.get(u.url) === undefined) dropped ||= u.url;
  }, 5);
  t.after(() => clearInterval(watch));

  await redis.kill();
  await sleep(3 * ttlMs); // far past every TTL: resyncs and heartbeats fail all along
  assert.equal(r1.state, 'failing');
  assert.deepEqual(pool.list().map((u) => u.url.origin).sort(), [u1.url, u2.url].sort(), 'the set is kept while Redis is down');
  // A worker starting while Redis is down: start() resolves, nothing throws.
  const r3 = registration(t, { redisUrl: redis.url, workerId: uniqueId('w3'), advertiseUrl: u3.url, heartbeatMs, ttlMs, waitMs: 200 });
  await r3.start();
  assert.equal(r3.state, 'failing');
  assert.equal(pool.get(u3.url), undefined);

  const t0 = performance.now();
  await redis.restart(); // same port, no data
  const foundMs = await timeUntil(() => pool.get(u3.url)?.ready === true, 5000);
  t.diagnostic(`Redis restarted → worker registered during the outage admitted in ${foundMs.toFixed(0)} ms`);
  // Reconnection backoff is capped at 1 s on both sides, then a join or a resync: well under 2.5 s.
  assert.ok(performance.now() - t0 < 2500);
  await waitFor(() => r1.state === 'registered' && r2.state === 'registered', 2000, 10);
  const client = redis.client();
  assert.equal(await client.zcard(KEYS.index), 3, 'every worker re-registered in the restarted Redis');
  await sleep(ttlMs + 500); // past the hold: snapshots remove again, and all three are registered
  assert.equal(dropped, '', `${dropped} was dropped while Redis was down or empty`);
  assert.equal(pool.list().length, 3);

  // Removal works again after the outage.
  await r2.withdraw();
  await waitFor(() => pool.get(u2.url) === undefined, 1000, 5);
});

test('combined with a static list: a registered URL the pool knows statically stays static and stays after withdrawal', async (t) => {
  const redis = await startRedis(t);
  const upstream = await startFaultUpstream(t);
  const pool = makePool(t);
  pool.add(upstream.url, { source: 'static' });
  const discovery = await startDiscovery(t, { pool, redisUrl: redis.url });
  const reg = registration(t, { redisUrl: redis.url, workerId: uniqueId('static-too'), advertiseUrl: `${upstream.url}/` });
  await reg.start();
  await waitFor(() => discovery.records().some((r) => r.url === upstream.url), 2000, 5);
  assert.equal(pool.list().length, 1);
  assert.equal(pool.get(upstream.url)?.source, 'static');
  await reg.withdraw();
  await waitFor(() => discovery.records().length === 0, 1000, 5);
  await discovery.resync();
  assert.equal(pool.get(upstream.url)?.source, 'static');
});

test('a second gateway starting later finds already-registered workers by its first snapshot', async (t) => {
  const redis = await startRedis(t);
  const [u1, u2] = await Promise.all([startFaultUpstream(t), startFaultUpstream(t)]);
  await Promise.all([u1, u2].map((u, i) => registration(t, { redisUrl: redis.url, workerId: uniqueId(`early-${i}`), advertiseUrl: u.url }).start()));
  const pool = makePool(t);
  await startDiscovery(t, { pool, redisUrl: redis.url });
  assert.deepEqual(pool.list().map((u) => u.url.origin).sort(), [u1.url, u2.url].sort());
});

test('heartbeats: one join per registration, the record follows describe(), one leave on withdrawal', async (t) => {
  const redis = await startRedis(t);
  const listener = redis.client();
  const messages: string[] = [];
  listener.on('message', (_channel: string, text: string) => messages.push(JSON.parse(text).type as string));
  await listener.subscribe(KEYS.channel);
  let models: Record<string, string[]> = { iris: ['1'] };
  const id = uniqueId('beating');
  const reg = registration(t, { redisUrl: redis.url, workerId: id, advertiseUrl: 'http://10.9.9.9:9001', heartbeatMs: 150, ttlMs: 450, describe: () => ({ models, capacity: 3 }) });
  await reg.start();
  await sleep(600); // four more heartbeats
  assert.deepEqual(messages, ['join']);
  models = { iris: ['1', '2'], mnist: ['1'] };
  const client = redis.client();
  await waitFor(async () => parseRecord(await client.get(KEYS.record(id)))?.models.mnist !== undefined, 1000, 20);
  // Expired behind the worker's back (as after a Redis restart without data): the next beat re-joins.
  await client.del(KEYS.record(id));
  await waitFor(() => messages.length === 2, 1000, 10);
  await reg.withdraw();
  await waitFor(() => messages.length === 3, 1000, 10);
  assert.deepEqual(messages, ['join', 'join', 'leave']);
  assert.equal(await client.exists(KEYS.record(id)), 0);
});

test('registration options are checked when built', () => {
  const base = { redisUrl: 'redis://127.0.0.1:1', logger: silentLogger(), version: 'test', describe: () => ({ models: {}, capacity: 1 }) };
  assert.throws(() => new WorkerRegistration({ ...base, workerId: 'has space', advertiseUrl: 'http://10.0.0.1:9001' }), /worker id/);
  assert.throws(() => new WorkerRegistration({ ...base, workerId: 'w', advertiseUrl: 'http://0.0.0.0:9001' }), /no reachable host/);
  assert.throws(() => new WorkerRegistration({ ...base, workerId: 'w', advertiseUrl: 'not a url' }), /not an http/);
  assert.throws(() => new WorkerRegistration({ ...base, workerId: 'w', advertiseUrl: 'http://10.0.0.1:9001', heartbeatMs: 2000, ttlMs: 3000 }), /twice/);
});
