// Every balancing strategy through a real gateway in front of three real workers, and switching
// the strategy at run time (admin API, config-file change, SIGHUP) under load with no failed
// request. The spread is read from X-Infergate-Worker on each response.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, waitFor, type RunningGateway } from '../../helpers/processes.ts';
import { startLoad, type LoadResult } from '../../helpers/load.ts';
import { STRATEGY_NAMES } from '../../../gateway/balancing/registry.ts';
import { adminWorkers, inferIris, irisRepository, mergeConfig, FAST_CONFIG, sleep, startConfiguredGateway, writeConfig } from './support.ts';

async function currentStrategy(gateway: RunningGateway): Promise<string> {
  return ((await (await gateway.admin('/admin/strategy')).json()) as { strategy: string }).strategy;
}

async function setStrategy(gateway: RunningGateway, strategy: string): Promise<Response> {
  return gateway.admin('/admin/strategy', { method: 'PUT', body: JSON.stringify({ strategy }) });
}

/** Sends `total` inference requests, `concurrency` at a time, and counts them per serving worker. */
async function spread(gateway: RunningGateway, total: number, concurrency: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next++;
      const res = await inferIris(gateway.url);
      const body = await res.text();
      assert.equal(res.status, 200, body);
      const worker = res.headers.get('x-infergate-worker');
      assert.ok(worker, 'every proxied response names its worker');
      counts.set(worker, (counts.get(worker) ?? 0) + 1);
    }
  }));
  return counts;
}

function assertNoFailures(result: LoadResult, what: string): void {
  assert.ok(result.sent > 50, `${what}: load was running (${result.sent} requests)`);
  assert.deepEqual(result.failures, [], `${what}: no failed request out of ${result.sent}`);
}

