// Worker faults under load, each case checking what the clients saw, that no process crashed or
// hung, and that the gateway's metrics moved as they should: a worker killed (-9) or frozen
// (SIGSTOP); a worker too slow for the deadline, one that resets mid-body, one that refuses
// connections, every worker down; and a worker flapping 100 times (down/up, then out of and back
// into the pool) with no leaked heap, sockets, handles or listeners.
//
// test/integration/gateway/failures.test.ts checks the same faults one request at a time (exact
// balancing, restart on the same port, the client's own deadline); these run them under concurrent
// load and read the outcome from /metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFaultUpstream, type FaultUpstream } from '../helpers/fault-upstream.ts';
import type { LoadResult } from '../helpers/load.ts';
import { scrapeMetrics, type MetricsScrape } from '../helpers/metrics.ts';
import { startWorker, waitFor } from '../helpers/processes.ts';
import { IRIS_BODY, adminWorkers, inferIris, irisRepository, startConfiguredGateway, waitForWorker, workerIdOf } from '../integration/gateway/support.ts';
import { HANG_MS, type CataloguedOptions, assertAlive, loadFor, assertNoWarnings, captureStderr, expectCatalogued, gcPreloadEnv, heapAfterGc, see, tally, waitForIdle } from './support.ts';

const LOOPS = 8;
const ECHO_BODY = JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [2], data: [1, 2] }] });

