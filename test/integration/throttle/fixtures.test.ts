// The Redis fixture and the TCP proxy do what other tests rely on: a fresh empty server on restart
// (same port), a frozen server on pause, and delays, stalls and resets on the proxied link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, skipUnlessControllable } from '../../helpers/redis.ts';
import { startTcpProxy } from '../../helpers/tcp-proxy.ts';

test('redis fixture: restart keeps the port and empties data and scripts; pause freezes it', async (t) => {
  const redis = await startRedis(t);
  if (skipUnlessControllable(t, redis)) return;
  const client = redis.client();
  await client.set('k', 'v');
  const sha = (await client.script('LOAD', 'return 1')) as string;
  await redis.restart();
  const fresh = redis.client();
  assert.equal(await fresh.get('k'), null);
  assert.deepEqual(await fresh.script('EXISTS', sha), [0]);
  redis.pause();
  const timeout = redis.client({ commandTimeout: 100 });
  await assert.rejects(timeout.ping(), /timed out/);
  redis.resume();
  assert.equal(await fresh.ping(), 'PONG');
  await redis.kill();
  await assert.rejects(redis.client({ enableOfflineQueue: false, retryStrategy: () => null }).ping());
});

test('tcp proxy: delays both ways, stalls until resumed, resets every connection', async (t) => {
  const redis = await startRedis(t);
  const proxy = await startTcpProxy(t, redis.port);
  const client = new Redis({ port: proxy.port, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  t.after(() => client.disconnect());
  assert.equal(await client.ping(), 'PONG');
  proxy.setDelay(100);
  let start = performance.now();
  await client.ping();
  const delayed = performance.now() - start;
  assert.ok(delayed >= 195 && delayed < 400, `a delayed round trip took ${delayed.toFixed(0)} ms, expected ~200 ms`);
  proxy.setDelay(0);
  proxy.stall();
  start = performance.now();
  const stalled = client.ping();
  setTimeout(() => proxy.resume(), 150);
  assert.equal(await stalled, 'PONG');
  assert.ok(performance.now() - start >= 145, 'held until resume');
  assert.equal(proxy.connections, 1);
  const closed = new Promise((resolve) => client.once('close', resolve));
  proxy.resetAll();
  await closed;
});
