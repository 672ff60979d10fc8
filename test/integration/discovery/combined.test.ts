// Static list + Redis registry + DNS into one real Pool through startDiscovery (one shared
// membership): the pool dedupes by URL, static workers are never removed by discovery, and a worker
// both the registry and DNS see stays until neither does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../shared/logger.ts';
import { GatewayConfigSchema } from '../../../gateway/config/schema.ts';
import { Pool } from '../../../gateway/upstreams/pool.ts';
import { startDiscovery } from '../../../gateway/upstreams/discovery/start-discovery.ts';
import { WorkerRegistration } from '../../../worker/registration.ts';
import { startFaultUpstream, type FaultUpstream } from '../../helpers/fault-upstream.ts';
import { waitFor } from '../../helpers/processes.ts';
import { startRedis } from '../../helpers/redis.ts';
import { startDnsServer } from './dns-server.ts';

const SRV = '_http._tcp.workers.infergate.test';

test('static, registry and DNS combined: dedupe by URL, each source removes only what no other provides', async (t) => {
  const redis = await startRedis(t);
  const dnsServer = await startDnsServer(t);
  const [fixed, registered, resolved, both] = await Promise.all([startFaultUpstream(t), startFaultUpstream(t), startFaultUpstream(t), startFaultUpstream(t)]);
  const pool = new Pool(GatewayConfigSchema.parse({}), { logger: silentLogger(), now: () => performance.now() });
  t.after(() => pool.close());
  pool.add(fixed.url, { source: 'static' }); // as gateway.start() does, before discovery starts

  const srvFor = (upstreams: FaultUpstream[]) => upstreams.map((u) => ({ target: 'node.workers.infergate.test', port: u.port }));
  dnsServer.set('node.workers.infergate.test', { A: ['127.0.0.1'] });
  dnsServer.set(SRV, { SRV: srvFor([fixed, resolved, both]) });

  const registrations = new Map<FaultUpstream, WorkerRegistration>();
  for (const [i, u] of [fixed, registered, both].entries()) {
    const r = new WorkerRegistration({ redisUrl: redis.url, workerId: `combined-${process.pid}-${i}`, advertiseUrl: u.url, describe: () => ({ models: { echo: ['1'] }, capacity: 1 }), version: 'test', logger: silentLogger() });
    t.after(() => r.withdraw());
    registrations.set(u, r);
    await r.start();
  }

  const discovery = await startDiscovery({
    registry: { enabled: true, namespace: 'infergate', resyncMs: 200, ttlMs: 6000, weightByCapacity: false },
    dns: [{ name: SRV, srv: true, family: 4, scheme: 'http', intervalMs: 100, removeAfterMisses: 2, servers: [dnsServer.address], timeoutMs: 300, weight: 1 }],
  }, { pool, redisUrl: redis.url, logger: silentLogger() });
  t.after(() => discovery.stop());
  await pool.checkAll();

  const view = (): string[] => pool.list().map((u) => `${u.url.port} ${u.source}`).sort();
  const sourceOf = (u: FaultUpstream): string | undefined => pool.get(u.url)?.source;
  assert.equal(pool.list().length, 4, 'four distinct URLs, whatever the number of sources naming them');
  assert.equal(sourceOf(fixed), 'static');
  assert.equal(sourceOf(registered), 'registry');
  assert.equal(sourceOf(resolved), 'dns');
  assert.ok(['registry', 'dns'].includes(sourceOf(both)!));
  await waitFor(() => pool.list().every((u) => u.ready), 2000, 10);

  // DNS stops seeing `both` and `fixed`: the registry still sees both of them.
  dnsServer.set(SRV, { SRV: srvFor([resolved]) });
  await new Promise((r) => setTimeout(r, 500)); // five DNS intervals: well past removeAfterMisses
  assert.equal(pool.list().length, 4, view().join(', '));

  // The registry loses them too: `both` goes; `fixed` is static and stays.
  await registrations.get(both)!.withdraw();
  await registrations.get(fixed)!.withdraw();
  await waitFor(() => pool.get(both.url) === undefined, 1000, 5);
  assert.equal(sourceOf(fixed), 'static');

  // DNS-only and registry-only workers leave with their own source.
  dnsServer.set(SRV, undefined);
  await registrations.get(registered)!.withdraw();
  await waitFor(() => pool.list().length === 1, 1000, 5);
  assert.deepEqual(pool.list().map((u) => u.url.origin), [fixed.url]);
});