test('balancing strategies with three real workers', async (t) => {
  const repo = await irisRepository(t);
  const workers = await Promise.all([startWorker(t, repo), startWorker(t, repo), startWorker(t, repo)]);
  // Workers listed in the file (not --workers) so that a reload can change their weights. Health
  // checks get a generous timeout: a worker dropped by a slow check would skew the exact counts.
  const config = {
    workers: workers.map((w) => ({ url: w.url, weight: 1 })),
    // A short EWMA decay: peak-EWMA shuns a worker after one slow response (a GC pause, a busy CI
    // machine) until its estimate decays; with the default 10 s that could starve it for the
    // whole ~1 s of the conformance check below, which asserts that every worker gets a share.
    balancing: { strategy: 'p2c', ewmaDecayMs: 200 },
    health: { timeoutMs: 2000 },
  };
  const gateway = await startConfiguredGateway(t, [], config, { waitForWorkers: false });
  await waitFor(async () => {
    const list = await adminWorkers(gateway);
    return list.length === 3 && list.every((w) => w.ready);
  }, 30_000);
  const ids = (await adminWorkers(gateway)).map((w) => w.id);
  const rewrite = (extra: Record<string, unknown>): Promise<string> => writeConfig(gateway.configPath, mergeConfig(FAST_CONFIG, mergeConfig(config, extra)));

  // The conformance part: the same checks for every strategy by name.
  for (const name of STRATEGY_NAMES) {
    await t.test(`${name}: every request succeeds and every worker takes a share`, async () => {
      const res = await setStrategy(gateway, name);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { strategy: name });
      assert.equal(await currentStrategy(gateway), name);
      if (name === 'round-robin') {
        // Sequential requests over a fixed list of 3: an exact rotation, so exactly a third each.
        const counts = await spread(gateway, 3000, 1);
        assert.deepEqual(ids.map((id) => counts.get(id) ?? 0), [1000, 1000, 1000]);
      } else {
        // A share, not a proportion: least-connections and the latency-aware strategies may
        // legitimately favour a worker, but none may starve one over 300 requests.
        const counts = await spread(gateway, 300, 4);
        assert.equal([...counts.values()].reduce((a, b) => a + b, 0), 300);
        for (const id of ids) assert.ok((counts.get(id) ?? 0) > 0, `${name}: worker ${id} got no request (${JSON.stringify([...counts])})`);
      }
    });
  }

  await t.test('weighted-round-robin follows the weights from the config file', async () => {
    await setStrategy(gateway, 'round-robin');
    await rewrite({ workers: workers.map((w, i) => ({ url: w.url, weight: i + 1 })), balancing: { strategy: 'weighted-round-robin' } });
    await waitFor(async () => (await currentStrategy(gateway)) === 'weighted-round-robin', 5000);
    // A fresh smooth-WRR instance over weights 1:2:3 repeats with period 6: exactly 100/200/300.
    const counts = await spread(gateway, 600, 1);
    assert.deepEqual(ids.map((id) => counts.get(id) ?? 0), [100, 200, 300]);
    await rewrite({});
    await waitFor(async () => (await currentStrategy(gateway)) === 'p2c', 5000);
  });

  await t.test('swapped 10 times under load through the admin API, no failed request', async () => {
    const load = startLoad(() => inferIris(gateway.url), 8);
    const sequence = ['round-robin', 'random', 'least-connections', 'p2c', 'peak-ewma', 'weighted-round-robin', 'round-robin', 'peak-ewma', 'random', 'least-connections'];
    for (const name of sequence) {
      const res = await setStrategy(gateway, name);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      assert.equal(await currentStrategy(gateway), name);
      await sleep(60);
    }
    assertNoFailures(await load.stop(), 'admin swaps');
  });

  await t.test('an unknown strategy via the admin API is refused with 400 and the old one kept', async () => {
    const before = await currentStrategy(gateway);
    const res = await setStrategy(gateway, 'fastest');
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string; error: string };
    assert.equal(body.code, 'ERR_BAD_REQUEST');
    assert.match(body.error, /strategy/);
    assert.equal(await currentStrategy(gateway), before);
    const extra = await gateway.admin('/admin/strategy', { method: 'PUT', body: JSON.stringify({ strategy: 'random', extra: 1 }) });
    assert.equal(extra.status, 400, 'an unknown field is refused too');
    await extra.body?.cancel();
  });

  await t.test('editing the watched config file switches the strategy under load', async () => {
    await setStrategy(gateway, 'p2c');
    const load = startLoad(() => inferIris(gateway.url), 8);
    await rewrite({ balancing: { strategy: 'least-connections' } });
    await waitFor(async () => (await currentStrategy(gateway)) === 'least-connections', 5000);
    await sleep(200);
    assertNoFailures(await load.stop(), 'config-file swap');
    const switched = gateway.logs.find((l) => l.msg === 'balancing strategy switched' && l.to === 'least-connections' && l.source === 'config reload');
    assert.ok(switched, 'the switch is logged with its source');
  });

  await t.test('GET /admin/config shows the configuration in force after a reload', async () => {
    assert.equal(await currentStrategy(gateway), 'least-connections');
    const config = (await (await gateway.admin('/admin/config')).json()) as { balancing: { strategy: string }; limits: { bodyBytes: number } };
    assert.equal(config.balancing.strategy, 'least-connections', 'the reloaded file\'s strategy');
    // A change that needs a restart is reported, and not shown as if it were in force.
    const bodyBytes = config.limits.bodyBytes;
    const logsBefore = gateway.logs.length;
    await rewrite({ balancing: { strategy: 'least-connections' }, limits: { bodyBytes: bodyBytes + 1 } });
    await waitFor(() => gateway.logs.slice(logsBefore).some((l) => l.msg === 'config changes that take effect only after a restart'), 5000);
    const after = (await (await gateway.admin('/admin/config')).json()) as { limits: { bodyBytes: number } };
    assert.equal(after.limits.bodyBytes, bodyBytes, 'the body limit in force is still the old one');
  });

  await t.test('SIGHUP after editing switches the strategy under load', async () => {
    const load = startLoad(() => inferIris(gateway.url), 8);
    const logsBefore = gateway.logs.length;
    await rewrite({ balancing: { strategy: 'peak-ewma' } });
    // The file watcher polls every 500 ms; the signal normally wins. Either way the new strategy
    // must be in force, and the SIGHUP reload itself must be logged.
    gateway.child.kill('SIGHUP');
    await waitFor(async () => (await currentStrategy(gateway)) === 'peak-ewma', 5000);
    await waitFor(() => gateway.logs.slice(logsBefore).some((l) => l.msg === 'configuration reloaded' && l.why === 'SIGHUP'), 5000);
    await sleep(200);
    assertNoFailures(await load.stop(), 'SIGHUP swap');
    assert.equal(gateway.child.exitCode, null, 'SIGHUP does not stop the gateway');
  });

  await t.test('an unknown strategy in the config file is rejected and the old one kept', async () => {
    const logsBefore = gateway.logs.length;
    await rewrite({ balancing: { strategy: 'fastest' } });
    await waitFor(() => gateway.logs.slice(logsBefore).some((l) => l.msg === 'configuration reload rejected; the running configuration stays'), 5000);
    const rejected = gateway.logs.slice(logsBefore).find((l) => l.msg === 'configuration reload rejected; the running configuration stays')!;
    assert.match(String(rejected.err), /balancing\.strategy/);
    assert.equal(await currentStrategy(gateway), 'peak-ewma');
    const res = await inferIris(gateway.url);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    // A typo'd key is rejected the same way.
    const before = gateway.logs.length;
    await rewrite({ balancing: { strategyy: 'random' } });
    await waitFor(() => gateway.logs.slice(before).some((l) => l.msg === 'configuration reload rejected; the running configuration stays' && /strategyy/.test(String(l.err))), 5000);
    assert.equal(await currentStrategy(gateway), 'peak-ewma');
  });
});
