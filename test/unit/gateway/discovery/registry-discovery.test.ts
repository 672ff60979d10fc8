// Registry discovery on a fake feed and a fake pool: joins and leaves act at once, resyncs catch
// what messages missed, a message newer than a snapshot wins over it, an unreachable registry keeps
// the current set, and after a reconnection snapshots only add for one TTL.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../../../shared/logger.ts';
import { DiscoveryMembership } from '../../../../gateway/upstreams/discovery/membership.ts';
import { RegistryDiscovery, type RegistryDiscoveryOptions } from '../../../../gateway/upstreams/discovery/registry-discovery.ts';
import { FakeFeed, FakePool, record } from './fakes.ts';

const A = 'http://10.0.0.1:9001';
const B = 'http://10.0.0.2:9001';

async function setup(t: TestContext, options: Partial<RegistryDiscoveryOptions> = {}) {
  const pool = options.pool instanceof FakePool ? options.pool : new FakePool();
  const feed = new FakeFeed();
  const clock = { now: 0 };
  // A resync period far beyond the test: resyncs run when the test calls them.
  const discovery = new RegistryDiscovery({ pool, feed, logger: silentLogger(), resyncMs: 3_600_000, ttlMs: 6000, now: () => clock.now, ...options });
  t.after(() => discovery.stop());
  return { pool, feed, clock, discovery };
}

test('start subscribes and adds every registered worker', async (t) => {
  const { pool, feed, discovery } = await setup(t);
  feed.join(record('w1', A), false);
  feed.join(record('w2', B), false);
  await discovery.start();
  assert.ok(feed.handlers !== undefined);
  assert.deepEqual(pool.urls(), [A, B]);
  assert.equal(pool.entries.get(A)?.source, 'registry');
  assert.deepEqual(discovery.records().map((r) => r.id).sort(), ['w1', 'w2']);
});

test('a join adds the worker and a leave removes it at once, without waiting for a resync', async (t) => {
  const { pool, feed, discovery } = await setup(t);
  await discovery.start();
  const before = feed.snapshots;
  feed.join(record('w1', A));
  assert.deepEqual(pool.urls(), [A]);
  feed.leave('w1');
  assert.deepEqual(pool.urls(), []);
  assert.equal(feed.snapshots, before, 'no snapshot was needed');
});

test('a resync removes a worker whose record expired (no leave) and adds one whose join was missed', async (t) => {
  const { pool, feed, discovery } = await setup(t);
  feed.join(record('w1', A), false);
  await discovery.start();
  feed.leave('w1', false); // kill -9: the record expires, nobody publishes
  feed.join(record('w2', B), false); // a join lost while the subscription was down
  assert.equal(await discovery.resync(), true);
  assert.deepEqual(pool.urls(), [B]);
});

test('a leave arriving during a snapshot read before the DEL is not undone by that snapshot', async (t) => {
  const { pool, feed, discovery } = await setup(t);
  feed.join(record('w1', A), false);
  await discovery.start();
  let open!: () => void;
  feed.gate = new Promise((r) => (open = r));
  const resync = discovery.resync(); // the snapshot has read w1...
  feed.leave('w1'); // ...then w1 withdraws
  open();
  await resync;
  assert.deepEqual(pool.urls(), [], 'the leave is newer than the snapshot');
  // A join during a snapshot that did not yet contain it survives too.
  feed.gate = new Promise((r) => (open = r));
  const second = discovery.resync();
  feed.join(record('w2', B));
  open();
  await second;
  assert.deepEqual(pool.urls(), [B]);
  // And the next snapshot decides normally again.
  feed.leave('w2', false);
  await discovery.resync();
  assert.deepEqual(pool.urls(), []);
});

test('an unreachable registry keeps the current set; when back, snapshots only add for one TTL', async (t) => {
  const { pool, feed, clock, discovery } = await setup(t);
  feed.join(record('w1', A), false);
  feed.join(record('w2', B), false);
  await discovery.start();
  feed.down = true;
  assert.equal(await discovery.resync(), false);
  assert.deepEqual(pool.urls(), [A, B], 'Redis down: nothing removed');
  // Redis restarts empty; w2 re-registers at once, w1 not yet.
  feed.records.clear();
  feed.down = false;
  feed.join(record('w2', B), false);
  clock.now = 1000;
  assert.equal(await discovery.resync(), true);
  assert.equal(discovery.holdingRemovals, true);
  assert.deepEqual(pool.urls(), [A, B], 'w1 may still be re-registering');
  clock.now = 1000 + 6000; // one TTL later every live worker has re-registered
  await discovery.resync();
  assert.deepEqual(pool.urls(), [B]);
});

