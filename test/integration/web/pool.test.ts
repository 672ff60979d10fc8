// The pool dashboard's data from a real gateway in front of real workers: rolling figures that
// agree with the traffic the test sent (which worker served what, as X-Infergate-Worker said, and
// which failed), the event stream reflecting strategy switches and drains, streams cleaned up after
// 50 connects and disconnects (seen in the gateway's own metrics), and the web pages' headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { metricSum } from '../../helpers/metrics.ts';
import { startGateway, startWorker, waitFor } from '../../helpers/processes.ts';
import { CONTENT_SECURITY_POLICY } from '../../../gateway/web/web-routes.ts';
import { inferIris, irisRepository } from '../gateway/support.ts';

interface Figures { reqPerSec: number; errorsPerSec: number; p50Ms: number | null; p99Ms: number | null }
interface Snapshot {
  time: number;
  strategy: string;
  strategies: string[];
  totals: Figures & { inFlight: number };
  workers: Array<Figures & { id: string; url: string; ready: boolean; draining: boolean; breaker: string; inFlight: number }>;
}

/** Reads `event: pool` snapshots from an open stream. */
function eventReader(body: ReadableStream<Uint8Array>): () => Promise<Snapshot> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return async () => {
    for (;;) {
      const match = /event: pool\ndata: (.*)\n\n/.exec(buffer);
      if (match !== null) {
        buffer = buffer.slice(match.index + match[0].length);
        return JSON.parse(match[1]!) as Snapshot;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      buffer += decoder.decode(value, { stream: true });
    }
  };
}

const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

