// The worker side's pure helpers (worker/registration.ts), kept with the discovery tests so the
// feature's tests sit together: the models field from served versions, the advertised URL default.
// The heartbeat itself is tested against a real Redis in test/integration/discovery/registry.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { networkInterfaces } from 'node:os';
import { defaultAdvertiseUrl, servedModels } from '../../../../worker/registration.ts';

test('servedModels groups versions by model, numerically sorted', () => {
  assert.deepEqual(servedModels([{ name: 'iris', version: '10' }, { name: 'mnist', version: '1' }, { name: 'iris', version: '2' }]), { iris: ['2', '10'], mnist: ['1'] });
  assert.deepEqual(servedModels([]), {});
});

test('defaultAdvertiseUrl: the listening host, or the first external IPv4 when listening on every interface', () => {
  const interfaces = {
    lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
    eth0: [{ address: 'fe80::1', family: 'IPv6', internal: false }, { address: '10.1.2.3', family: 'IPv4', internal: false }],
  } as unknown as ReturnType<typeof networkInterfaces>;
  assert.equal(defaultAdvertiseUrl('127.0.0.1', 9001, interfaces), 'http://127.0.0.1:9001');
  assert.equal(defaultAdvertiseUrl('::1', 9001, interfaces), 'http://[::1]:9001');
  assert.equal(defaultAdvertiseUrl('0.0.0.0', 9001, interfaces), 'http://10.1.2.3:9001');
  assert.equal(defaultAdvertiseUrl('::', 9001, interfaces), 'http://10.1.2.3:9001');
  assert.equal(defaultAdvertiseUrl('0.0.0.0', 9001, { lo: interfaces.lo } as ReturnType<typeof networkInterfaces>), undefined);
});