test('a reconnection reported by the feed holds removals and resyncs', async (t) => {
  const { pool, feed, clock, discovery } = await setup(t);
  feed.join(record('w1', A), false);
  await discovery.start();
  feed.records.clear();
  clock.now = 10;
  const snapshots = feed.snapshots;
  feed.handlers!.reconnected();
  await discovery.resync();
  assert.ok(feed.snapshots > snapshots);
  assert.deepEqual(pool.urls(), [A]);
  clock.now = 10 + 6000;
  await discovery.resync();
  assert.deepEqual(pool.urls(), []);
});

test('leave messages are honoured while removals are held', async (t) => {
  const { pool, feed, discovery } = await setup(t);
  feed.join(record('w1', A), false);
  await discovery.start();
  feed.handlers!.reconnected();
  feed.leave('w1');
  assert.deepEqual(pool.urls(), []);
});

test('a stale leave naming another URL does not remove a re-registration', async (t) => {
  const { pool, feed, discovery } = await setup(t);
  await discovery.start();
  feed.join(record('w1', B));
  feed.send({ type: 'leave', id: 'w1', url: A });
  assert.deepEqual(pool.urls(), [B]);
});

test('static and admin workers are never added again nor removed by the registry', async (t) => {
  const pool = new FakePool();
  pool.add(A, { source: 'static' });
  pool.add(B, { source: 'admin' });
  const { feed, discovery } = await setup(t, { pool });
  await discovery.start();
  feed.join(record('w1', A));
  feed.join(record('w2', B));
  feed.leave('w1');
  feed.leave('w2');
  await discovery.resync();
  assert.deepEqual(pool.urls(), [A, B]);
  assert.deepEqual(pool.log, [`+${A} static`, `+${B} admin`]);
});

test('two ids at one URL (a restart within the TTL) keep it until both are gone', async (t) => {
  const { pool, feed, discovery } = await setup(t);
  await discovery.start();
  feed.join(record('old', A));
  feed.join(record('new', A));
  feed.leave('old', false); // the old record expires
  await discovery.resync();
  assert.deepEqual(pool.urls(), [A]);
  feed.leave('new');
  assert.deepEqual(pool.urls(), []);
});

test('weightOf sets the pool weight; a bad weight falls back to 1', async (t) => {
  const { pool, feed, discovery } = await setup(t, { weightOf: (r) => (r.id === 'bad' ? Number.NaN : r.capacity) });
  await discovery.start();
  feed.join(record('w1', A, { capacity: 8 }));
  feed.join(record('bad', B));
  assert.equal(pool.entries.get(A)?.weight, 8);
  assert.equal(pool.entries.get(B)?.weight, 1);
});

test('a membership shared with DNS keeps a worker the registry drops while DNS still sees it', async (t) => {
  const pool = new FakePool();
  const membership = new DiscoveryMembership(pool);
  membership.claim('dns', A);
  const { feed, discovery } = await setup(t, { pool, membership });
  await discovery.start();
  feed.join(record('w1', A));
  feed.leave('w1');
  assert.deepEqual(pool.urls(), [A]);
  membership.release('dns', A);
  assert.deepEqual(pool.urls(), []);
});

test('periodic resyncs remove an expired worker within one period', async (t) => {
  const { pool, feed, discovery } = await setup(t, { resyncMs: 50, now: () => performance.now() });
  feed.join(record('w1', A), false);
  await discovery.start();
  const t0 = performance.now();
  feed.leave('w1', false);
  while (pool.urls().length > 0) await sleep(5);
  const elapsed = performance.now() - t0;
  // One period, plus timer slack: a 50 ms timer on a loaded test machine fires within ~100 ms.
  assert.ok(elapsed < 50 + 100, `removed after ${elapsed.toFixed(0)} ms`);
});

test('stop closes the feed, stops resyncing and leaves the pool alone', async (t) => {
  const { pool, feed, discovery } = await setup(t, { resyncMs: 50 });
  feed.join(record('w1', A), false);
  await discovery.start();
  await discovery.stop();
  assert.equal(feed.closed, true);
  const snapshots = feed.snapshots;
  feed.send({ type: 'leave', id: 'w1', url: A });
  await sleep(120);
  assert.equal(feed.snapshots, snapshots);
  assert.deepEqual(pool.urls(), [A]);
  assert.equal(await discovery.resync(), false);
});

test('options are validated when built', () => {
  const pool = new FakePool();
  assert.throws(() => new RegistryDiscovery({ pool, logger: silentLogger() }), /redisUrl or feed/);
  assert.throws(() => new RegistryDiscovery({ pool, feed: new FakeFeed(), logger: silentLogger(), resyncMs: 0 }), /resyncMs/);
});
