// DNS discovery on a fake resolver and a fake pool: addresses become http://<ip>:<port> entries,
// answers change the pool (removal after `removeAfterMisses` answers without the address), an
// authoritative empty answer counts as an answer, a failed lookup keeps the current set.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../../../shared/logger.ts';
import { DnsDiscovery, type DnsDiscoveryOptions } from '../../../../gateway/upstreams/discovery/dns-discovery.ts';
import { DiscoveryMembership } from '../../../../gateway/upstreams/discovery/membership.ts';
import { dnsError, FakePool, FakeResolver } from './fakes.ts';

const NAME = 'workers.infergate.svc.cluster.local';

function setup(t: TestContext, options: Partial<DnsDiscoveryOptions> = {}) {
  const pool = options.pool instanceof FakePool ? options.pool : new FakePool();
  const resolver = new FakeResolver();
  const dns = new DnsDiscovery({ name: NAME, port: 9001, pool, resolver, logger: silentLogger(), intervalMs: 3_600_000, ...options });
  t.after(() => dns.stop());
  return { pool, resolver, dns };
}

test('A and AAAA records become worker URLs (IPv6 bracketed)', async (t) => {
  const { pool, resolver, dns } = setup(t);
  resolver.set('A', NAME, ['10.0.0.1', '10.0.0.2']);
  resolver.set('AAAA', NAME, ['fd00::7']);
  await dns.start();
  assert.deepEqual(pool.urls(), ['http://10.0.0.1:9001', 'http://10.0.0.2:9001', 'http://[fd00::7]:9001']);
  assert.equal(pool.entries.get('http://10.0.0.1:9001')?.source, 'dns');
  assert.deepEqual(dns.urls(), pool.urls());
});

test('addresses change → the pool changes: new ones at once, gone ones after removeAfterMisses answers', async (t) => {
  const { pool, resolver, dns } = setup(t, { family: 4 });
  resolver.set('A', NAME, ['10.0.0.1', '10.0.0.2']);
  await dns.start();
  resolver.set('A', NAME, ['10.0.0.2', '10.0.0.3']);
  await dns.refresh();
  assert.deepEqual(pool.urls(), ['http://10.0.0.1:9001', 'http://10.0.0.2:9001', 'http://10.0.0.3:9001'], 'one miss: .1 stays');
  await dns.refresh();
  assert.deepEqual(pool.urls(), ['http://10.0.0.2:9001', 'http://10.0.0.3:9001'], 'two misses: .1 goes');
  assert.deepEqual(resolver.queries.filter((q) => q.startsWith('AAAA')), [], 'family 4 asks for A only');
});

test('an address that comes back before its last miss stays, with its miss count reset', async (t) => {
  const { pool, resolver, dns } = setup(t, { family: 4, removeAfterMisses: 2 });
  resolver.set('A', NAME, ['10.0.0.1']);
  await dns.start();
  resolver.set('A', NAME, []);
  await dns.refresh();
  resolver.set('A', NAME, ['10.0.0.1']);
  await dns.refresh();
  resolver.set('A', NAME, []);
  await dns.refresh();
  assert.deepEqual(pool.urls(), ['http://10.0.0.1:9001']);
  assert.deepEqual(pool.log, ['+http://10.0.0.1:9001 dns']);
});

test('removeAfterMisses 1 follows every answer exactly', async (t) => {
  const { pool, resolver, dns } = setup(t, { family: 4, removeAfterMisses: 1 });
  resolver.set('A', NAME, ['10.0.0.1']);
  await dns.start();
  resolver.set('A', NAME, ['10.0.0.9']);
  await dns.refresh();
  assert.deepEqual(pool.urls(), ['http://10.0.0.9:9001']);
});

test('NXDOMAIN and NODATA are answers: a Service scaled to zero empties the set', async (t) => {
  const { pool, resolver, dns } = setup(t);
  resolver.set('A', NAME, ['10.0.0.1']);
  resolver.set('AAAA', NAME, dnsError('ENODATA'));
  await dns.start();
  assert.deepEqual(pool.urls(), ['http://10.0.0.1:9001']);
  resolver.answers.clear(); // every query now answers ENOTFOUND
  assert.equal(await dns.refresh(), true);
  assert.equal(await dns.refresh(), true);
  assert.deepEqual(pool.urls(), []);
});

