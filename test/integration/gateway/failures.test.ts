// Failure handling with real processes: a worker killed (-9) or frozen (SIGSTOP) under load, and
// every fault the fault upstream can inject — refused connections (retried elsewhere), nobody left
// (503 at once), deadlines (504), a client that goes away (upstream aborted), 5xx answers (passed
// through, counted by the breaker) and broken responses (the client sees them broken).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, waitFor, type RunningGateway } from '../../helpers/processes.ts';
import { startLoad } from '../../helpers/load.ts';
import { metricSum } from '../../helpers/metrics.ts';
import { startFaultUpstream, type FaultUpstream } from '../../helpers/fault-upstream.ts';
import { adminWorkers, inferIris, irisRepository, sleep, startConfiguredGateway, startRecorder, waitForWorker, workerIdOf } from './support.ts';

interface Sample {
  status: number;
  worker: string | null;
  code: string | undefined;
  retryAfter: string | null;
  ms: number;
}

async function sample(send: () => Promise<Response>): Promise<Sample> {
  const started = performance.now();
  const res = await send();
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {
    // not JSON
  }
  return { status: res.status, worker: res.headers.get('x-infergate-worker'), code, retryAfter: res.headers.get('retry-after'), ms: performance.now() - started };
}

/** Sequential requests; how many each worker served, and any non-200 answers. */
async function sequential(gateway: RunningGateway, n: number): Promise<{ counts: Map<string, number>; failures: Sample[] }> {
  const counts = new Map<string, number>();
  const failures: Sample[] = [];
  for (let i = 0; i < n; i++) {
    const s = await sample(() => inferIris(gateway.url));
    if (s.status !== 200) failures.push(s);
    else counts.set(s.worker ?? '', (counts.get(s.worker ?? '') ?? 0) + 1);
  }
  return { counts, failures };
}

test('kill -9 of a worker under load, then a restart on the same port', async (t) => {
  const repo = await irisRepository(t);
  const workers = await Promise.all([startWorker(t, repo), startWorker(t, repo), startWorker(t, repo)]);
  const gateway = await startConfiguredGateway(t, workers.map((w) => w.url), { balancing: { strategy: 'round-robin' } });
  const victim = workers[2]!;
  const victimId = await workerIdOf(gateway, victim.url);

  const load = startLoad(() => inferIris(gateway.url), 8);
  await sleep(500);
  victim.child.kill('SIGKILL');
  // Readiness (2 failed checks 100 ms apart) or the breaker (3 failures) takes it out.
  await waitForWorker(gateway, victim.url, (w) => !w.ready || w.breaker === 'open', 5000);
  await sleep(500);
  const result = await load.stop();
  const view = (await adminWorkers(gateway)).find((w) => w.id === victimId)!;
  t.diagnostic(`${result.sent} requests under load, ${result.failures.length} failed; victim: ready ${view.ready}, breaker ${view.breaker}`);
  assert.ok(result.sent > 100, 'load was running');
  // Only requests already on their way to the victim may fail (at most one per load loop), and only
  // as the gateway's JSON 502/503: a request that had not reached it is retried or sent elsewhere.
  assert.ok(result.failures.length <= 8, `at most the in-flight requests fail: ${JSON.stringify(result.failures)}`);
  for (const f of result.failures) {
    assert.ok(f.status === 502 || f.status === 503, `only 502/503: ${JSON.stringify(f)}`);
    const body = JSON.parse(f.body) as { code: string; error: string };
    assert.match(body.code, /^GW_ERR_(UPSTREAM_BROKEN|UPSTREAM_UNREACHABLE|NO_WORKER)$/);
  }

  await t.test('traffic shifts to the survivors', async () => {
    const { counts, failures } = await sequential(gateway, 30);
    assert.deepEqual(failures, []);
    assert.equal(counts.get(victimId), undefined, 'nothing goes to the dead worker');
    assert.equal(counts.size, 2);
  });

  await t.test('restarted on the same port, it is admitted back and takes traffic', async () => {
    const revived = await startWorker(t, repo, { args: ['--port', new URL(victim.url).port] });
    assert.equal(revived.url, victim.url);
    await waitForWorker(gateway, victim.url, (w) => w.ready, 10_000);
    // An open breaker lets a trial through after resetTimeoutMs; the trial succeeding closes it.
    await waitFor(async () => (await sample(() => inferIris(gateway.url))).worker === victimId, 10_000, 20);
    await waitForWorker(gateway, victim.url, (w) => w.breaker === 'closed', 5000);
    const { counts, failures } = await sequential(gateway, 30);
    assert.deepEqual(failures, []);
    assert.equal(counts.get(victimId), 10, 'round-robin gives it its third again');
  });
});

