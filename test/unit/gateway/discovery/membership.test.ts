// Who may remove what: discovery adds a URL only when the pool does not know it, and removes only
// entries it (or a source sharing its membership) added, once no source of the membership sees them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiscoveryMembership } from '../../../../gateway/upstreams/discovery/membership.ts';
import { FakePool } from './fakes.ts';
import { parseGatewayConfig } from '../../../../gateway/config/load.ts';
import { Pool } from '../../../../gateway/upstreams/pool.ts';
import { silentLogger } from '../../../../shared/logger.ts';

const A = 'http://10.0.0.1:9001';
const B = 'http://10.0.0.2:9001';

test('reconcile adds what is new and removes what is gone, URLs normalised to origins', () => {
  const pool = new FakePool();
  const m = new DiscoveryMembership(pool);
  assert.deepEqual(m.reconcile('dns', new Map([[`${A}/`, 1], [B, 2]])), { added: [A, B], removed: [] });
  assert.equal(pool.entries.get(B)?.weight, 2);
  assert.deepEqual(m.reconcile('dns', new Map([[A, 1]])), { added: [], removed: [B] });
  assert.deepEqual(pool.urls(), [A]);
  assert.deepEqual(m.claimed('dns'), [A]);
});

test('a URL known from a static list is neither added again nor removed by discovery', () => {
  const pool = new FakePool();
  pool.add(A, { source: 'static' });
  const m = new DiscoveryMembership(pool);
  assert.equal(m.claim('registry', A), false);
  assert.equal(m.release('registry', A), false);
  assert.equal(pool.entries.get(A)?.source, 'static');
  assert.deepEqual(pool.log, [`+${A} static`]);
});

test('admin-added URLs survive discovery releasing them', () => {
  const pool = new FakePool();
  pool.add(A, { source: 'admin' });
  const m = new DiscoveryMembership(pool);
  m.reconcile('dns', new Map([[A, 1]]));
  m.reconcile('dns', new Map());
  assert.deepEqual(pool.urls(), [A]);
});

test('shared by registry and DNS: a URL both see stays while either does, whoever added it', () => {
  const pool = new FakePool();
  const m = new DiscoveryMembership(pool);
  m.claim('dns', A);
  m.claim('registry', A);
  assert.equal(pool.entries.get(A)?.source, 'dns');
  assert.equal(m.release('dns', A), false, 'the registry still sees it');
  assert.deepEqual(pool.urls(), [A]);
  assert.equal(m.release('registry', A), true, 'nobody sees it any more');
  assert.deepEqual(pool.urls(), []);
});

test('private memberships never remove the other source\'s entry; a missing claimed URL is re-added at reconcile', () => {
  const pool = new FakePool();
  const dns = new DiscoveryMembership(pool);
  const registry = new DiscoveryMembership(pool);
  dns.claim('dns', A);
  registry.claim('registry', A);
  assert.equal(registry.release('registry', A), false, "the entry is DNS's");
  assert.deepEqual(pool.urls(), [A]);
  registry.claim('registry', A);
  dns.release('dns', A); // DNS removes its own entry...
  assert.deepEqual(pool.urls(), []);
  registry.reconcile('registry', new Map([[A, 1]])); // ...and the registry, still seeing it, puts it back
  assert.deepEqual(pool.log, [`+${A} dns`, `-${A}`, `+${A} registry`]);
});

test('releaseAll drops every claim of one source only', () => {
  const pool = new FakePool();
  const m = new DiscoveryMembership(pool);
  m.claim('dns', A);
  m.claim('registry', B);
  assert.deepEqual(m.releaseAll('dns'), [A]);
  assert.deepEqual(pool.urls(), [B]);
});

test('the real pool: a discovered URL later listed statically is taken over, and discovery no longer removes it', (t) => {
  const pool = new Pool(parseGatewayConfig({}, 'test'), { logger: silentLogger(), now: () => performance.now() });
  t.after(() => pool.close());
  const m = new DiscoveryMembership(pool);
  assert.equal(m.claim('registry', A), true);
  assert.equal(pool.get(A)?.source, 'registry');
  pool.add(A, { source: 'static', weight: 3 }); // the operator lists it in the config file
  assert.equal(pool.get(A)?.source, 'static');
  assert.equal(pool.get(A)?.weight, 3);
  assert.equal(m.release('registry', A), false, 'the registry withdrawing it removes nothing');
  assert.ok(pool.get(A) !== undefined);
  pool.add(A, { source: 'dns' });
  assert.equal(pool.get(A)?.source, 'static', 'discovery never takes an entry back');
});
