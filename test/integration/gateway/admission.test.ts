// Admission control under overload with real processes: a gateway in front of two slow workers
// (fault upstreams answering after a delay), offered ten times what their in-flight caps admit.
// The excess must be refused with 503 + Retry-After without waiting for a slot, every admitted
// request must succeed, waiters must leave the queue when their client goes, and the in-flight
// counts must return to 0. Counts, not timings: nothing here depends on how fast the machine is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../../helpers/processes.ts';
import { metricSum } from '../../helpers/metrics.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { startConfiguredGateway } from './support.ts';

const INFER = '/v2/models/echo/infer';
/** Long enough that every request of a burst reaches the gateway while the first ones are still in the workers. */
const SERVICE_MS = 1500;

function echoRequest(value: number): string {
  return JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [value] }] });
}

interface Answer {
  status: number;
  retryAfter: string | null;
  requestId: string | null;
  body: { error?: string; code?: string; request_id?: string; outputs?: Array<{ data: number[] }> };
  /** Position of this answer among all answers, in arrival order. */
  order: number;
}

test('at 10x capacity the excess is refused with 503 + Retry-After at once, every admitted request succeeds, in-flight returns to 0', async (t) => {
  const workers = await Promise.all(['slow-a', 'slow-b'].map((id) => startFaultUpstream(t, { id, mode: 'delay', delayMs: SERVICE_MS })));
  const cap = 2;
  const maxQueued = 4;
  const gateway = await startConfiguredGateway(t, workers.map((w) => w.url), {
    limits: { maxInFlightPerWorker: cap, maxQueued, queueWaitMs: 3 * SERVICE_MS },
    timeouts: { requestMs: 20_000 },
  });
  const capacity = cap * workers.length;
  const offered = 10 * capacity;
  let arrived = 0;
  const answers = await Promise.all(Array.from({ length: offered }, async (_, i): Promise<Answer> => {
    const res = await fetch(`${gateway.url}${INFER}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': `burst-${i}` }, body: echoRequest(i) });
    const body = (await res.json()) as Answer['body'];
    return { status: res.status, retryAfter: res.headers.get('retry-after'), requestId: res.headers.get('x-request-id'), body, order: arrived++ };
  }));

  const admitted = answers.filter((a) => a.status === 200);
  const refused = answers.filter((a) => a.status === 503);
  assert.equal(admitted.length + refused.length, offered, `only 200 and 503, got ${JSON.stringify(answers.filter((a) => a.status !== 200 && a.status !== 503).map((a) => a.body))}`);
  // At most the workers' slots plus the queue can be inside the gateway at once: the rest of the burst is refused.
  assert.ok(refused.length >= offered - capacity - maxQueued, `${refused.length} refused of ${offered}`);
  assert.ok(admitted.length >= capacity, `${admitted.length} admitted: the workers' slots are used`);
  for (const a of refused) {
    assert.equal(a.body.code, 'GW_ERR_OVERLOADED');
    assert.equal(typeof a.body.error, 'string');
    assert.equal(a.body.request_id, a.requestId);
    assert.ok(Number(a.retryAfter) >= 1, 'a refusal says when to come back');
  }
  // Refused without waiting for a slot: every queue-full refusal came back before the first admitted
  // request, which needed a whole service time, could finish.
  const firstAdmitted = Math.min(...admitted.map((a) => a.order));
  const queueFull = await metricSum(gateway.url, 'infergate_gateway_admission_refusals_total', { reason: 'queue_full' });
  assert.ok(queueFull >= offered - capacity - maxQueued);
  assert.equal(refused.filter((a) => a.order < firstAdmitted).length, queueFull, 'queue-full refusals all answered before any admitted request ended');
  for (const a of admitted) {
    const sent = Number(a.requestId!.slice('burst-'.length));
    assert.deepEqual(a.body.outputs?.[0]?.data, [sent], 'each admitted request got its own answer');
  }
  // The excess never reached a worker; refusals are counted by reason.
  assert.equal(workers.reduce((n, w) => n + w.requestsTo(INFER), 0), admitted.length);
  const timedOut = await metricSum(gateway.url, 'infergate_gateway_admission_refusals_total', { reason: 'queue_timeout' });
  assert.equal(queueFull + timedOut, refused.length);
  await waitFor(async () => (await metricSum(gateway.url, 'infergate_gateway_inflight_requests')) === 0, 10_000);
  assert.equal(await metricSum(gateway.url, 'infergate_gateway_admission_queue_length'), 0);
});

test('a queued request whose client leaves, or whose deadline passes, leaves the queue; the slot goes to the next in line', async (t) => {
  const worker = await startFaultUpstream(t, { id: 'slow', mode: 'delay', delayMs: SERVICE_MS });
  const gateway = await startConfiguredGateway(t, [worker.url], {
    limits: { maxInFlightPerWorker: 1, maxQueued: 16, queueWaitMs: 10 * SERVICE_MS },
    timeouts: { requestMs: 30_000 },
  });
  const send = (value: number, init: RequestInit = {}, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${gateway.url}${INFER}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: echoRequest(value), ...init });
  const queueLength = (): Promise<number> => metricSum(gateway.url, 'infergate_gateway_admission_queue_length');

  const holder = send(0);
  await waitFor(async () => (await metricSum(gateway.url, 'infergate_gateway_inflight_requests')) === 1, 10_000);
  const aborts = Array.from({ length: 3 }, () => new AbortController());
  const leaving = aborts.map((c, i) => send(100 + i, { signal: c.signal }).catch((err: Error) => err));
  await waitFor(async () => (await queueLength()) === 3, 10_000);
  for (const c of aborts) c.abort();
  for (const outcome of await Promise.all(leaving)) assert.ok(outcome instanceof Error, 'the client gave up');
  await waitFor(async () => (await queueLength()) === 0, 10_000);
  assert.equal(await metricSum(gateway.url, 'infergate_gateway_admission_queue_seconds_count', { outcome: 'client_gone' }), 3);

  // A deadline shorter than the slot's wait: 504 from the queue, and the worker never sees it.
  const late = await send(7, {}, { 'x-infergate-timeout-ms': '200' });
  assert.equal(late.status, 504);
  assert.equal(((await late.json()) as { code: string }).code, 'GW_ERR_DEADLINE_EXCEEDED');

  // The next in line gets the slot when the holder's request ends: no slot was lost to the leavers.
  const next = send(42);
  await waitFor(async () => (await queueLength()) === 1, 10_000);
  assert.equal((await holder).status, 200);
  const answer = await next;
  assert.equal(answer.status, 200);
  assert.deepEqual(((await answer.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data, [42]);
  assert.equal(worker.requestsTo(INFER), 2, 'only the holder and the last request reached the worker');
  await waitFor(async () => (await metricSum(gateway.url, 'infergate_gateway_inflight_requests')) === 0, 10_000);
});
