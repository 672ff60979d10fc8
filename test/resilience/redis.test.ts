// The rate-limit store failing under load, for a fail-open and a fail-closed gateway side by side,
// both reaching a real Redis through a TCP proxy (test/helpers/tcp-proxy.ts) that can slow, stall
// and reset the link: Redis killed and restarted empty; 500 ms of latency on the link; the link
// stalled, then reset. Each case checks what the clients saw (fail open: served; fail closed: 503
// GW_ERR_RATE_LIMIT_UNAVAILABLE with Retry-After — never a wait on Redis beyond the decision
// deadline), that every process is up, and that the fallback counter moved while the store was
// away and stood still once it was back.
//
// test/integration/gateway/shared-state.test.ts checks exactness across replicas and the key store
// through a kill and a SIGSTOP; test/integration/throttle/failover.test.ts the limiter alone.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadResult, RunningLoad } from '../helpers/load.ts';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { startWorker, waitFor, type RunningGateway } from '../helpers/processes.ts';
import { skipUnlessControllable, startRedis } from '../helpers/redis.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';
import { IRIS_BODY, inferIris, irisRepository, startConfiguredGateway } from '../integration/gateway/support.ts';
import { HANG_MS, assertAlive, expectCatalogued, loadFor, see, tally } from './support.ts';

const FALLBACKS = 'infergate_gateway_ratelimit_store_fallbacks_total';
const RECOVERED = 'rate-limit store answering again: shared limiting resumed';
const DEGRADED = 'rate-limit store unavailable: deciding locally (fail open) or refusing (fail closed)';
/**
 * redis.decisionDeadlineMs: above the default 50 ms so that a busy 2-core machine does not trip it
 * while Redis is healthy (see shared-state.test.ts), far below the 500 ms the link is slowed by.
 */
const DEADLINE_MS = 200;
const LINK_DELAY_MS = 500;

interface Side {
  name: 'open' | 'closed';
  gateway: RunningGateway;
}

