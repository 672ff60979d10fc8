// A worker under more load than it can compute: liveness still answers (inference is off the event
// loop), deadlines give 504, a full queue gives 503 + Retry-After, a client that goes away frees its
// place, and SIGTERM drains in-flight requests before exiting.
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_MODELS, startWorker, waitFor, type RunningProcess } from '../../helpers/processes.ts';
import { metricSum } from '../../helpers/metrics.ts';
import { SLOW_WIDTH, writeSlowModel } from '../../helpers/slow-model.ts';

const ROWS = 16;
const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [ROWS, SLOW_WIDTH], data: new Array(ROWS * SLOW_WIDTH).fill(0.5) }] });

async function infer(worker: RunningProcess, model: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; json: any; headers: Headers }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await fetch(`${worker.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, ...(signal ? { signal } : {}) });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

async function slowWorker(t: import('node:test').TestContext): Promise<RunningProcess> {
  const repo = await mkdtemp(join(tmpdir(), 'infergate-overload-'));
  t.after(() => rm(repo, { recursive: true, force: true }));
  await writeSlowModel(repo, 'slow', 200, { maxBatchSize: ROWS });
  await writeSlowModel(repo, 'tiny-queue', 200, { maxBatchSize: ROWS, maxQueueSize: 2 });
  await writeSlowModel(repo, 'short-timeout', 400, { maxBatchSize: ROWS, queueTimeoutMs: 100 });
  return startWorker(t, repo);
}

test('overload behaviour of one worker', async (t) => {
  const worker = await slowWorker(t);
  const [alone, runMs] = await timed(() => infer(worker, 'slow'));
  assert.equal(alone.status, 200);

  await t.test('liveness answers while the model is saturated, faster than one inference', async () => {
    const flood = Array.from({ length: 12 }, () => infer(worker, 'slow'));
    const probes: number[] = [];
    let sawQueue = false;
    for (let i = 0; i < 20; i++) {
      const [res, ms] = await timed(() => fetch(`${worker.url}/v2/health/live`));
      assert.equal(res.status, 200);
      sawQueue ||= Number(res.headers.get('x-infergate-queue-depth')) > 0;
      probes.push(ms);
      await new Promise((r) => setTimeout(r, 20));
    }
    const results = await Promise.all(flood);
    assert.ok(results.every((r) => r.status === 200));
    assert.ok(sawQueue, 'the model queue was non-empty during the probes');
    probes.sort((a, b) => a - b);
    const p90 = probes[Math.floor(probes.length * 0.9)]!;
    // Were inference on the event loop, a probe would wait out the run in progress (runMs).
    assert.ok(p90 < runMs, `liveness p90 ${p90.toFixed(1)} ms should be below one inference (${runMs.toFixed(1)} ms)`);
  });

  await t.test('a caller deadline shorter than the queue wait gives 504', async () => {
    const ahead = [infer(worker, 'slow'), infer(worker, 'slow')];
    const [late, ms] = await timed(() => infer(worker, 'slow', { 'x-infergate-timeout-ms': String(Math.max(20, Math.round(runMs / 4))) }));
    assert.equal(late.status, 504);
    assert.equal(late.json.code, 'WK_ERR_DEADLINE_EXCEEDED');
    assert.ok(ms < runMs * 2, 'answered at its deadline, not after the queue drained');
    await Promise.all(ahead);
  });

  await t.test('the model queue timeout gives 504', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => infer(worker, 'short-timeout')));
    assert.ok(results.some((r) => r.status === 504 && r.json.code === 'WK_ERR_DEADLINE_EXCEEDED'));
    assert.ok(results.some((r) => r.status === 200));
  });

  await t.test('a full queue gives 503 with Retry-After', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => infer(worker, 'tiny-queue')));
    const refused = results.filter((r) => r.status === 503);
    assert.ok(refused.length >= 1, 'some requests were refused');
    for (const r of refused) {
      assert.equal(r.json.code, 'WK_ERR_QUEUE_FULL');
      assert.match(r.headers.get('retry-after') ?? '', /^\d+$/);
    }
    assert.ok(results.some((r) => r.status === 200));
  });

  await t.test('a client that disconnects leaves no request behind', async () => {
    const aborter = new AbortController();
    const ahead = [infer(worker, 'slow'), infer(worker, 'slow')];
    const gone = infer(worker, 'slow', {}, aborter.signal).catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 20));
    aborter.abort();
    assert.ok((await gone) instanceof Error);
    await Promise.all(ahead);
    await waitFor(async () => (await metricSum(worker.url, 'infergate_worker_inflight_requests')) === 0 && (await metricSum(worker.url, 'infergate_worker_queue_depth')) === 0, 5000);
  });
});

/**
 * Starts an inference whose body is only half sent. Resolves `accepted` once the worker has handed
 * the request to its handler (it answers `Expect: 100-continue` in that same step), then sends the
 * rest of the body when `finish` is called.
 */
function halfSentInfer(worker: RunningProcess, model: string): { accepted: Promise<void>; finish(): void; response: Promise<{ status: number; json: any }> } { // eslint-disable-line @typescript-eslint/no-explicit-any
  const bytes = Buffer.from(body);
  const half = Math.floor(bytes.length / 2);
  const req = httpRequest(`${worker.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': String(bytes.length), expect: '100-continue' },
  });
  const accepted = once(req, 'continue').then(() => {
    req.write(bytes.subarray(0, half));
  });
  // A reset connection is an outcome to report (status 0), not an unhandled rejection.
  const response = new Promise<{ status: number; json: any }>((resolve) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    req.once('error', (err) => resolve({ status: 0, json: { error: err.message } }));
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).once('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
  });
  req.flushHeaders();
  return { accepted, finish: () => req.end(bytes.subarray(half)), response };
}

test('SIGTERM: readiness fails, in-flight requests finish, then the process exits 0', async (t) => {
  const worker = await slowWorker(t);
  // Requests the worker has accepted but whose bodies are still arriving when the drain starts: it
  // must not release the model under them.
  const inflight = Array.from({ length: 3 }, () => halfSentInfer(worker, 'slow'));
  await Promise.all(inflight.map((r) => r.accepted));
  worker.child.kill('SIGTERM');
  await waitFor(() => worker.logs.some((l) => /^draining/.test(String(l.msg))), 10_000, 10);
  for (const r of inflight) r.finish();
  const results = await Promise.all(inflight.map((r) => r.response));
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200], JSON.stringify(results.map((r) => r.json.error ?? 'ok')));
  const code = await worker.stop(10_000);
  assert.equal(code, 0);
});

test('SIGTERM with --drain-delay-ms: readiness fails at once while requests are still served, then it exits', async (t) => {
  const worker = await startWorker(t, DEMO_MODELS, { args: ['--drain-delay-ms', '1500'] });
  worker.child.kill('SIGTERM');
  await waitFor(async () => (await fetch(`${worker.url}/v2/health/ready`)).status === 503, 1000, 20);
  const res = await fetch(`${worker.url}/v2/models/iris/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] }),
  });
  assert.equal(res.status, 200, 'still serving during the drain delay');
  assert.equal(await worker.stop(10_000), 0);
});