test('a stalled worker (SIGSTOP): 504 at the deadline, breaker opens, traffic moves, SIGCONT brings it back', async (t) => {
  const repo = await irisRepository(t);
  const [healthy, frozen] = await Promise.all([startWorker(t, repo), startWorker(t, repo)]);
  const gateway = await startConfiguredGateway(t, [healthy.url, frozen.url], {
    balancing: { strategy: 'round-robin' },
    timeouts: { requestMs: 500 },
    breaker: { resetTimeoutMs: 1500 },
  });
  const healthyId = await workerIdOf(gateway, healthy.url);
  const frozenId = await workerIdOf(gateway, frozen.url);
  const resume = (): void => {
    if (frozen.child.exitCode === null && frozen.child.signalCode === null) frozen.child.kill('SIGCONT');
  };
  t.after(resume); // never leave a stopped process behind, whatever fails

  frozen.child.kill('SIGSTOP');
  try {
    // Six at once: round-robin sends three to the frozen worker, enough to judge its breaker.
    const results = await Promise.all(Array.from({ length: 6 }, () => sample(() => inferIris(gateway.url))));
    const timedOut = results.filter((r) => r.status === 504);
    assert.equal(timedOut.length, 3, JSON.stringify(results));
    for (const r of timedOut) {
      assert.equal(r.code, 'GW_ERR_DEADLINE_EXCEEDED');
      assert.ok(r.ms >= 450 && r.ms < 2000, `answered at the 500 ms deadline, took ${r.ms.toFixed(0)} ms`);
    }
    for (const r of results.filter((x) => x.status !== 504)) assert.deepEqual([r.status, r.worker], [200, healthyId]);
    const view = (await adminWorkers(gateway)).find((w) => w.id === frozenId)!;
    assert.equal(view.breaker, 'open', 'three timeouts out of three open the breaker');

    const { counts, failures } = await sequential(gateway, 20);
    assert.deepEqual(failures, [], 'nothing is sent to the frozen worker any more');
    assert.deepEqual([...counts.keys()], [healthyId]);
    await waitForWorker(gateway, frozen.url, (w) => !w.ready, 5000); // readiness checks time out too
  } finally {
    resume();
  }

  await waitForWorker(gateway, frozen.url, (w) => w.ready, 10_000);
  await waitFor(async () => (await sample(() => inferIris(gateway.url))).worker === frozenId, 10_000, 20);
  const { counts, failures } = await sequential(gateway, 20);
  assert.deepEqual(failures, []);
  assert.equal(counts.get(frozenId), 10, 'back in the rotation');
});

