// Hostile and careless clients, while well-behaved traffic flows: clients that disconnect mid-request,
// slowloris connections, oversized headers and bodies, compression bombs, deeply nested JSON, absurd
// tensor shapes and request-smuggling attempts. Each one gets a catalogued JSON error in bounded
// time or a closed connection, never a crash; the well-behaved traffic is served throughout; and the
// metrics say what happened (leases released, nothing hostile reached a worker, 4xx not held against
// a worker's breaker).
//
// test/integration/gateway/proxy.test.ts checks one smuggling request (CL+TE), one oversized header
// and body and the 415s one at a time; test/integration/worker/endpoints.test.ts a gzip bomb sent
// straight to a worker. These send the whole family through the gateway at once, under load.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { deflateSync, gzipSync } from 'node:zlib';
import { startFaultUpstream } from '../helpers/fault-upstream.ts';
import type { RunningLoad } from '../helpers/load.ts';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { startWorker, waitFor } from '../helpers/processes.ts';
import { IRIS_BODY, inferIris, irisRepository, nodeRequest, parseRawResponse, rawExchange, startConfiguredGateway, startRecorder, workerIdOf } from '../integration/gateway/support.ts';
import { HANG_MS, type CataloguedOptions, type Seen, assertAlive, loadFor, expectCatalogued, see, tally, waitForIdle } from './support.ts';

const GATEWAY_BODY_LIMIT = 64 * 1024;
const WORKER_BODY_LIMIT = 1024 * 1024;
const HEADERS_LIMIT = 8 * 1024;
const CLIENT_HEADERS_MS = 1000;
const STALL_BODY = JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1], data: [1] }] });

