// A worker not ready for a moment (shorter than the readiness hysteresis) while a periodic index
// refresh runs reports every model unavailable. The gateway must keep routing its models: it used
// to empty the worker's model map and answer 404 "unknown model" until the next refresh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { waitFor } from '../../helpers/processes.ts';
import { adminWorkers, sleep, startConfiguredGateway } from './support.ts';

const BODY = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] });

test('a not-ready blip during an index refresh does not make a served model unknown', async (t) => {
  const worker = await startFaultUpstream(t, { id: 'w' });
  const gateway = await startConfiguredGateway(t, [worker.url], { health: { intervalMs: 1000, timeoutMs: 1000, unhealthyThreshold: 2, healthyThreshold: 1, indexRefreshMs: 3000 } });
  const send = async (): Promise<string> => {
    const res = await fetch(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
    const body = (await res.json()) as { code?: string };
    return `${res.status}${body.code ? ` ${body.code}` : ''}`;
  };
  assert.equal(await send(), '200');
  const indexCalls = (): number => worker.requestsTo('/v2/repository/index');
  const seen = indexCalls();
  await waitFor(() => indexCalls() > seen, 10_000, 5); // a periodic refresh just ran: the next is 3 s away
  await sleep(2900);
  await worker.setMode('not-ready');
  const before = indexCalls();
  await waitFor(() => indexCalls() > before, 5000, 2); // the refresh ran while it was not ready
  await worker.setMode('ok'); // not ready for ~100 ms: at most one failed readiness check
  assert.equal((await adminWorkers(gateway))[0]!.ready, true, 'still admitted: shorter than unhealthyThreshold');
  assert.equal(await send(), '200', 'its model is still known and served');
});