test('fault upstreams', async (t) => {
  const [echoA, echoB] = await Promise.all([startFaultUpstream(t, { id: 'echo-a' }), startFaultUpstream(t, { id: 'echo-b' })]);
  const only = (name: string): Promise<FaultUpstream> => startFaultUpstream(t, { id: name, models: [{ name, version: '1' }] });
  const [slowpoke, failing, resetting, patient, garbled, hasty] = await Promise.all([only('slowpoke'), only('failing'), only('resetting'), only('patient'), only('garbled'), only('hasty')]);
  // Two workers serving model 'rst': one resets every request on arrival, one is healthy.
  const rstModels = [{ name: 'rst', version: '1' }];
  const [rstA, rstB] = await Promise.all([startFaultUpstream(t, { id: 'rst-a', models: rstModels }), startFaultUpstream(t, { id: 'rst-b', models: rstModels })]);
  const recorder = await startRecorder(t, slowpoke.url);
  // Readiness checks rarely (5 s), so that a refusing worker stays a candidate and the retry path
  // (not readiness) is what is tested; the breaker reacts after 3 requests.
  const gateway = await startConfiguredGateway(t, [echoA.url, echoB.url, recorder.url, failing.url, resetting.url, rstA.url, rstB.url, patient.url, garbled.url, hasty.url], {
    balancing: { strategy: 'round-robin' },
    health: { intervalMs: 5000 },
    timeouts: { requestMs: 5000 },
  });
  const idOf = (url: string): Promise<string> => workerIdOf(gateway, url);
  const echo = (model = 'echo', init: RequestInit = {}, headers: Record<string, string> = {}): Promise<Response> => fetch(`${gateway.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [2], data: [1, 2] }] }),
    ...init,
  });
  const breakerOf = async (url: string): Promise<string> => (await adminWorkers(gateway)).find((w) => w.url === new URL(url).origin)!.breaker;

  await t.test('connection refused on one of two workers: retried on the other, the client sees 200', async () => {
    const idB = await idOf(echoB.url);
    const retriesBefore = await metricSum(gateway.url, 'infergate_gateway_retries_total', { reason: 'connect' });
    await echoA.setMode('refuse');
    await sleep(200); // the gateway's pooled sockets to it see the close
    const inferBefore = echoA.requestsTo('/v2/models/echo/infer');
    for (let i = 0; i < 10; i++) {
      const s = await sample(() => echo());
      assert.deepEqual([s.status, s.worker], [200, idB], JSON.stringify(s));
    }
    assert.equal(echoA.requestsTo('/v2/models/echo/infer'), inferBefore);
    const retries = (await metricSum(gateway.url, 'infergate_gateway_retries_total', { reason: 'connect' })) - retriesBefore;
    assert.ok(retries >= 1, `retries counted: ${retries}`);
  });

  await t.test('every worker down: 503 with Retry-After at once', async () => {
    await echoB.setMode('refuse');
    await sleep(200);
    for (let i = 0; i < 5; i++) {
      const s = await sample(() => echo());
      assert.equal(s.status, 503, JSON.stringify(s));
      assert.ok(s.retryAfter, 'Retry-After is set');
      assert.match(s.code ?? '', /^GW_ERR_(NO_WORKER|UPSTREAM_UNREACHABLE)$/);
      assert.ok(s.ms < 300, `answered at once, took ${s.ms.toFixed(0)} ms`);
    }
  });

  await t.test('X-Infergate-Timeout-Ms lowers the deadline: 504, and the worker is told the budget', async () => {
    await slowpoke.setMode('delay', { delayMs: 3000 });
    const s = await sample(() => echo('slowpoke', {}, { 'x-infergate-timeout-ms': '200' }));
    assert.equal(s.status, 504);
    assert.equal(s.code, 'GW_ERR_DEADLINE_EXCEEDED');
    assert.ok(s.ms >= 180 && s.ms < 1500, `answered at the client's 200 ms deadline, took ${s.ms.toFixed(0)} ms`);
    // The last inference request, not the last request: an index refresh may have come after it.
    const told = Number(recorder.seen.filter((r) => r.path.endsWith('/infer')).at(-1)?.headers['x-infergate-timeout-ms']);
    assert.ok(told > 0 && told <= 200, `the worker was given the remaining budget: ${told}`);
    await slowpoke.setMode('ok');
  });

  await t.test('a client that goes away aborts the upstream request', async () => {
    await slowpoke.setMode('stall');
    const abortedBefore = recorder.aborted;
    const controller = new AbortController();
    const pending = echo('slowpoke', { signal: controller.signal }).then(() => 'answered', (err: Error) => err.name);
    await waitFor(async () => (await metricSum(gateway.url, 'infergate_gateway_inflight_requests')) >= 1, 2000);
    controller.abort();
    assert.equal(await pending, 'AbortError');
    // Well before the 5 s deadline: it was the disconnect that ended the upstream request.
    await waitFor(async () => (await metricSum(gateway.url, 'infergate_gateway_inflight_requests')) === 0, 1500);
    await waitFor(() => recorder.aborted > abortedBefore, 1500);
    assert.equal(await breakerOf(recorder.url), 'closed', 'a client going away is not the worker\'s fault');
    await slowpoke.setMode('ok');
    assert.equal((await sample(() => echo('slowpoke'))).status, 200);
  });

  await t.test('a worker\'s 4xx passes through and does not count against it', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${gateway.url}/v2/models/slowpoke/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs": 1}' });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { code: string }).code, 'ERR_BAD_REQUEST');
    }
    assert.equal(await breakerOf(recorder.url), 'closed');
  });

  await t.test('5xx passes through as the worker\'s answer and opens the breaker', async () => {
    const id = await idOf(failing.url);
    await failing.setMode('5xx');
    for (let i = 0; i < 3; i++) {
      const res = await echo('failing');
      assert.equal(res.status, 500);
      assert.equal(res.headers.get('x-infergate-worker'), id);
      const body = (await res.json()) as { code: string; error: string };
      assert.equal(body.code, 'ERR_INTERNAL');
      assert.match(body.error, /injected fault/, 'the worker\'s own body, not the gateway\'s');
    }
    assert.equal(await breakerOf(failing.url), 'open', '3 failures out of 3 requests in the window');
    const s = await sample(() => echo('failing'));
    assert.deepEqual([s.status, s.code], [503, 'GW_ERR_NO_WORKER'], 'no candidate left: 503 at once');
    assert.ok(s.retryAfter);
    assert.equal(failing.requestsTo('/v2/models/failing/infer'), 3, 'the open breaker kept the request away from the worker');
  });

  await t.test('a reset after the request reached the worker: 502 JSON, never retried elsewhere', async () => {
    await rstA.setMode('reset-before-response');
    const path = '/v2/models/rst/infer';
    // Round-robin over the two: within two requests one goes to rst-a first.
    for (let i = 0; i < 2 && rstA.requestsTo(path) === 0; i++) {
      const aBefore = rstA.requestsTo(path);
      const bBefore = rstB.requestsTo(path);
      const s = await sample(() => echo('rst'));
      if (rstA.requestsTo(path) === aBefore) continue; // served by rst-b directly
      assert.equal(rstB.requestsTo(path), bBefore, 'the request reached rst-a (it may have run): it must not run again on rst-b');
      assert.deepEqual([s.status, s.code], [502, 'GW_ERR_UPSTREAM_BROKEN']);
    }
    assert.ok(rstA.requestsTo(path) > 0);
  });

  await t.test('a reset mid-body: the client sees a broken response, the gateway stays up', async () => {
    await resetting.setMode('reset-mid-body');
    await assert.rejects(async () => {
      const res = await echo('resetting');
      await res.text();
    }, 'the truncated body is not delivered as if complete');
    const live = await fetch(`${gateway.url}/v2/health/live`);
    assert.equal(live.status, 200);
    await live.body?.cancel();
    assert.equal((await sample(() => echo('slowpoke'))).status, 200, 'other requests are served');
    assert.equal(gateway.child.exitCode, null);
    await waitFor(async () => (await metricSum(gateway.url, 'infergate_gateway_inflight_requests')) === 0, 2000);
  });

  await t.test('a status line node:http cannot repeat: the answer without its reason phrase, or 502 JSON; the gateway stays up', async () => {
    // node:http's client accepts both lines; its server refuses to write either as it came.
    await garbled.setMode('malformed-status', { statusLine: 'HTTP/1.1 200 O\x01K' });
    const passed = await echo('garbled');
    assert.equal(passed.status, 200, 'a reason phrase is only decoration (RFC 9112 §4): the answer goes through');
    assert.equal(passed.statusText, 'OK', 'with the standard one');
    assert.deepEqual(await passed.json(), {}, 'the worker\'s body');
    await garbled.setMode('malformed-status', { statusLine: 'HTTP/1.1 099 Odd' });
    const refused = await echo('garbled');
    const body = (await refused.json()) as { error?: string; code?: string; request_id?: string };
    assert.equal(refused.status, 502, 'status 099 is no final answer');
    assert.equal(body.code, 'GW_ERR_UPSTREAM_BROKEN');
    assert.match(body.error ?? '', /malformed/);
    assert.equal(body.request_id, refused.headers.get('x-request-id'));
    assert.equal(gateway.child.exitCode, null, 'the gateway process is still running');
    await garbled.setMode('ok');
    const ok = await echo('garbled');
    assert.equal(ok.status, 200, 'the next request is served');
    await ok.body?.cancel();
  });

  await t.test('a worker\'s own 504 on a deadline the client shortened does not count against it either', async () => {
    // The worker's clock, not the gateway's, ran out first: it answers 504 itself.
    await hasty.setMode('5xx', { errorCode: 'WK_ERR_DEADLINE_EXCEEDED' });
    for (let i = 0; i < 6; i++) {
      const s = await sample(() => echo('hasty', {}, { 'x-infergate-timeout-ms': '1000' }));
      assert.deepEqual([s.status, s.code], [504, 'WK_ERR_DEADLINE_EXCEEDED'], `request ${i + 1}: the worker's answer, not a 503 from an opened breaker`);
    }
    assert.equal(await breakerOf(hasty.url), 'closed', 'a deadline the client shortened says nothing about the worker');
    await hasty.setMode('ok');
  });

  await t.test('a client\'s own short deadline does not count against a healthy worker', async () => {
    // A healthy worker answering in 100 ms; one impatient client wants answers in 20 ms.
    await patient.setMode('delay', { delayMs: 100 });
    for (let i = 0; i < 6; i++) {
      const s = await sample(() => echo('patient', {}, { 'x-infergate-timeout-ms': '20' }));
      assert.deepEqual([s.status, s.code], [504, 'GW_ERR_DEADLINE_EXCEEDED'], `request ${i + 1}: the client's deadline, not a 503 from an opened breaker`);
    }
    assert.equal(await breakerOf(patient.url), 'closed', 'the worker did nothing wrong');
    const other = await sample(() => echo('patient'));
    assert.equal(other.status, 200, 'other clients are still served');
  });
});