test('hostile clients while normal traffic flows', { timeout: 240_000 }, async (t) => {
  const repo = await irisRepository(t);
  const worker = await startWorker(t, repo, { args: ['--body-limit-bytes', String(WORKER_BODY_LIMIT)] });
  const stalling = await startFaultUpstream(t, { id: 'stalling', models: [{ name: 'stall', version: '1' }], mode: 'stall' });
  const recorder = await startRecorder(t, stalling.url);
  const gateway = await startConfiguredGateway(t, [worker.url, recorder.url], {
    limits: { bodyBytes: GATEWAY_BODY_LIMIT, maxHeaderBytes: HEADERS_LIMIT },
    timeouts: { clientHeadersMs: CLIENT_HEADERS_MS, clientRequestMs: 2 * CLIENT_HEADERS_MS },
  });
  const workerId = await workerIdOf(gateway, worker.url);
  const infer = (init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Seen> =>
    see(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', body: IRIS_BODY, ...init, headers: { 'content-type': 'application/json', ...init.headers } });
  /** Well-behaved traffic: 4 loops of iris inferences, stopped when the subtest `st` ends, whatever happens. */
  const background = (st: TestContext): RunningLoad => loadFor(st, () => inferIris(gateway.url, {}, { signal: AbortSignal.timeout(HANG_MS) }), 4);
  /** The well-behaved traffic was all served. */
  const assertServed = async (load: RunningLoad): Promise<number> => {
    const result = await load.stop();
    assert.ok(result.sent > 0, 'the background load ran');
    assert.deepEqual(result.failures, [], `every well-behaved request was served (${tally(result.statuses)})`);
    return result.sent;
  };
  /** Worker-side inference requests counted, all outcomes. */
  const workerRequests = async (): Promise<number> => (await scrapeMetrics(worker.url)).sum('infergate_worker_requests_total');

  await t.test('clients that disconnect mid-request: the upstream requests are aborted, every lease released', async (st) => {
    const N = 20;
    const stallId = await workerIdOf(gateway, recorder.url);
    const before = await scrapeMetrics(gateway.url);
    const abortedBefore = recorder.aborted;
    const seenBefore = recorder.seen.filter((r) => r.path === '/v2/models/stall/infer').length;
    const load = background(st);
    const controllers = Array.from({ length: N }, () => new AbortController());
    const pending = controllers.map((c) => fetch(`${gateway.url}/v2/models/stall/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: STALL_BODY, signal: c.signal }).then(() => 'answered', (err: Error) => err.name));
    await waitFor(async () => (await scrapeMetrics(gateway.url)).sum('infergate_gateway_inflight_requests', { worker: stallId }) === N, 10_000);
    for (const c of controllers) c.abort();
    // (a) The clients gave up; the others were served all along.
    assert.deepEqual(new Set(await Promise.all(pending)), new Set(['AbortError']));
    await assertServed(load);
    // (c) Well before the 30 s deadline, the gateway let go of every one: in-flight back to 0, and
    // each upstream request was cut (the recorder saw its connection closed before the response).
    await waitForIdle(gateway.url, 10_000);
    const reached = (): number => recorder.seen.filter((r) => r.path === '/v2/models/stall/infer').length - seenBefore;
    // (The recorder counts every path; a health check cut short now and then adds to it.)
    await waitFor(() => recorder.aborted - abortedBefore >= reached(), 10_000);
    t.diagnostic(`${N} clients gone: ${reached()} of their requests had reached the worker, ${recorder.aborted - abortedBefore} cut`);
    assert.ok(reached() > 0);
    const after = await scrapeMetrics(gateway.url);
    assert.equal(after.delta(before, 'infergate_gateway_breaker_transitions_total', { worker: stallId }), 0, 'a client going away is not the worker\'s fault');
    // (b)
    await assertAlive(gateway, worker);
  });

  await t.test('slowloris: connections trickling their headers do not starve anyone, and leave nothing behind', async (st) => {
    const N = 50;
    const fdsBefore = (await scrapeMetrics(gateway.url)).sum('infergate_gateway_process_open_fds');
    const slow = await Promise.all(Array.from({ length: N }, () => trickle(gateway.url)));
    st.after(() => slow.forEach((c) => c.socket.destroy()));
    const load = background(st);
    await sleep(1500);
    // (c) The gateway holds the slow connections open (it has not been fooled into dropping them early)...
    const fdsDuring = (await scrapeMetrics(gateway.url)).sum('infergate_gateway_process_open_fds');
    assert.ok(fdsDuring >= fdsBefore + N / 2, `open fds ${fdsBefore} → ${fdsDuring} with ${N} slow connections`);
    // (a) ...while every well-behaved request is served.
    await assertServed(load);
    for (const s of slow) s.socket.destroy();
    // (c) ...and releases every one of them once gone.
    await waitFor(async () => (await scrapeMetrics(gateway.url)).sum('infergate_gateway_process_open_fds') <= fdsBefore + 4, 10_000);
    await assertAlive(gateway);
  });

  await t.test('slowloris: a connection still sending headers after clientHeadersMs is closed', async (st) => {
    const slow = await trickle(gateway.url);
    st.after(() => slow.socket.destroy());
    // Bounded: the limit plus generous slack for a loaded machine, far below Node's 30 s check period.
    const closed = await Promise.race([slow.closed, sleep(CLIENT_HEADERS_MS + 4000).then(() => undefined)]);
    slow.socket.destroy();
    assert.ok(closed !== undefined, `still open ${CLIENT_HEADERS_MS + 4000} ms later (timeouts.clientHeadersMs is ${CLIENT_HEADERS_MS})`);
    const parsed = parseRawResponse(closed);
    if (parsed.status !== 0) expectCatalogued(parsed.status, parsed.body, { codes: ['ERR_BAD_REQUEST'] });
  });

  await t.test('oversized headers and bodies: 431 and 413, never reaching the worker', async (st) => {
    const big = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [5000, 4], data: new Array(20_000).fill(1.25) }] });
    assert.ok(big.length > GATEWAY_BODY_LIMIT);
    const before = await scrapeMetrics(gateway.url);
    const workerBefore = await workerRequests();
    const load = background(st);
    const headers = await Promise.all(Array.from({ length: 10 }, () => rawExchange(gateway.url, `POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Padding: ${'a'.repeat(2 * HEADERS_LIMIT)}\r\nContent-Length: ${IRIS_BODY.length}\r\n\r\n${IRIS_BODY}`, HANG_MS)));
    const manyHeaders = await rawExchange(gateway.url, `GET /v2/health/live HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 2000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`, HANG_MS);
    const declared = await Promise.all(Array.from({ length: 10 }, () => nodeRequest(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(big.length) }, body: big })));
    const streamed = await Promise.all(Array.from({ length: 10 }, () => nodeRequest(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, body: big })));
    const served = await assertServed(load);
    // (a) JSON errors of the catalogue; an oversized header block also closes the connection.
    for (const r of [...headers, manyHeaders]) {
      assert.ok(r.closed, 'the connection is closed');
      const parsed = parseRawResponse(r.response);
      expectCatalogued(parsed.status, parsed.body, { codes: ['ERR_HEADERS_TOO_LARGE'] });
    }
    for (const r of [...declared, ...streamed]) expectCatalogued(r.status, r.body, { codes: ['ERR_BODY_TOO_LARGE'] });
    // (c) The 413s were counted; the worker saw only the well-behaved requests.
    const after = await scrapeMetrics(gateway.url);
    assert.equal(after.delta(before, 'infergate_gateway_requests_total', { status: '413' }), 20);
    assert.equal(await workerRequests() - workerBefore, served, 'nothing oversized reached the worker');
    await assertAlive(gateway, worker);
  });

  await t.test('compression bombs and broken encodings: 413 or 400 in bounded time, the worker\'s memory bounded', async (st) => {
    // 50 MB of spaces compress to ~50 KB: under the gateway's 64 KiB limit (it forwards bodies as
    // they came), so the worker inflates them and must stop at its own 1 MiB limit.
    const inflated = Buffer.alloc(50 * 1024 * 1024, 0x20);
    const gzipBomb = gzipSync(inflated, { level: 9 });
    const deflateBomb = deflateSync(inflated, { level: 9 });
    assert.ok(gzipBomb.length < GATEWAY_BODY_LIMIT && deflateBomb.length < GATEWAY_BODY_LIMIT);
    const rssBefore = (await scrapeMetrics(worker.url)).sum('infergate_worker_process_resident_memory_bytes');
    const load = background(st);
    const cases: Array<{ name: string; body: Buffer; encoding: string; codes: CataloguedOptions['codes'] }> = [
      { name: 'gzip bomb', body: gzipBomb, encoding: 'gzip', codes: ['ERR_BODY_TOO_LARGE'] },
      { name: 'deflate bomb', body: deflateBomb, encoding: 'deflate', codes: ['ERR_BODY_TOO_LARGE'] },
      { name: 'gzip bomb, gzipped again', body: gzipSync(gzipBomb), encoding: 'gzip', codes: ['ERR_BAD_JSON', 'ERR_BAD_REQUEST', 'ERR_BODY_TOO_LARGE'] },
      { name: 'stacked encodings', body: gzipSync(gzipSync(Buffer.from(IRIS_BODY))), encoding: 'gzip, gzip', codes: ['ERR_UNSUPPORTED_MEDIA_TYPE'] },
      { name: 'truncated gzip', body: gzipSync(Buffer.from(IRIS_BODY)).subarray(0, 20), encoding: 'gzip', codes: ['ERR_BAD_REQUEST'] },
      { name: 'plain text claiming gzip', body: Buffer.from(IRIS_BODY), encoding: 'gzip', codes: ['ERR_BAD_REQUEST'] },
      { name: 'unknown encoding', body: Buffer.from(IRIS_BODY), encoding: 'br', codes: ['ERR_UNSUPPORTED_MEDIA_TYPE'] },
    ];
    const replies = await Promise.all(cases.flatMap((c) => Array.from({ length: 3 }, async () => ({ c, r: await infer({ body: new Uint8Array(c.body), headers: { 'content-encoding': c.encoding } }) }))));
    await assertServed(load);
    // (a)
    for (const { c, r } of replies) {
      assert.ok(r.status >= 400, `${c.name}: ${r.status}`);
      expectCatalogued(r.status, r.body, { codes: c.codes });
    }
    // (c) Nine bombs of 50 MB each at once, and the worker grew by far less than one of them:
    // it stopped inflating each at its 1 MiB limit.
    const rssAfter = (await scrapeMetrics(worker.url)).sum('infergate_worker_process_resident_memory_bytes');
    t.diagnostic(`worker RSS ${(rssBefore / 1048576).toFixed(1)} → ${(rssAfter / 1048576).toFixed(1)} MB after ${replies.length} hostile bodies`);
    assert.ok(rssAfter - rssBefore < inflated.length, `worker RSS grew by ${((rssAfter - rssBefore) / 1048576).toFixed(1)} MB`);
    await assertAlive(gateway, worker);
  });

  await t.test('deeply nested JSON and absurd shapes: 400 with the right code, not held against the worker', async (st) => {
    const tensor = (fields: Record<string, unknown>): string => JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4], ...fields }] });
    const deep = (n: number): string => `${'['.repeat(n)}1${']'.repeat(n)}`;
    const bodies: Array<[string, string]> = [
      // As deep as the gateway's 64 KiB body limit lets them be.
      ['data nested 30 000 deep', `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"data":${deep(30_000)}}]}`],
      ['object nested 10 000 deep', `{"id":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)},"inputs":[]}`],
      ['shape 1e9 × 1e9', tensor({ shape: [1e9, 1e9] })],
      ['shape 2^53 rows', tensor({ shape: [2 ** 53, 4] })],
      ['negative dimension', tensor({ shape: [-1, 4] })],
      ['fractional dimension', tensor({ shape: [1.5, 4] })],
      ['100 dimensions', tensor({ shape: new Array(100).fill(1) })],
      ['string dimensions', tensor({ shape: ['1', '4'] })],
      ['shape not an array', tensor({ shape: 4 })],
      ['empty batch', tensor({ shape: [0, 4], data: [] })],
      ['rows over maxBatchSize', tensor({ shape: [65, 4], data: new Array(260).fill(1) })],
      ['element count mismatch', tensor({ data: [1, 2, 3] })],
      ['unknown datatype', tensor({ datatype: 'FP128' })],
      ['non-numeric data', tensor({ data: ['a', {}, null, []] })],
      ['500 inputs', JSON.stringify({ inputs: Array.from({ length: 500 }, (_, i) => ({ name: `in${i}`, datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] })) })],
      ['inputs not an array', '{"inputs":{"features":[1,2,3,4]}}'],
      ['truncated JSON', '{"inputs":[{"name":"features"'],
      ['JSON with a BOM and garbage', '\ufeff{"inputs":[]} trailing'],
      ['not JSON at all', '\u0000\u0001\u0002'],
    ];
    // Request parameters are free-form in V2: deep ones may be ignored (200) or refused (400), never a crash.
    const deepParameters = `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"parameters":{"p":${deep(30_000)}}}`;
    const before = await scrapeMetrics(gateway.url);
    const load = background(st);
    const lenient = await infer({ body: deepParameters });
    if (lenient.status !== 200) expectCatalogued(lenient.status, lenient.body, { codes: ['ERR_BAD_REQUEST'] });
    for (const [name, body] of bodies) assert.ok(body.length < GATEWAY_BODY_LIMIT, `${name} fits the body limit`);
    const replies = await Promise.all(bodies.map(async ([name, body]) => ({ name, r: await infer({ body }) })));
    await assertServed(load);
    for (const { name, r } of replies) {
      assert.equal(r.status, 400, `${name}: ${r.status} ${r.body.slice(0, 200)}`);
      expectCatalogued(r.status, r.body, { codes: ['ERR_BAD_JSON', 'ERR_BAD_REQUEST', 'WK_ERR_BAD_TENSOR', 'WK_ERR_BATCH_TOO_LARGE'] });
    }
    // (c) The 400s were counted, and the client's mistakes did not count against the worker.
    const after = await scrapeMetrics(gateway.url);
    assert.equal(after.delta(before, 'infergate_gateway_requests_total', { status: '400' }), bodies.length + (lenient.status === 400 ? 1 : 0));
    assert.equal(after.delta(before, 'infergate_gateway_breaker_transitions_total', { worker: workerId }), 0);
    await assertAlive(gateway, worker);
  });

  await t.test('request smuggling attempts: 400 JSON or a closed connection, one response at most, nothing reaches a worker', async (st) => {
    const body = IRIS_BODY;
    const hidden = 'GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n';
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const head = 'POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
    const attempts: Array<[string, string]> = [
      ['CL.TE', `${head}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}${hidden}`],
      ['TE.CL', `${head}Transfer-Encoding: chunked\r\nContent-Length: ${chunked.length + hidden.length}\r\n\r\n${chunked}${hidden}`],
      ['two Content-Lengths', `${head}Content-Length: 4\r\nContent-Length: ${body.length}\r\n\r\n${body}`],
      ['two Transfer-Encodings', `${head}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${chunked}${hidden}`],
      ['obfuscated Transfer-Encoding', `${head}Transfer-Encoding: xchunked\r\n\r\n${chunked}${hidden}`],
      ['chunked, then identity', `${head}Transfer-Encoding: chunked, identity\r\n\r\n${chunked}${hidden}`],
      ['space before the colon', `${head}Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n${chunked}${hidden}`],
      ['obs-fold', `${head}Transfer-Encoding:\r\n chunked\r\n\r\n${chunked}${hidden}`],
      ['bad chunk size', `${head}Transfer-Encoding: chunked\r\n\r\nzz\r\n${body}\r\n0\r\n\r\n`],
      ['chunk size overflow', `${head}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n${body}\r\n0\r\n\r\n`],
      ['bare LF line endings', `${head.replace(/\r\n/g, '\n')}Content-Length: 4\nTransfer-Encoding: chunked\n\n${chunked}${hidden}`],
      ['negative Content-Length', `${head}Content-Length: -1\r\n\r\n${body}`],
      ['NUL in a header', `${head}X-A: a\u0000b\r\nContent-Length: ${body.length}\r\n\r\n${body}`],
    ];
    const workerBefore = await workerRequests();
    const load = background(st);
    const replies = await Promise.all(attempts.map(async ([name, text]) => ({ name, r: await rawExchange(gateway.url, text, HANG_MS) })));
    const served = await assertServed(load);
    for (const { name, r } of replies) {
      // (a) Closed, with at most one answer, which is a 400 JSON error when there is one.
      assert.ok(r.closed, `${name}: the connection was closed`);
      assert.ok((r.response.match(/HTTP\/1\.1 \d{3}/g)?.length ?? 0) <= 1, `${name}: the hidden request was not answered:\n${r.response}`);
      const parsed = parseRawResponse(r.response);
      if (r.response.length > 0) expectCatalogued(parsed.status, parsed.body, { codes: ['ERR_BAD_REQUEST'] });
    }
    // (c) The worker saw the well-behaved requests and nothing else.
    assert.equal(await workerRequests() - workerBefore, served, 'no smuggled or malformed request reached the worker');
    await assertAlive(gateway, worker);
  });
});

interface Trickle {
  socket: Socket;
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<string>;
}

/** A slowloris connection: a request line, then one header line every 200 ms, never the end of the headers. */
async function trickle(url: string): Promise<Trickle> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = '';
  socket.setEncoding('latin1').on('data', (chunk: string) => { received += chunk; });
  socket.on('error', () => undefined);
  socket.write('POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n');
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write('X-Slow: y\r\n');
  }, 200);
  const closed = new Promise<string>((resolve) => socket.once('close', () => {
    clearInterval(timer);
    resolve(received);
  }));
  return { socket, closed };
}