function echo(gatewayUrl: string, model: string): Promise<Response> {
  return fetch(`${gatewayUrl}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ECHO_BODY, signal: AbortSignal.timeout(HANG_MS) });
}

/** Every failure is a catalogued JSON error with one of `codes` (status 0 = no HTTP answer, not allowed). */
function expectOnly(result: LoadResult, codes: CataloguedOptions['codes']): void {
  for (const f of result.failures) {
    assert.notEqual(f.status, 0, `every request got an HTTP answer: ${f.body}`);
    expectCatalogued(f.status, f.body, { codes });
  }
}

/** Requests the gateway counted (every model, status and worker) between two scrapes. */
function counted(before: MetricsScrape, after: MetricsScrape, labels: Record<string, string> = {}): number {
  return after.delta(before, 'infergate_gateway_requests_total', labels);
}

test('a worker killed with SIGKILL under load', { timeout: 120_000 }, async (t) => {
  const repo = await irisRepository(t);
  const workers = await Promise.all([startWorker(t, repo), startWorker(t, repo), startWorker(t, repo)]);
  const gateway = await startConfiguredGateway(t, workers.map((w) => w.url), { balancing: { strategy: 'round-robin' } });
  const [victim, ...survivors] = workers;
  const victimId = await workerIdOf(gateway, victim.url);
  const before = await scrapeMetrics(gateway.url);

  const load = loadFor(t, () => inferIris(gateway.url, {}, { signal: AbortSignal.timeout(HANG_MS) }), LOOPS);
  await sleep(500);
  victim.child.kill('SIGKILL');
  await waitForWorker(gateway, victim.url, (w) => !w.ready || w.breaker === 'open', 10_000);
  await sleep(500);
  const result = await load.stop();
  await waitForIdle(gateway.url);
  const after = await scrapeMetrics(gateway.url);
  t.diagnostic(`${result.sent} requests: ${tally(result.statuses)}`);

  // (a) Only requests already on their way to the victim may fail, as the gateway's 502/503.
  assert.ok(result.sent > 50, 'the load was running');
  assert.ok(result.failures.length <= LOOPS, `at most the requests in flight fail: ${JSON.stringify(result.failures)}`);
  expectOnly(result, ['GW_ERR_UPSTREAM_BROKEN', 'GW_ERR_UPSTREAM_UNREACHABLE', 'GW_ERR_NO_WORKER']);
  // (b) The victim died of the signal, nothing else did, and the gateway still serves.
  await waitFor(() => victim.child.signalCode !== null, 5000);
  assert.equal(victim.child.signalCode, 'SIGKILL');
  await assertAlive(gateway, ...survivors);
  assert.equal((await see(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: IRIS_BODY })).status, 200);
  // (c) Every answer was counted, the victim's share included; it is out of the rotation; no lease is left.
  assert.equal(counted(before, after), result.sent, 'requests_total counts every answer');
  assert.ok(counted(before, after, { worker: victimId }) > 0, 'the victim served until it died');
  await waitFor(async () => (await scrapeMetrics(gateway.url)).sum('infergate_gateway_worker_ready', { worker: victimId }) === 0, 10_000);
  assert.equal(after.sum('infergate_gateway_inflight_requests'), 0);
});

test('a worker frozen with SIGSTOP under load, then resumed', { timeout: 120_000 }, async (t) => {
  const repo = await irisRepository(t);
  const [healthy, frozen] = await Promise.all([startWorker(t, repo), startWorker(t, repo)]);
  const gateway = await startConfiguredGateway(t, [healthy.url, frozen.url], { balancing: { strategy: 'round-robin' }, timeouts: { requestMs: 1000 } });
  const frozenId = await workerIdOf(gateway, frozen.url);
  const resume = (): void => {
    if (frozen.child.exitCode === null && frozen.child.signalCode === null) frozen.child.kill('SIGCONT');
  };
  t.after(resume); // never leave a stopped process behind
  const before = await scrapeMetrics(gateway.url);

  const load = loadFor(t, () => inferIris(gateway.url, {}, { signal: AbortSignal.timeout(HANG_MS) }), LOOPS);
  await sleep(300);
  frozen.child.kill('SIGSTOP');
  // Readiness checks time out: the gateway takes it out of the rotation while it is frozen.
  await waitFor(async () => (await scrapeMetrics(gateway.url)).sum('infergate_gateway_worker_ready', { worker: frozenId }) === 0, 10_000);
  await sleep(1000);
  resume();
  await waitForWorker(gateway, frozen.url, (w) => w.ready, 10_000);
  const result = await load.stop();
  await waitForIdle(gateway.url);
  const after = await scrapeMetrics(gateway.url);
  t.diagnostic(`${result.sent} requests: ${tally(result.statuses)}; slowest ${result.worstMs.toFixed(0)} ms`);

  // (a) The requests caught on the frozen worker end at the deadline with 504; the rest are served.
  assert.ok((result.statuses[504] ?? 0) > 0, 'some requests were caught by the freeze');
  expectOnly(result, ['GW_ERR_DEADLINE_EXCEEDED']);
  assert.ok(result.worstMs < HANG_MS, 'no request hung');
  // (b) Both processes run and answer; the resumed worker serves again.
  await assertAlive(gateway, healthy, frozen);
  await waitFor(async () => (await inferIris(gateway.url)).headers.get('x-infergate-worker') === frozenId, 10_000, 20);
  // (c) Each 504 was counted as one; no lease was left behind by the aborted upstream requests.
  assert.equal(counted(before, after, { status: '504', worker: frozenId }), result.statuses[504]);
  assert.equal(counted(before, after), result.sent);
  assert.equal(after.sum('infergate_gateway_inflight_requests'), 0);
});

test('faulty workers under load: too slow, reset mid-body, refusing, all down', { timeout: 120_000 }, async (t) => {
  const only = (model: string, id: string): Promise<FaultUpstream> => startFaultUpstream(t, { id, models: [{ name: model, version: '1' }] });
  const [slow, torn, echoA, echoB] = await Promise.all([only('slow', 'slow'), only('torn', 'torn'), only('echo', 'echo-a'), only('echo', 'echo-b')]);
  const gateway = await startConfiguredGateway(t, [slow.url, torn.url, echoA.url, echoB.url], {
    balancing: { strategy: 'round-robin' },
    timeouts: { requestMs: 800 },
  });
  /** What the reset mid-body case sent, and what requests_total counted of it. */
  let tornCounts: { sent: number; counted: number } | undefined;
  /** Four loads on `model` until the breaker of `upstream` (its only worker) opens, and a little after. */
  const loadUntilBreakerOpens = async (upstream: FaultUpstream, model: string): Promise<{ before: MetricsScrape; result: LoadResult }> => {
    const id = await workerIdOf(gateway, upstream.url);
    const before = await scrapeMetrics(gateway.url);
    const load = loadFor(t, () => echo(gateway.url, model), 4);
    await waitFor(async () => (await scrapeMetrics(gateway.url)).delta(before, 'infergate_gateway_breaker_transitions_total', { worker: id, state: 'open' }) >= 1, 10_000);
    await sleep(300);
    const result = await load.stop();
    await waitForIdle(gateway.url);
    return { before, result };
  };

  await t.test('slower than the deadline: 504, the breaker opens, then 503 at once', async () => {
    await slow.setMode('delay', { delayMs: 3000 });
    const { before, result } = await loadUntilBreakerOpens(slow, 'slow');
    const after = await scrapeMetrics(gateway.url);
    t.diagnostic(`${result.sent} requests: ${tally(result.statuses)}`);
    // (a) 504 while the breaker judged it, 503 with Retry-After once it was open.
    assert.ok((result.statuses[504] ?? 0) >= 1 && (result.statuses[503] ?? 0) >= 1, tally(result.statuses));
    assert.equal(result.statuses[200], undefined);
    // (A request that waited while the breaker was half-open with its one trial under way is
    // GW_ERR_NO_WORKER too: no worker would take it, which is not GW_ERR_OVERLOADED's "all busy".)
    expectOnly(result, ['GW_ERR_DEADLINE_EXCEEDED', 'GW_ERR_NO_WORKER']);
    // (b) The gateway still answers; the worker is healthy again and gets its traffic back.
    await assertAlive(gateway);
    await slow.setMode('ok');
    await waitFor(async () => (await see(`${gateway.url}/v2/models/slow/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ECHO_BODY })).status === 200, 10_000, 50);
    // (c) The timeouts were counted as 504s of that worker; the aborted upstream requests left no lease.
    assert.equal(counted(before, after, { model: 'slow', status: '504' }), result.statuses[504]);
    assert.equal(after.sum('infergate_gateway_inflight_requests'), 0);
  });

  await t.test('reset mid-body: the client sees a broken response, the breaker opens', async () => {
    await torn.setMode('reset-mid-body');
    const { before, result } = await loadUntilBreakerOpens(torn, 'torn');
    const after = await scrapeMetrics(gateway.url);
    tornCounts = { sent: result.sent, counted: counted(before, after, { model: 'torn' }) };
    t.diagnostic(`${result.sent} requests: ${tally(result.statuses)}; ${tornCounts.counted} in requests_total`);
    // (a) A truncated body is never delivered as complete: the client's read fails (status 0 here),
    // or, once the breaker is open, 503 at once. Never a 200 with half a body.
    assert.equal(result.statuses[200], undefined, 'no truncated body passed for a whole one');
    assert.ok((result.statuses[0] ?? 0) >= 1, tally(result.statuses));
    for (const f of result.failures.filter((x) => x.status !== 0)) expectCatalogued(f.status, f.body, { codes: ['GW_ERR_NO_WORKER', 'GW_ERR_UPSTREAM_BROKEN'] });
    // (b) + (c) The gateway is up; every lease was released although the responses broke.
    await assertAlive(gateway);
    assert.equal((await scrapeMetrics(gateway.url)).sum('infergate_gateway_inflight_requests'), 0);
    await torn.setMode('ok');
  });

  await t.test('a response broken mid-body is counted in requests_total', () => {
    assert.ok(tornCounts !== undefined, 'the reset mid-body case ran');
    assert.equal(tornCounts.counted, tornCounts.sent, 'every request the clients sent to the broken worker is counted');
  });

  await t.test('connection refused on one of two workers: retried on the other', async () => {
    const before = await scrapeMetrics(gateway.url);
    const inferPath = '/v2/models/echo/infer';
    const load = loadFor(t, () => echo(gateway.url, 'echo'), 4);
    await sleep(200);
    await echoA.setMode('refuse');
    const refusedAt = echoA.requestsTo(inferPath);
    await waitForWorker(gateway, echoA.url, (w) => !w.ready, 10_000);
    await sleep(300);
    const result = await load.stop();
    await waitForIdle(gateway.url);
    const after = await scrapeMetrics(gateway.url);
    t.diagnostic(`${result.sent} requests: ${tally(result.statuses)}; retries ${after.delta(before, 'infergate_gateway_retries_total', { reason: 'connect' })}`);
    // (a) Only a request already written on a socket the worker closed may fail (502: it may have
    // run); one that could not connect was retried on the other worker.
    assert.ok(result.failures.length <= 4, JSON.stringify(result.failures));
    expectOnly(result, ['GW_ERR_UPSTREAM_BROKEN']);
    // (b) Nothing reached the refusing worker; the gateway is up.
    assert.equal(echoA.requestsTo(inferPath), refusedAt);
    await assertAlive(gateway);
    // (c) The retries were counted, and each request once.
    assert.ok(after.delta(before, 'infergate_gateway_retries_total', { reason: 'connect' }) >= 1, 'retries counted');
    assert.equal(counted(before, after, { model: 'echo' }), result.sent);
  });

  await t.test('every worker down: 503 with Retry-After at once, then served again when one is back', async () => {
    await echoB.setMode('refuse');
    await waitForWorker(gateway, echoB.url, (w) => !w.ready, 10_000);
    const before = await scrapeMetrics(gateway.url);
    const replies = await Promise.all(Array.from({ length: 20 }, () => see(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ECHO_BODY })));
    const after = await scrapeMetrics(gateway.url);
    // (a) 503, Retry-After, and no waiting for the deadline: there is nobody to wait for.
    for (const r of replies) {
      expectCatalogued(r.status, r.body, { codes: ['GW_ERR_NO_WORKER', 'GW_ERR_UPSTREAM_UNREACHABLE'] });
      assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
      assert.ok(r.ms < 800, `answered before the 800 ms deadline could pass: ${r.ms.toFixed(0)} ms`);
    }
    // (c) Counted as 503s with no worker.
    assert.equal(counted(before, after, { model: 'echo', status: '503' }), replies.length);
    // (b) One worker back: the gateway finds it and serves again.
    await echoB.setMode('ok');
    await waitFor(async () => (await see(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ECHO_BODY })).status === 200, 10_000, 50);
    await assertAlive(gateway);
    await echoA.setMode('ok');
  });
});

