// startDiscovery builds only what the config asks for and refuses a registry without Redis at boot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../../shared/logger.ts';
import { startDiscovery, type DiscoveryConfig } from '../../../../gateway/upstreams/discovery/start-discovery.ts';
import { FakePool } from './fakes.ts';

const OFF: DiscoveryConfig = { registry: { enabled: false, namespace: 'infergate', resyncMs: 1000, ttlMs: 6000, weightByCapacity: false }, dns: [] };

test('nothing configured: nothing started, stop is a no-op', async () => {
  const running = await startDiscovery(OFF, { pool: new FakePool(), redisUrl: undefined, logger: silentLogger() });
  assert.equal(running.registry, undefined);
  assert.equal(running.dns.length, 0);
  await running.stop();
});

test('the registry enabled without a Redis URL fails at boot', async () => {
  const config = { ...OFF, registry: { ...OFF.registry, enabled: true } };
  await assert.rejects(startDiscovery(config, { pool: new FakePool(), redisUrl: undefined, logger: silentLogger() }), /redis\.url/);
});

test('a DNS entry without a port (and not SRV) fails at boot', async () => {
  const config: DiscoveryConfig = { ...OFF, dns: [{ name: 'workers.test', srv: false, family: 4, scheme: 'http', intervalMs: 5000, removeAfterMisses: 2, timeoutMs: 100, weight: 1 }] };
  await assert.rejects(startDiscovery(config, { pool: new FakePool(), redisUrl: undefined, logger: silentLogger() }), /needs a port/);
});