test('a failed lookup (timeout, SERVFAIL, refused) keeps the current set, however long it lasts', async (t) => {
  const { pool, resolver, dns } = setup(t);
  resolver.set('A', NAME, ['10.0.0.1']);
  resolver.set('AAAA', NAME, []);
  await dns.start();
  for (const code of ['ETIMEOUT', 'ESERVFAIL', 'ECONNREFUSED', 'EREFUSED']) {
    resolver.set('AAAA', NAME, dnsError(code)); // one family failing spoils the whole answer
    assert.equal(await dns.refresh(), false, code);
  }
  assert.deepEqual(pool.urls(), ['http://10.0.0.1:9001']);
  resolver.set('AAAA', NAME, []);
  resolver.set('A', NAME, ['10.0.0.2']);
  assert.equal(await dns.refresh(), true);
  assert.deepEqual(pool.urls(), ['http://10.0.0.1:9001', 'http://10.0.0.2:9001'], 'failures were not counted as misses');
});

test('SRV: each target resolved, each with its own port; IP targets used as they are', async (t) => {
  const srvName = `_http._tcp.${NAME}`;
  const { pool, resolver, dns } = setup(t, { name: srvName, srv: true, port: undefined, family: 4, scheme: 'https' });
  resolver.set('SRV', srvName, [{ name: 'w-0.workers', port: 9001 }, { name: 'w-1.workers', port: 9002 }, { name: '10.0.0.9', port: 9003 }]);
  resolver.set('A', 'w-0.workers', ['10.0.0.1']);
  resolver.set('A', 'w-1.workers', ['10.0.0.2']);
  await dns.start();
  assert.deepEqual(pool.urls(), ['https://10.0.0.1:9001', 'https://10.0.0.2:9002', 'https://10.0.0.9:9003']);
});

test('a URL the pool knows statically is not re-added nor removed', async (t) => {
  const pool = new FakePool();
  pool.add('http://10.0.0.1:9001', { source: 'static' });
  const { resolver, dns } = setup(t, { pool, family: 4, removeAfterMisses: 1 });
  resolver.set('A', NAME, ['10.0.0.1', '10.0.0.2']);
  await dns.start();
  resolver.set('A', NAME, []);
  await dns.refresh();
  assert.deepEqual(pool.urls(), ['http://10.0.0.1:9001']);
  assert.deepEqual(pool.log, ['+http://10.0.0.1:9001 static', '+http://10.0.0.2:9001 dns', '-http://10.0.0.2:9001']);
});

test('a membership shared with the registry keeps a worker DNS stops seeing', async (t) => {
  const pool = new FakePool();
  const membership = new DiscoveryMembership(pool);
  const { resolver, dns } = setup(t, { pool, membership, family: 4, removeAfterMisses: 1 });
  resolver.set('A', NAME, ['10.0.0.1']);
  await dns.start();
  membership.claim('registry', 'http://10.0.0.1:9001');
  resolver.set('A', NAME, []);
  await dns.refresh();
  assert.deepEqual(pool.urls(), ['http://10.0.0.1:9001']);
});

test('refreshes run every intervalMs once started, and stop ends them', async (t) => {
  const { pool, resolver, dns } = setup(t, { family: 4, intervalMs: 50, removeAfterMisses: 1 });
  resolver.set('A', NAME, ['10.0.0.1']);
  await dns.start();
  resolver.set('A', NAME, ['10.0.0.2']);
  const t0 = performance.now();
  while (!pool.urls().includes('http://10.0.0.2:9001')) await sleep(5);
  assert.ok(performance.now() - t0 < 150, 'picked up within one interval plus timer slack');
  await dns.stop();
  const queries = resolver.queries.length;
  await sleep(120);
  assert.equal(resolver.queries.length, queries);
});

test('options are validated when built', () => {
  const base = { name: NAME, pool: new FakePool(), logger: silentLogger(), resolver: new FakeResolver() };
  assert.throws(() => new DnsDiscovery(base), /needs a port/);
  assert.throws(() => new DnsDiscovery({ ...base, port: 70_000 }), /needs a port/);
  assert.throws(() => new DnsDiscovery({ ...base, port: 9001, removeAfterMisses: 0 }), /removeAfterMisses/);
  assert.doesNotThrow(() => new DnsDiscovery({ ...base, srv: true }));
});