test('the pool dashboard\'s figures and stream', async (t) => {
  const repo = await irisRepository(t);
  const [first, second] = await Promise.all([startWorker(t, repo), startWorker(t, repo)]);
  const failing = await startFaultUpstream(t, { mode: '5xx' });
  const gateway = await startGateway(t, [first.url, second.url, failing.url], { args: ['--strategy', 'round-robin'] });
  const pool = async (): Promise<Snapshot> => {
    const res = await gateway.admin('/admin/pool');
    assert.equal(res.status, 200);
    return (await res.json()) as Snapshot;
  };
  const stream = (signal?: AbortSignal): Promise<Response> => fetch(`${gateway.adminUrl}/admin/pool/stream`, { headers: { authorization: `Bearer ${gateway.adminToken}` }, ...(signal && { signal }) });

  await t.test('per-worker rates, errors and latencies agree with the traffic sent', async () => {
    const served = new Map<string, number>();
    for (let i = 0; i < 24; i++) {
      const res = await inferIris(gateway.url);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const worker = res.headers.get('x-infergate-worker')!;
      served.set(worker, (served.get(worker) ?? 0) + 1);
    }
    const failed = 3; // under the breaker's volume threshold: every one reaches the failing worker
    for (let i = 0; i < failed; i++) {
      const res = await fetch(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs":[]}' });
      assert.equal(res.status, 500);
      await res.body?.cancel();
    }
    assert.equal(served.size, 2, 'round-robin used both iris workers');
    const failingId = (await pool()).workers.find((w) => w.url === failing.url)!.id;
    const counts = new Map([...served, [failingId, failed]]);
    const total = 24 + failed;

    // Once every request sits in the window's complete seconds, each worker's share of the rate is
    // its share of the requests, exactly (rate = count / the same window span for all).
    let snapshot: Snapshot | undefined;
    await waitFor(async () => {
      snapshot = await pool();
      const { totals, workers } = snapshot;
      if (totals.reqPerSec === 0) return false;
      const byId = new Map(workers.map((w) => [w.id, w]));
      return [...counts].every(([id, n]) => close(byId.get(id)!.reqPerSec / totals.reqPerSec, n / total))
        && close(totals.errorsPerSec / totals.reqPerSec, failed / total);
    }, 20_000, 200);
    const { totals, workers } = snapshot!;
    const failingWorker = workers.find((w) => w.id === failingId)!;
    assert.ok(close(failingWorker.errorsPerSec, failingWorker.reqPerSec), 'every request to the failing worker was an error');
    for (const w of workers.filter((x) => x.id !== failingId)) assert.equal(w.errorsPerSec, 0);
    assert.ok(close(workers.reduce((s, w) => s + w.reqPerSec, 0), totals.reqPerSec), 'the totals are the workers\' sum: every request had a worker');
    for (const w of [...workers, totals]) {
      assert.ok(w.p50Ms !== null && w.p99Ms !== null && w.p50Ms > 0 && w.p50Ms <= w.p99Ms, JSON.stringify(w));
    }
    assert.equal(totals.inFlight, 0);
  });

  await t.test('the stream: a snapshot at once, then one per second reflecting strategy switches and drains', async () => {
    const aborter = new AbortController();
    const res = await stream(aborter.signal);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const next = eventReader(res.body!);
    const initial = await next();
    assert.equal(initial.strategy, 'round-robin');
    assert.ok(initial.strategies.includes('peak-ewma'));
    assert.deepEqual(initial.workers.map((w) => w.url).sort(), [first.url, second.url, failing.url].sort());

    assert.equal((await gateway.admin('/admin/strategy', { method: 'PUT', body: JSON.stringify({ strategy: 'peak-ewma' }) })).status, 200);
    const target = initial.workers.find((w) => w.url === first.url)!.id;
    assert.equal((await gateway.admin(`/admin/workers/${target}/drain`, { method: 'POST' })).status, 200);
    let seen: Snapshot;
    do seen = await next(); while (seen.strategy !== 'peak-ewma' || !seen.workers.find((w) => w.id === target)!.draining);
    assert.ok(seen.time > initial.time);
    assert.equal((await gateway.admin(`/admin/workers/${target}/undrain`, { method: 'POST' })).status, 200);
    aborter.abort();
  });

  await t.test('50 connects and disconnects: no stream left open in the gateway', async () => {
    const open = (): Promise<number> => metricSum(gateway.url, 'infergate_gateway_pool_streams');
    await waitFor(async () => (await open()) === 0, 10_000);
    for (let i = 0; i < 50; i++) {
      const aborter = new AbortController();
      const res = await stream(aborter.signal);
      await eventReader(res.body!)();
      if (i % 10 === 0) assert.equal(await open(), 1, 'the open stream is counted');
      aborter.abort();
    }
    await waitFor(async () => (await open()) === 0, 10_000);
    const refused = await fetch(`${gateway.adminUrl}/admin/pool/stream`);
    assert.equal(refused.status, 401, 'the stream needs the admin token');
    await refused.body?.cancel();
  });

  await t.test('the pages come with the Content-Security-Policy and security headers on both ports', async () => {
    for (const base of [gateway.url, gateway.adminUrl]) {
      const page = await fetch(`${base}/ui/index.html`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      assert.equal(page.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
      assert.equal(page.headers.get('x-frame-options'), 'DENY');
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
      assert.ok(!/<script(?![^>]*\ssrc=)[^>]*>|\son[a-z]+\s*=/i.test(await page.text()), 'no inline script or event-handler attribute in the page');
      const redirect = await fetch(`${base}/`, { redirect: 'manual' });
      assert.equal(redirect.status, 302);
      assert.equal(redirect.headers.get('location'), '/ui/');
    }
  });
});

test('an open stream does not hold a stopping gateway: it ends, and the gateway exits cleanly', async (t) => {
  // A gateway of its own: its only connection is the stream's (an aborted fetch can leave a spare
  // connection that never sends a request, which the process's drain waits for; see the report).
  const gateway = await startGateway(t, [], { waitForWorkers: false });
  const res = await fetch(`${gateway.adminUrl}/admin/pool/stream`, { headers: { authorization: `Bearer ${gateway.adminToken}` } });
  const next = eventReader(res.body!);
  await next();
  // Were the stream not ended, the gateway would wait for timeouts.requestMs (30 s) before closing
  // connections, and stop() would SIGKILL it after 20 s: the exit status tells which happened.
  const exited = gateway.stop(20_000);
  await assert.rejects(async () => { for (;;) await next(); }, /the stream ended/);
  assert.equal(await exited, 0);
});
