// A worker removed through the admin API while its readiness check is under way, then added back
// (same URL, same id): each pool entry keeps exactly one check loop. The old entry's loop used to
// re-arm under the new entry's timers, so loops (and readiness checks) multiplied with every re-add.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../../helpers/processes.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { adminWorkers, sleep, startConfiguredGateway } from './support.ts';

test('removing and re-adding a worker keeps one readiness-check loop, and removal stops it', async (t) => {
  // Every route answers after 200 ms, readiness included: a check is under way most of the time.
  const worker = await startFaultUpstream(t, { id: 'w', mode: 'delay', delayMs: 200, scope: 'all' });
  const gateway = await startConfiguredGateway(t, [worker.url], { health: { intervalMs: 100, timeoutMs: 1000, indexRefreshMs: 60_000 } });
  const checksPerSecond = async (ms: number): Promise<number> => {
    const before = worker.requestsTo('/v2/health/ready');
    await sleep(ms);
    return ((worker.requestsTo('/v2/health/ready') - before) * 1000) / ms;
  };
  const base = await checksPerSecond(1500);
  const infer = (): Promise<number> => fetch(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] }) }).then((r) => r.status, () => 0);
  for (let i = 0; i < 6; i++) {
    const inFlight = [infer(), infer()]; // requests in flight to it while it is removed
    await sleep(130); // the next check (100 ms after the last, 200 ms long) is under way
    const id = (await adminWorkers(gateway))[0]!.id;
    assert.equal((await gateway.admin(`/admin/workers/${id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await gateway.admin('/admin/workers', { method: 'POST', body: JSON.stringify({ url: worker.url }) })).status, 201);
    await waitFor(async () => (await adminWorkers(gateway))[0]?.ready === true, 5000);
    await Promise.all(inFlight);
  }
  const after = await checksPerSecond(1500);
  assert.ok(after < base * 1.6, `one check loop per pool entry: ${base.toFixed(1)}/s before, ${after.toFixed(1)}/s after six re-adds`);
  const [entry] = await adminWorkers(gateway);
  assert.equal((await gateway.admin(`/admin/workers/${entry!.id}`, { method: 'DELETE' })).status, 204);
  await sleep(500); // a check under way at the removal may still arrive
  assert.equal(await checksPerSecond(1000), 0, 'a removed worker is not checked any more');
});