test('the rate-limit store failing under load, fail open and fail closed', { timeout: 180_000 }, async (t) => {
  const redis = await startRedis(t, { spawn: true });
  if (skipUnlessControllable(t, redis)) return;
  const link = await startTcpProxy(t, redis.port);
  const repo = await irisRepository(t);
  const worker = await startWorker(t, repo);
  const start = async (policy: 'open' | 'closed'): Promise<Side> => ({
    name: policy,
    gateway: await startConfiguredGateway(t, [worker.url], {
      redis: { decisionDeadlineMs: DEADLINE_MS },
      // Anonymous callers on a plan too roomy to run out: every refusal here is the store's doing.
      auth: { anonymous: { enabled: true, plan: 'roomy' } },
      throttle: { onStoreFailure: policy, plans: { roomy: { ratePerSec: 1_000_000, burst: 1_000_000 } } },
    }, { args: ['--redis', `redis://127.0.0.1:${link.port}`] }),
  });
  const sides = await Promise.all([start('open'), start('closed')]);
  const [open, closed] = sides;
  const send = (side: Side) => (): Promise<Response> => inferIris(side.gateway.url, {}, { signal: AbortSignal.timeout(HANG_MS) });
  const loadBoth = (st: TestContext): RunningLoad[] => sides.map((s) => loadFor(st, send(s), 4));
  const fallbacks = async (side: Side): Promise<number> => (await scrapeMetrics(side.gateway.url)).sum(FALLBACKS);

  /** What each policy promises while the store is away. */
  const assertPolicies = (openResult: LoadResult, closedResult: LoadResult): void => {
    assert.deepEqual(openResult.failures, [], `fail open: every request served (${tally(openResult.statuses)})`);
    assert.ok((closedResult.statuses[503] ?? 0) > 0, `fail closed: refused while the store was away (${tally(closedResult.statuses)})`);
    for (const f of closedResult.failures) expectCatalogued(f.status, f.body, { codes: ['GW_ERR_RATE_LIMIT_UNAVAILABLE'] });
  };
  /** A fail-closed refusal says when to come back. */
  const assertRetryAfter = async (): Promise<void> => {
    const refused = await see(`${closed.gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: IRIS_BODY });
    if (refused.status === 200) return; // its cooldown let a probe through, and the store answered it
    expectCatalogued(refused.status, refused.body, { codes: ['GW_ERR_RATE_LIMIT_UNAVAILABLE'] });
    assert.match(refused.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
  };
  /**
   * Back to the shared store: each gateway's last word on it is that it answers again (it probes
   * the store after a cooldown, while requests keep coming), both serve, and no decision is made
   * without the store any more.
   */
  const assertRecovered = async (): Promise<void> => {
    for (const side of sides) {
      await waitFor(async () => {
        const reply = await see(`${side.gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: IRIS_BODY });
        const changes = side.gateway.logs.filter((l) => l.msg === RECOVERED || l.msg === DEGRADED);
        return reply.status === 200 && changes.at(-1)?.msg === RECOVERED;
      }, 10_000, 50);
    }
    // Ten requests in a row on each, every one served and decided by the store. Retried for a while:
    // on a machine saturated for longer than the decision deadline, a healthy store can still miss
    // it now and then (docs/throttling.md), which is the policy working, not the store missing.
    let last = '';
    await waitFor(async () => {
      const settled = await Promise.all(sides.map(fallbacks));
      const replies = await Promise.all(sides.flatMap((s) => Array.from({ length: 10 }, () => see(`${s.gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: IRIS_BODY }))));
      const now = await Promise.all(sides.map(fallbacks));
      last = `statuses ${replies.map((r) => r.status).join(',')}; fallbacks ${settled.join('/')} → ${now.join('/')}`;
      return replies.every((r) => r.status === 200) && now.every((n, i) => n === settled[i]);
    }, 20_000, 200).catch(() => assert.fail(`the store never decided ten requests in a row again: ${last}`));
    await assertAlive(open.gateway, closed.gateway, worker);
  };

  await t.test('Redis killed under load, then restarted empty', async (st) => {
    const before = await Promise.all(sides.map(fallbacks));
    const loads = loadBoth(st);
    await sleep(500);
    await redis.kill();
    await sleep(1000);
    await assertRetryAfter();
    await sleep(500);
    const during = await Promise.all(sides.map(fallbacks));
    await redis.restart();
    await assertRecovered();
    const [openResult, closedResult] = await Promise.all(loads.map((l) => l.stop())) as [LoadResult, LoadResult];
    t.diagnostic(`fail open: ${tally(openResult.statuses)}; fail closed: ${tally(closedResult.statuses)}; fallbacks ${before.join('/')} → ${during.join('/')}`);
    // (a) (the loads ran on through the recovery, checked above with (b) and (c))
    assertPolicies(openResult, closedResult);
    assert.ok((closedResult.statuses[200] ?? 0) > 0, 'fail closed served while the store was up');
    // (c) Each gateway counted the decisions it made (or refused) without the store.
    sides.forEach((s, i) => assert.ok(during[i]! > before[i]!, `${s.name}: fallbacks counted`));
  });

  await t.test(`${LINK_DELAY_MS} ms of latency on the Redis link: no request waits for it`, async (st) => {
    const before = await Promise.all(sides.map(fallbacks));
    link.setDelay(LINK_DELAY_MS);
    const loads = loadBoth(st);
    await sleep(2000);
    await assertRetryAfter();
    const [openResult, closedResult] = await Promise.all(loads.map((l) => l.stop())) as [LoadResult, LoadResult];
    const during = await Promise.all(sides.map(fallbacks));
    link.setDelay(0);
    t.diagnostic(`fail open: ${tally(openResult.statuses)}, slowest ${openResult.worstMs.toFixed(0)} ms; fail closed: ${tally(closedResult.statuses)}, slowest ${closedResult.worstMs.toFixed(0)} ms`);
    // (a) A decision that waited for Redis would take a whole round trip on the link (2 × 500 ms);
    // these are decided at the deadline instead, many per round trip.
    assertPolicies(openResult, closedResult);
    for (const [side, result] of [[open, openResult], [closed, closedResult]] as const) {
      assert.ok(result.sent > 2 * 4 * 2, `${side.name}: more requests than 4 loops could make waiting a round trip each (${result.sent} in 2 s)`);
    }
    // (c)
    sides.forEach((s, i) => assert.ok(during[i]! > before[i]!, `${s.name}: fallbacks counted`));
    await assertRecovered();
  });

  await t.test('the Redis link stalled, then reset', async (st) => {
    const before = await Promise.all(sides.map(fallbacks));
    const loads = loadBoth(st);
    await sleep(300);
    link.stall();
    await sleep(1500);
    await assertRetryAfter();
    const during = await Promise.all(sides.map(fallbacks));
    link.resetAll();
    link.resume();
    const [openResult, closedResult] = await Promise.all(loads.map((l) => l.stop())) as [LoadResult, LoadResult];
    t.diagnostic(`fail open: ${tally(openResult.statuses)}; fail closed: ${tally(closedResult.statuses)}`);
    // (a)
    assertPolicies(openResult, closedResult);
    // (c)
    sides.forEach((s, i) => assert.ok(during[i]! > before[i]!, `${s.name}: fallbacks counted`));
    // (b) The reset connections are made again; everything recovers.
    await assertRecovered();
  });
});
