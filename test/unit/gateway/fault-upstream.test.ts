/**
 * The fault-injection upstream (test/helpers/fault-upstream.ts) does what each mode promises, so
 * gateway tests built on it fail for the gateway's faults, not the fixture's.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, test } from 'node:test';
import { startFaultUpstream, type FaultUpstream } from '../../helpers/fault-upstream.ts';

const INFER = '/v2/models/echo/infer';
const INFER_BODY = { id: 'req-1', inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [3], data: [1, 2.5, -3] }] };

function infer(upstream: FaultUpstream, init: RequestInit = {}): Promise<Response> {
  return fetch(upstream.url + INFER, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(INFER_BODY), ...init });
}

/** The error code under a rejected fetch (`TypeError: fetch failed`, cause carries the socket error). */
async function fetchFailure(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    return cause?.code ?? (err as Error).name;
  }
  assert.fail('expected the request to fail');
}

/** A GET on a fresh connection (no pooled keep-alive socket), resolving to the status or the socket error code. */
function freshGet(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

describe('mode ok: a minimal worker', () => {
  test('live, ready, repository index and model metadata, with the worker headers', async (t) => {
    const upstream = await startFaultUpstream(t, { id: 'w-ok', queueDepth: 3 });
    assert.match(upstream.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(upstream.mode, 'ok');

    const live = await fetch(`${upstream.url}/v2/health/live`);
    assert.equal(live.status, 200);
    assert.equal(live.headers.get('x-infergate-worker'), 'w-ok');
    assert.equal(live.headers.get('x-infergate-queue-depth'), '3');
    assert.deepEqual(await live.json(), { live: true });

    assert.equal((await fetch(`${upstream.url}/v2/health/ready`)).status, 200);

    const index = await fetch(`${upstream.url}/v2/repository/index`, { method: 'POST', body: '{"ready":true}', headers: { 'content-type': 'application/json' } });
    assert.deepEqual(await index.json(), [{ name: 'echo', version: '1', state: 'READY', reason: '' }]);

    for (const path of ['/v2/models/echo', '/v2/models/echo/versions/1']) {
      const metadata = await fetch(upstream.url + path);
      assert.equal(metadata.status, 200);
      assert.deepEqual(((await metadata.json()) as { name: string; versions: string[] }).versions, ['1']);
    }
    assert.equal((await fetch(`${upstream.url}/v2/models/echo/ready`)).status, 200);
  });

  test('inference echoes the inputs as a V2 response, and the request id back', async (t) => {
    const upstream = await startFaultUpstream(t);
    const res = await infer(upstream, { headers: { 'content-type': 'application/json', 'x-request-id': 'abc-123' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-request-id'), 'abc-123');
    assert.equal(res.headers.get('x-infergate-worker'), upstream.id);
    assert.equal(res.headers.get('x-infergate-queue-depth'), '0');
    assert.deepEqual(await res.json(), { model_name: 'echo', model_version: '1', id: 'req-1', outputs: INFER_BODY.inputs });
  });

  test('errors in the worker\'s shape: unknown model, unknown version, bad JSON, unknown route', async (t) => {
    const upstream = await startFaultUpstream(t);
    const cases: Array<[string, RequestInit, number, string]> = [
      ['/v2/models/nope/infer', { method: 'POST', body: '{}' }, 404, 'WK_ERR_MODEL_NOT_FOUND'],
      ['/v2/models/echo/versions/9/infer', { method: 'POST', body: '{}' }, 404, 'WK_ERR_VERSION_NOT_FOUND'],
      [INFER, { method: 'POST', body: '{not json' }, 400, 'ERR_BAD_JSON'],
      ['/elsewhere', {}, 404, 'ERR_NOT_FOUND'],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await fetch(upstream.url + path, init);
      assert.equal(res.status, status, path);
      assert.equal(((await res.json()) as { code: string }).code, code, path);
    }
  });

  test('serves the model versions it is given', async (t) => {
    const upstream = await startFaultUpstream(t, { models: [{ name: 'iris', version: '1' }, { name: 'iris', version: '2' }] });
    const res = await fetch(`${upstream.url}/v2/models/iris/infer`, { method: 'POST', body: JSON.stringify(INFER_BODY) });
    assert.equal(((await res.json()) as { model_version: string }).model_version, '2'); // latest when unversioned
    assert.equal((await fetch(`${upstream.url}/v2/models/echo`)).status, 404);
  });

  test('counts requests per path, and in total', async (t) => {
    const upstream = await startFaultUpstream(t);
    await (await infer(upstream)).text();
    await (await infer(upstream)).text();
    await (await fetch(`${upstream.url}/v2/health/ready?probe=1`)).text();
    assert.equal(upstream.requestsTo(INFER), 2);
    assert.equal(upstream.requestsTo('/v2/health/ready'), 1);
    assert.equal(upstream.requestsTo('/v2/health/live'), 0);
    assert.equal(upstream.requests, 3);
  });

  test('the reported queue depth can be changed', async (t) => {
    const upstream = await startFaultUpstream(t);
    upstream.setQueueDepth(17);
    assert.equal((await infer(upstream)).headers.get('x-infergate-queue-depth'), '17');
  });
});

describe('faults', () => {
  test('delay: answers normally after delayMs; health stays prompt (scope infer)', async (t) => {
    const upstream = await startFaultUpstream(t);
    await upstream.setMode('delay', { delayMs: 150 });
    const started = performance.now();
    const health = fetch(`${upstream.url}/v2/health/ready`).then((r) => ({ status: r.status, at: performance.now() - started }));
    const res = await infer(upstream);
    const elapsed = performance.now() - started;
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { id: string }).id, 'req-1');
    assert.ok(elapsed >= 140, `answered after ${elapsed.toFixed(0)} ms`); // timers may round down by a ms or so
    const h = await health;
    assert.equal(h.status, 200);
    assert.ok(h.at < elapsed, `health answered after ${h.at.toFixed(0)} ms, inference after ${elapsed.toFixed(0)} ms`);
  });

  test('refuse: connections are refused; ok listens again on the same port', async (t) => {
    const upstream = await startFaultUpstream(t);
    const { port } = upstream;
    assert.equal(await freshGet(`${upstream.url}/v2/health/live`), 200);
    await upstream.setMode('refuse');
    assert.equal(await freshGet(`${upstream.url}/v2/health/live`), 'ECONNREFUSED');
    assert.equal(await fetchFailure(fetch(`${upstream.url}/v2/health/live`)), 'ECONNREFUSED');
    const before = upstream.requests;
    await upstream.setMode('ok');
    assert.equal(upstream.port, port);
    assert.equal(await freshGet(`${upstream.url}/v2/health/live`), 200);
    assert.equal(upstream.requests, before + 1); // refused connections never counted
  });

  test('stall: the request arrives and is never answered; the client times out', async (t) => {
    const upstream = await startFaultUpstream(t);
    await upstream.setMode('stall');
    const failure = await fetchFailure(infer(upstream, { signal: AbortSignal.timeout(150) }));
    assert.equal(failure, 'TimeoutError');
    assert.equal(upstream.requestsTo(INFER), 1);
    assert.equal((await fetch(`${upstream.url}/v2/health/ready`)).status, 200); // scope infer: health unaffected
  });

  test('stall with scope all: health checks hang too, as with a hung process', async (t) => {
    const upstream = await startFaultUpstream(t);
    await upstream.setMode('stall', { scope: 'all' });
    assert.equal(await fetchFailure(fetch(`${upstream.url}/v2/health/ready`, { signal: AbortSignal.timeout(100) })), 'TimeoutError');
  });

  test('reset-before-response: the connection is reset, no response at all', async (t) => {
    const upstream = await startFaultUpstream(t);
    await upstream.setMode('reset-before-response');
    assert.equal(await fetchFailure(infer(upstream)), 'ECONNRESET');
    assert.equal(upstream.requestsTo(INFER), 1);
    await upstream.setMode('ok');
    assert.equal((await infer(upstream)).status, 200);
  });

  test('reset-mid-body: status and headers arrive, then the body is cut short', async (t) => {
    const upstream = await startFaultUpstream(t);
    await upstream.setMode('reset-mid-body');
    const res = await infer(upstream);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-infergate-worker'), upstream.id);
    const declared = Number(res.headers.get('content-length'));
    assert.ok(declared > 0);
    // Reading the body fails: the stream ends before content-length bytes ("terminated").
    await assert.rejects(res.arrayBuffer(), (err: Error) => {
      assert.equal(err.name, 'TypeError');
      assert.match(err.message, /terminated/);
      return true;
    });
  });

  test('5xx: a 500 with a JSON error body in the worker\'s shape', async (t) => {
    const upstream = await startFaultUpstream(t);
    await upstream.setMode('5xx');
    const res = await infer(upstream);
    assert.equal(res.status, 500);
    assert.equal(res.headers.get('x-infergate-worker'), upstream.id);
    const body = (await res.json()) as { error: string; code: string };
    assert.equal(body.code, 'ERR_INTERNAL');
    assert.equal(typeof body.error, 'string');
    assert.equal((await fetch(`${upstream.url}/v2/health/ready`)).status, 200);
  });

  test('not-ready: live, but readiness 503, nothing READY in the index, inference 503', async (t) => {
    const upstream = await startFaultUpstream(t, { mode: 'not-ready' });
    assert.equal((await fetch(`${upstream.url}/v2/health/live`)).status, 200);
    const ready = await fetch(`${upstream.url}/v2/health/ready`);
    assert.equal(ready.status, 503);
    assert.equal(ready.headers.get('retry-after'), '1');
    const index = await fetch(`${upstream.url}/v2/repository/index`, { method: 'POST', body: '{"ready":true}' });
    assert.deepEqual(await index.json(), []);
    const res = await infer(upstream);
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { code: string }).code, 'WK_ERR_MODEL_NOT_READY');
    await upstream.setMode('ok');
    assert.equal((await fetch(`${upstream.url}/v2/health/ready`)).status, 200);
  });

  test('close ends stalled requests and is idempotent; setMode afterwards throws', async () => {
    const upstream = await startFaultUpstream(undefined, { mode: 'stall' });
    const pending = fetchFailure(infer(upstream));
    while (upstream.requests === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await upstream.close();
    await upstream.close();
    assert.ok(['UND_ERR_SOCKET', 'ECONNRESET'].includes((await pending)!), 'the stalled client sees its socket closed');
    await assert.rejects(upstream.setMode('ok'), /closed/);
  });
});