test('a worker flapping 100 times down/up and 300 times out of the pool and back leaks no heap, sockets, handles or listeners', { timeout: 300_000 }, async (t) => {
  /** Down and up again, as the brief for this case asks; then out of the pool and back, which makes a new breaker each time. */
  const DOWN_UP = 100;
  const OUT_IN = 300;
  const WARM_UP = 20;
  const stable = await startFaultUpstream(t, { id: 'stable' });
  const flapper = await startFaultUpstream(t, { id: 'flapper' });
  const gateway = await startConfiguredGateway(t, [stable.url, flapper.url], {
    balancing: { strategy: 'round-robin' },
    // Notice each flap within one check: the point is many transitions, quickly. A refused
    // connection fails the check at once; the long timeout keeps a check that is merely slow on a
    // busy machine from taking the stable worker out too.
    health: { intervalMs: 50, timeoutMs: 2000, unhealthyThreshold: 1, healthyThreshold: 1 },
  }, { env: gcPreloadEnv() });
  const stderr = captureStderr(gateway);
  const flapperId = await workerIdOf(gateway, flapper.url);

  /** Down (refusing) until the gateway sees it, then up until the gateway takes it back. */
  const flapDown = async (): Promise<void> => {
    await flapper.setMode('refuse');
    await waitForWorker(gateway, flapper.url, (w) => !w.ready, 10_000);
    await flapper.setMode('ok');
    await waitForWorker(gateway, flapper.url, (w) => w.ready, 10_000);
  };
  /** Out of the pool and back in through the admin API: a new upstream, breaker, agent and checks each time. */
  const flapMembership = async (): Promise<void> => {
    const removed = await gateway.admin(`/admin/workers/${flapperId}`, { method: 'DELETE' });
    assert.equal(removed.status, 204);
    const added = await gateway.admin('/admin/workers', { method: 'POST', body: JSON.stringify({ url: flapper.url }) });
    assert.equal(added.status, 201, await added.text());
    await waitForWorker(gateway, flapper.url, (w) => w.ready, 10_000);
  };
  const measure = async (): Promise<{ heap: number; handles: number; sockets: number; fds: number }> => {
    await waitForIdle(gateway.url);
    const heap = await heapAfterGc(gateway, 'infergate_gateway_');
    const m = await scrapeMetrics(gateway.url);
    return {
      heap,
      handles: m.sum('infergate_gateway_nodejs_active_handles_total'),
      sockets: m.sum('infergate_gateway_nodejs_active_handles', { type: 'Socket' }),
      fds: m.sum('infergate_gateway_process_open_fds'),
    };
  };
  const send = (): Promise<Response> => echo(gateway.url, 'echo');

  // Warm up every path (lazy allocations, JIT, pools, metric series), so the baseline is a steady state.
  let load = loadFor(t, send, 4);
  for (let i = 0; i < WARM_UP; i++) {
    await flapDown();
    await flapMembership();
  }
  const warmUp = await load.stop();
  const baseline = await measure();

  load = loadFor(t, send, 4);
  for (let i = 0; i < DOWN_UP; i++) await flapDown();
  const downUp = await load.stop();
  const middle = await measure();
  const before = await scrapeMetrics(gateway.url);
  load = loadFor(t, send, 4);
  for (let i = 0; i < OUT_IN; i++) await flapMembership();
  const outIn = await load.stop();
  const end = await measure();
  const after = await scrapeMetrics(gateway.url);
  const result = merge(warmUp, downUp, outIn);
  const mb = (n: number): string => (n / 1048576).toFixed(2);
  t.diagnostic(`${DOWN_UP + OUT_IN + 2 * WARM_UP} flaps under load, ${result.sent} requests: ${tally(result.statuses)}`);
  t.diagnostic(`baseline → after ${DOWN_UP} down/up flaps → after ${OUT_IN} out/in flaps: heap after GC ${mb(baseline.heap)} → ${mb(middle.heap)} → ${mb(end.heap)} MB; handles ${baseline.handles} → ${middle.handles} → ${end.handles}; sockets ${baseline.sockets} → ${middle.sockets} → ${end.sockets}; fds ${baseline.fds} → ${middle.fds} → ${end.fds}`);

  // (a) Requests caught on the flapper as it went down fail as the gateway's own errors; most succeed.
  assert.ok((result.statuses[200] ?? 0) > result.sent / 2, tally(result.statuses));
  expectOnly(result, ['GW_ERR_UPSTREAM_BROKEN', 'GW_ERR_UPSTREAM_UNREACHABLE']);
  // (b) Up, serving, and no warning of a listener leak or an unhandled rejection.
  await assertAlive(gateway);
  assertNoWarnings(stderr(), 'the gateway');
  // (c) Nothing grew with the number of flaps. Each out/in flap makes a new breaker and agent
  // (about 10 KB together, measured with --expose-gc): leaking them would add 3 MB over 300 flaps,
  // while the drift seen without a leak (late warm-up, collector noise) stays near 1 MB.
  // A socket or handle per flap would add hundreds; a few come and go with the load's connections.
  assert.ok(end.heap - baseline.heap < 2 * 1048576, `heap grew by ${mb(end.heap - baseline.heap)} MB`);
  assert.ok(end.handles - baseline.handles <= 8, `handles ${baseline.handles} → ${end.handles}`);
  assert.ok(end.sockets - baseline.sockets <= 8, `sockets ${baseline.sockets} → ${end.sockets}`);
  assert.ok(end.fds - baseline.fds <= 8, `open fds ${baseline.fds} → ${end.fds}`);
  // The flapper came back into the rotation each time; one breaker per worker in the pool remains.
  assert.ok(after.delta(before, 'infergate_gateway_requests_total', { worker: flapperId, status: '200' }) > 0, 'the flapper served between flaps');
  assert.deepEqual(after.labelValues('infergate_gateway_breaker_state', 'worker').sort(), (await adminWorkers(gateway)).map((w) => w.id).sort());
  assert.equal(after.sum('infergate_gateway_worker_ready'), 2);
});

/** The counts of several loads together. */
function merge(...results: LoadResult[]): LoadResult {
  const out: LoadResult = { sent: 0, failures: [], statuses: {}, worstMs: 0 };
  for (const r of results) {
    out.sent += r.sent;
    out.failures.push(...r.failures);
    out.worstMs = Math.max(out.worstMs, r.worstMs);
    for (const [status, n] of Object.entries(r.statuses)) out.statuses[status] = (out.statuses[status] ?? 0) + n;
  }
  return out;
}
