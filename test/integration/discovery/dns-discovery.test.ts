// DNS discovery through the real node:dns/promises resolver, against a local DNS server fixture, into
// a real Pool: A records and SRV records become admitted workers, answers that change change the
// pool, a failing DNS server keeps the set, and static workers are untouched.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../../shared/logger.ts';
import { GatewayConfigSchema } from '../../../gateway/config/schema.ts';
import { Pool } from '../../../gateway/upstreams/pool.ts';
import { DnsDiscovery, type DnsDiscoveryOptions } from '../../../gateway/upstreams/discovery/dns-discovery.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { waitFor } from '../../helpers/processes.ts';
import { startDnsServer } from './dns-server.ts';

const NAME = 'workers.infergate.test';

function makePool(t: TestContext): Pool {
  const config = GatewayConfigSchema.parse({ health: { intervalMs: 100, timeoutMs: 500 } });
  const pool = new Pool(config, { logger: silentLogger(), now: () => performance.now() });
  t.after(() => pool.close());
  return pool;
}

function discovery(t: TestContext, options: Omit<DnsDiscoveryOptions, 'logger'>): DnsDiscovery {
  const dns = new DnsDiscovery({ logger: silentLogger(), timeoutMs: 300, ...options });
  t.after(() => dns.stop());
  return dns;
}

const origins = (pool: Pool): string[] => pool.list().map((u) => u.url.origin).sort();

test('A records → pool entries with source dns; changes in the answers reach the pool', async (t) => {
  const server = await startDnsServer(t);
  const pool = makePool(t);
  server.set(NAME, { A: ['127.0.0.1', '127.0.0.2'] });
  const dns = discovery(t, { name: NAME, port: 9001, family: 4, servers: [server.address], pool, intervalMs: 100 });
  await dns.start();
  assert.deepEqual(origins(pool), ['http://127.0.0.1:9001', 'http://127.0.0.2:9001']);
  assert.ok(pool.list().every((u) => u.source === 'dns'));
  assert.ok(server.queries.includes(`A ${NAME}`));

  server.set(NAME, { A: ['127.0.0.2', '127.0.0.3'] });
  await waitFor(() => origins(pool).includes('http://127.0.0.3:9001'), 1000, 10);
  // .1 leaves after two answers without it (removeAfterMisses 2): within ~2 intervals.
  await waitFor(() => !origins(pool).includes('http://127.0.0.1:9001'), 1000, 10);
  assert.deepEqual(origins(pool), ['http://127.0.0.2:9001', 'http://127.0.0.3:9001']);

  server.set(NAME, undefined); // NXDOMAIN: scaled to zero
  await waitFor(() => pool.list().length === 0, 1000, 10);
});

test('SRV records with per-target ports: discovered workers are checked and admitted', async (t) => {
  const server = await startDnsServer(t);
  const pool = makePool(t);
  const [w1, w2] = await Promise.all([startFaultUpstream(t), startFaultUpstream(t)]);
  const srv = `_http._tcp.${NAME}`;
  server.set(srv, { SRV: [{ target: 'w-0.workers.infergate.test', port: w1.port }, { target: 'w-1.workers.infergate.test', port: w2.port }] });
  server.set('w-0.workers.infergate.test', { A: ['127.0.0.1'] });
  server.set('w-1.workers.infergate.test', { A: ['127.0.0.1'] });
  const dns = discovery(t, { name: srv, srv: true, servers: [server.address], pool, intervalMs: 100 });
  await dns.start();
  assert.deepEqual(origins(pool), [w1.url, w2.url].sort());
  await waitFor(() => pool.list().every((u) => u.ready), 2000, 10);
  assert.ok(pool.candidates('echo', undefined, new Set()).length === 2);
  // AAAA asked too (family 'any'); the names have none: NODATA, not a failure.
  assert.ok(server.queries.includes('AAAA w-0.workers.infergate.test'));
});

test('a failing or silent DNS server keeps the current set; answers resume the updates', async (t) => {
  const server = await startDnsServer(t);
  const pool = makePool(t);
  server.set(NAME, { A: ['127.0.0.1'] });
  const dns = discovery(t, { name: NAME, port: 9001, family: 4, servers: [server.address], pool, intervalMs: 3_600_000, removeAfterMisses: 1 });
  await dns.start();
  server.set(NAME, { A: [] });
  server.mode = 'servfail';
  assert.equal(await dns.refresh(), false);
  server.mode = 'drop'; // no answer: a resolver timeout
  assert.equal(await dns.refresh(), false);
  assert.deepEqual(origins(pool), ['http://127.0.0.1:9001']);
  server.mode = 'ok';
  server.set(NAME, { A: ['127.0.0.5'] });
  assert.equal(await dns.refresh(), true);
  assert.deepEqual(origins(pool), ['http://127.0.0.5:9001']);
});

test('combined with a static list: the pool dedupes by URL and DNS never removes the static worker', async (t) => {
  const server = await startDnsServer(t);
  const pool = makePool(t);
  pool.add('http://127.0.0.1:9001', { source: 'static' });
  server.set(NAME, { A: ['127.0.0.1', '127.0.0.2'] });
  const dns = discovery(t, { name: NAME, port: 9001, family: 4, servers: [server.address], pool, intervalMs: 3_600_000, removeAfterMisses: 1 });
  await dns.start();
  assert.deepEqual(pool.list().map((u) => `${u.url.origin} ${u.source}`).sort(), ['http://127.0.0.1:9001 static', 'http://127.0.0.2:9001 dns']);
  server.set(NAME, { A: [] });
  await dns.refresh();
  assert.deepEqual(pool.list().map((u) => `${u.url.origin} ${u.source}`), ['http://127.0.0.1:9001 static']);
});
