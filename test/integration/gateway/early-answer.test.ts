// A worker that answers before reading the whole body (a model unloaded at the worker while the
// gateway's index still lists it: 404 from the path alone) must have that answer reach the client,
// even when the body is megabytes the gateway is still writing. Closing on unread bytes resets the
// connection, and the gateway then lost the worker's 404 to the reset: a 502, counted by the
// worker's breaker, which opened on a healthy worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker } from '../../helpers/processes.ts';
import { adminWorkers, irisRepository, nodeRequest, startConfiguredGateway } from './support.ts';

test('a worker\'s early answer to a large body reaches the client and does not count against it', async (t) => {
  const repo = await irisRepository(t, ['house-price']); // house-price keeps the worker ready without iris
  const worker = await startWorker(t, repo);
  // The index is refreshed rarely: the gateway keeps sending iris requests to this worker.
  const gateway = await startConfiguredGateway(t, [worker.url], { health: { indexRefreshMs: 60_000 }, breaker: { volumeThreshold: 3 } });
  const unload = await fetch(`${worker.url}/v2/repository/models/iris/unload`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(unload.status, 200);
  await unload.body?.cancel();

  const big = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }], pad: 'a'.repeat(8 * 1024 * 1024) });
  for (let i = 0; i < 6; i++) {
    const res = await nodeRequest(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    assert.equal(res.status, 404, `request ${i + 1}: ${res.body.slice(0, 200)}`);
    assert.equal((JSON.parse(res.body) as { code: string }).code, 'WK_ERR_MODEL_NOT_FOUND', 'the worker\'s own answer');
  }
  const [state] = await adminWorkers(gateway);
  assert.equal(state!.breaker, 'closed', 'a 4xx is the client\'s fault, never the worker\'s');
  const other = await fetch(`${gateway.url}/v2/models/house-price/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }) });
  assert.notEqual(other.status, 503, 'the worker still takes requests');
  await other.body?.cancel();
});
