// The half-open trial decides the breaker only by what the worker did. A trial its client ended
// (went away, or shortened the deadline with X-Infergate-Timeout-Ms) says nothing about the worker:
// it used to count as a success and close the breaker of a worker still too slow to answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../../helpers/processes.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { adminWorkers, sleep, startConfiguredGateway } from './support.ts';

const BODY = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] });

for (const ending of ['the client goes away', 'the client shortens the deadline'] as const) {
  test(`a half-open trial that ends because ${ending} leaves the breaker half-open`, async (t) => {
    const slow = await startFaultUpstream(t, { id: 'slow', mode: 'delay', delayMs: 3000 });
    const gateway = await startConfiguredGateway(t, [slow.url], {
      timeouts: { requestMs: 400 },
      breaker: { errorThresholdPercentage: 50, volumeThreshold: 3, resetTimeoutMs: 1000, rollingWindowMs: 10_000 },
    });
    const send = (init: RequestInit = {}, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: BODY, ...init });
    const breaker = async (): Promise<string> => (await adminWorkers(gateway))[0]!.breaker;
    for (let i = 0; i < 3; i++) assert.equal((await send()).status, 504);
    assert.equal(await breaker(), 'open');
    await waitFor(async () => (await breaker()) === 'half-open', 5000);

    if (ending === 'the client goes away') {
      const abort = new AbortController();
      const trial = send({ signal: abort.signal }).catch((err: Error) => err.name);
      await sleep(150);
      abort.abort();
      assert.equal(await trial, 'AbortError');
    } else {
      assert.equal((await send({}, { 'x-infergate-timeout-ms': '50' })).status, 504);
    }
    await sleep(100);
    assert.equal(await breaker(), 'half-open', 'the worker was not heard from: nothing is decided');

    // The next request is the trial, and the worker is still too slow: the breaker opens again.
    assert.equal((await send()).status, 504);
    assert.equal(await breaker(), 'open');
    const refused = await send();
    assert.equal(refused.status, 503, 'open again: refused at once');
    await refused.body?.cancel();
  });
}
