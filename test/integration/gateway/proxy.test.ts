// The gateway as a proxy, with real processes: every public inference path reaches a real worker
// and comes back intact; what the gateway answers itself is answered from its pool view; the
// repository extension fans out to every worker; and the proxy hygiene of DESIGN.md — request ids,
// traceparent, no credentials or hop-by-hop headers upstream, X-Forwarded-For, X-Infergate-Worker,
// malformed and oversized requests refused with JSON. Headers the worker received are read from a
// recording pass-through in front of the fault upstream (which does not keep them itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import jwt from 'jsonwebtoken';
import { startWorker, startGateway, waitFor } from '../../helpers/processes.ts';
import { getJson, postJson } from '../../helpers/http.ts';
import { metricSum, scrapeMetrics } from '../../helpers/metrics.ts';
import { inferBinary, inferJson } from '../../helpers/v2-client.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { adminWorkers, inferIris, irisRepository, nodeRequest, parseRawResponse, rawExchange, startConfiguredGateway, startRecorder, IRIS_BODY } from './support.ts';

const ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]];
const FEATURES = { name: 'features', datatype: 'FP32' as const, shape: [2, 4], data: Float32Array.from(ROWS.flat()) };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JWT_SECRET = 'proxy-test-secret-0123456789abcdefghij';
const ECHO_BODY = JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [3], data: [1, 2, 3] }] });
const BODY_LIMIT = 4096;

test('the gateway in front of real workers', async (t) => {
  // house-price too, so that unloading iris leaves the workers ready (a worker with no model is not).
  const repo = await irisRepository(t, ['house-price']);
  const [first, second] = await Promise.all([startWorker(t, repo), startWorker(t, repo)]);
  const fault = await startFaultUpstream(t, { id: 'echo-worker' });
  const recorder = await startRecorder(t, fault.url);
  const gateway = await startConfiguredGateway(t, [first.url, second.url, recorder.url], {
    balancing: { strategy: 'round-robin' },
    limits: { bodyBytes: BODY_LIMIT },
  }, { env: { INFERGATE_JWT_SECRET: JWT_SECRET } });
  // A valid credential: the gateway must accept it, then never pass it on.
  const token = jwt.sign({ sub: 'tester', models: ['echo', 'iris'] }, JWT_SECRET, { algorithm: 'HS256', expiresIn: 600 });
  const workers = await adminWorkers(gateway);
  const idOf = (url: string): string => workers.find((w) => w.url === new URL(url).origin)!.id;
  const irisWorkers = new Set([idOf(first.url), idOf(second.url)]);
  const echoWorker = idOf(recorder.url);
  // The worker's own answer to the same request, to compare the proxied one with.
  const direct = await inferJson(first.url, 'iris', [FEATURES]);

  await t.test('V2 infer, without and with a version, returns what the worker computes', async () => {
    for (const version of [undefined, '1']) {
      const res = await inferJson(gateway.url, 'iris', [FEATURES], { id: 'req-7', ...(version ? { version } : {}) });
      assert.equal(res.status, 200);
      assert.equal(res.modelName, 'iris');
      assert.equal(res.modelVersion, '1');
      assert.equal(res.id, 'req-7', 'the V2 id is echoed');
      assert.deepEqual([...res.output('probabilities').data as Float32Array], [...direct.output('probabilities').data as Float32Array]);
      assert.ok(irisWorkers.has(res.headers.get('x-infergate-worker') ?? ''), 'the response names the worker that served it');
    }
  });

  await t.test('a gzip body passes through as it came and the worker inflates it', async () => {
    const res = await fetch(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(IRIS_BODY) });
    const body = (await res.json()) as { model_name: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.model_name, 'iris');
  });

  await t.test('binary tensor extension round trip', async () => {
    const res = await inferBinary(gateway.url, 'iris', [FEATURES]);
    assert.equal(res.status, 200);
    assert.ok(res.headers.get('inference-header-content-length'), 'binary outputs keep their header length');
    const out = res.output('probabilities');
    assert.ok(out.parameters?.binary_data_size !== undefined, 'the output came back as binary');
    assert.deepEqual(out.shape, [2, 3]);
    assert.deepEqual([...out.data as Float32Array], [...direct.output('probabilities').data as Float32Array]);
    // Binary in, JSON out: the request body is forwarded byte for byte.
    const mixed = await inferBinary(gateway.url, 'iris', [FEATURES], { binaryOutputs: false });
    assert.deepEqual([...mixed.output('probabilities').data as Float32Array], [...direct.output('probabilities').data as Float32Array]);
  });

  await t.test('TF-Serving :predict, status and metadata', async () => {
    for (const path of ['/v1/models/iris:predict', '/v1/models/iris/versions/1:predict']) {
      const rows = await postJson(gateway.url + path, { instances: ROWS });
      assert.equal(rows.status, 200, JSON.stringify(rows.body));
      assert.equal(rows.body.predictions.length, 2);
      assert.ok(irisWorkers.has(rows.headers.get('x-infergate-worker') ?? ''));
      const columns = await postJson(gateway.url + path, { inputs: { features: ROWS } });
      assert.equal(columns.status, 200);
      assert.deepEqual(columns.body.outputs, rows.body.predictions);
    }
    for (const path of ['/v1/models/iris', '/v1/models/iris/versions/1']) {
      const status = await getJson(gateway.url + path);
      assert.equal(status.status, 200);
      assert.equal(status.body.model_version_status[0].state, 'AVAILABLE');
      assert.ok(irisWorkers.has(status.headers.get('x-infergate-worker') ?? ''), 'TF status is proxied');
    }
    for (const path of ['/v1/models/iris/metadata', '/v1/models/iris/versions/1/metadata']) {
      const metadata = await getJson(gateway.url + path);
      assert.equal(metadata.status, 200, path);
      assert.equal(metadata.body.model_spec.name, 'iris');
      assert.ok(metadata.body.metadata.signature_def);
      // HEAD: the GET's status and headers, no body (RFC 9110 §9.3.2).
      const head = await fetch(gateway.url + path, { method: 'HEAD' });
      assert.equal(head.status, 200, `HEAD ${path}`);
      assert.equal(head.headers.get('content-type'), metadata.headers.get('content-type'));
      assert.ok(irisWorkers.has(head.headers.get('x-infergate-worker') ?? ''), 'HEAD is proxied too');
      assert.equal((await head.arrayBuffer()).byteLength, 0);
    }
  });

  await t.test('an absolute-form request target is served like its origin form (RFC 9112 §3.2.2)', async () => {
    const { response } = await rawExchange(gateway.url, `POST http://gateway.example${'/v2/models/iris/infer'} HTTP/1.1\r\nHost: gateway.example\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(IRIS_BODY)}\r\nConnection: close\r\n\r\n${IRIS_BODY}`);
    const answer = parseRawResponse(response);
    assert.equal(answer.status, 200, answer.body);
    assert.ok(irisWorkers.has(answer.headers['x-infergate-worker'] ?? ''));
    assert.equal((JSON.parse(answer.body) as { model_name: string }).model_name, 'iris');
  });

  await t.test('health, server metadata, model metadata and readiness answered by the gateway', async () => {
    const live = await getJson(`${gateway.url}/v2/health/live`);
    assert.equal(live.status, 200);
    assert.deepEqual(live.body, { live: true });
    const ready = await getJson(`${gateway.url}/v2/health/ready`);
    assert.equal(ready.status, 200);
    const server = await getJson(`${gateway.url}/v2`);
    assert.equal(server.status, 200);
    assert.equal(server.body.name, 'infergate');
    assert.ok(server.body.extensions.includes('binary_tensor_data'));
    assert.ok(server.body.extensions.includes('model_repository'));
    for (const path of ['/v2/models/iris', '/v2/models/iris/versions/1']) {
      const meta = await getJson(gateway.url + path);
      assert.equal(meta.status, 200, path);
      assert.equal(meta.body.name, 'iris');
      assert.deepEqual(meta.body.versions, ['1']);
      assert.deepEqual(meta.body.inputs, [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }]);
      assert.deepEqual(meta.body.outputs, [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }]);
    }
    for (const path of ['/v2/models/iris/ready', '/v2/models/iris/versions/1/ready', '/v2/models/echo/ready']) {
      const r = await getJson(gateway.url + path);
      assert.equal(r.status, 200, path);
      assert.equal(r.body.ready, true);
    }
  });

  await t.test('unknown model and version: 404 with the gateway codes', async () => {
    const cases: Array<[string, string, string]> = [
      ['GET', '/v2/models/nope', 'GW_ERR_MODEL_NOT_FOUND'],
      ['GET', '/v2/models/nope/ready', 'GW_ERR_MODEL_NOT_FOUND'],
      ['POST', '/v2/models/nope/infer', 'GW_ERR_MODEL_NOT_FOUND'],
      ['POST', '/v1/models/nope:predict', 'GW_ERR_MODEL_NOT_FOUND'],
      ['GET', '/v2/models/iris/versions/9', 'GW_ERR_VERSION_NOT_FOUND'],
      ['POST', '/v2/models/iris/versions/9/infer', 'GW_ERR_VERSION_NOT_FOUND'],
      ['POST', '/v1/models/iris/versions/9:predict', 'GW_ERR_VERSION_NOT_FOUND'],
      ['GET', '/no/such/route', 'ERR_NOT_FOUND'],
    ];
    for (const [method, path, code] of cases) {
      const res = await getJson(gateway.url + path, method === 'POST' ? { method, headers: { 'content-type': 'application/json' }, body: IRIS_BODY } : {});
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.body.code, code, `${method} ${path}`);
      assert.equal(typeof res.body.error, 'string');
      assert.equal(res.body.request_id, res.headers.get('x-request-id'), 'the error names the request');
    }
  });

  await t.test('repository index, unload and load fan out and report per worker', async () => {
    const index = await postJson(`${gateway.url}/v2/repository/index`, {});
    assert.equal(index.status, 200);
    const iris = index.body.find((e: { name: string }) => e.name === 'iris');
    assert.equal(iris.state, 'READY');
    assert.deepEqual(Object.keys(iris.workers).sort(), [...irisWorkers].sort(), 'the index says which worker has what');
    assert.ok(index.body.some((e: { name: string; workers: Record<string, string> }) => e.name === 'echo' && e.workers[echoWorker] === 'READY'));

    // Load and unload change what every worker serves: the admin token, even with anonymous access on.
    const asAdmin = { authorization: `Bearer ${gateway.adminToken}` };
    const refused = await postJson(`${gateway.url}/v2/repository/models/iris/unload`, {});
    assert.equal(refused.status, 401);
    assert.equal(refused.body.code, 'GW_ERR_UNAUTHENTICATED');
    const unload = await postJson(`${gateway.url}/v2/repository/models/iris/unload`, {}, asAdmin);
    assert.equal(unload.status, 200);
    assert.equal(unload.body.action, 'unload');
    assert.equal(unload.body.workers.length, 3, 'every worker was asked');
    for (const w of unload.body.workers) {
      if (irisWorkers.has(w.worker)) assert.deepEqual([w.status, w.ok], [200, true], JSON.stringify(w));
      else assert.equal(w.ok, false, 'the echo worker cannot unload iris, and says so');
    }
    assert.equal(unload.body.ok, false, 'ok only when every worker succeeded');
    const gone = await getJson(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: IRIS_BODY });
    assert.equal(gone.status, 404, 'unloaded everywhere: the gateway knows at once');
    assert.equal(gone.body.code, 'GW_ERR_MODEL_NOT_FOUND');

    const load = await postJson(`${gateway.url}/v2/repository/models/iris/load`, {}, asAdmin);
    assert.equal(load.status, 200);
    assert.equal(load.body.workers.filter((w: { ok: boolean }) => w.ok).length, 2);
    const back = await inferIris(gateway.url);
    assert.equal(back.status, 200, 'loaded again everywhere: served at once');
    await back.body?.cancel();
    const bogus = await postJson(`${gateway.url}/v2/repository/models/iris/explode`, {}, asAdmin);
    assert.equal(bogus.status, 404);
  });

  await t.test('X-Request-Id: a valid one is echoed and reaches the worker; otherwise one is minted', async () => {
    const seenBefore = recorder.seen.length;
    const given = await getJson(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'client-id.42' }, body: ECHO_BODY });
    assert.equal(given.status, 200);
    assert.equal(given.headers.get('x-request-id'), 'client-id.42');
    assert.equal(given.headers.get('x-infergate-worker'), echoWorker);
    const minted = await getJson(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ECHO_BODY });
    const mintedId = minted.headers.get('x-request-id') ?? '';
    assert.match(mintedId, UUID);
    const forged = await getJson(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'bad id {"level":60}' }, body: ECHO_BODY });
    const forgedId = forged.headers.get('x-request-id') ?? '';
    assert.match(forgedId, UUID, 'an id that could forge a log line is replaced');
    const sent = recorder.seen.slice(seenBefore).filter((s) => s.path === '/v2/models/echo/infer').map((s) => s.headers['x-request-id']);
    assert.deepEqual(sent, ['client-id.42', mintedId, forgedId], 'the worker sees the same id the client gets');

    // A real worker echoes the id it received in its error bodies.
    const real = await getJson(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'bad-tensor-1' }, body: JSON.stringify({ inputs: [{ name: 'nope', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }) });
    assert.equal(real.status, 400);
    assert.equal(real.body.code, 'WK_ERR_BAD_TENSOR', 'the worker\'s own 4xx passes through');
    assert.equal(real.body.request_id, 'bad-tensor-1', 'the worker saw the client\'s id');
    const realMinted = await getJson(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"inputs": []}' });
    assert.equal(realMinted.status, 400);
    assert.equal(realMinted.body.request_id, realMinted.headers.get('x-request-id'), 'the worker saw the minted id');
  });

  await t.test('traceparent through; credentials and hop-by-hop headers never reach the worker; X-Forwarded-For from the peer', async () => {
    const seenBefore = recorder.seen.length;
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await nodeRequest(`${gateway.url}/v2/models/echo/infer`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        traceparent,
        tracestate: 'vendor=abc',
        authorization: `Bearer ${token}`,
        'proxy-authorization': 'Basic c2VjcmV0',
        cookie: 'session=secret',
        connection: 'keep-alive, x-hop-by-hop',
        'x-hop-by-hop': 'must-not-pass',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'x-forwarded-for': '203.0.113.66',
        forwarded: 'for=203.0.113.66;proto=https',
        'x-real-ip': '203.0.113.66',
        'x-forwarded-host': 'spoofed.example',
        'x-custom': 'passes',
      },
      body: ECHO_BODY,
    });
    assert.equal(res.status, 200, res.body);
    const seen = recorder.seen.slice(seenBefore).find((s) => s.path === '/v2/models/echo/infer');
    assert.ok(seen, 'the request reached the worker');
    const h = seen.headers;
    assert.equal(h.traceparent, traceparent);
    assert.equal(h.tracestate, 'vendor=abc');
    assert.equal(h['x-custom'], 'passes');
    for (const name of ['authorization', 'x-api-key', 'proxy-authorization', 'cookie', 'x-hop-by-hop', 'keep-alive', 'te']) {
      assert.equal(h[name], undefined, `${name} must not reach the worker`);
    }
    assert.ok(!/x-hop-by-hop/i.test(String(h.connection ?? '')), 'the client\'s Connection tokens are not forwarded');
    assert.equal(h['x-forwarded-for'], '127.0.0.1', 'set from the real peer, not the client\'s claim');
    assert.equal(h['x-forwarded-proto'], 'http');
    for (const name of ['forwarded', 'x-real-ip', 'x-forwarded-host']) assert.equal(h[name], undefined, `a client's own ${name} claim is not passed on`);
    assert.ok(Number(h['x-infergate-timeout-ms']) > 0, 'the worker is told the remaining budget');
    assert.equal(res.headers['x-infergate-worker'], echoWorker);
  });

  await t.test('Expect: 100-continue does not bypass the header hygiene', async () => {
    const seenBefore = recorder.seen.length;
    // curl sends Expect: 100-continue by itself for larger bodies.
    const res = await nodeRequest(`${gateway.url}/v2/models/echo/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', expect: '100-continue', authorization: `Bearer ${token}`, 'x-forwarded-for': '203.0.113.66', 'x-request-id': 'expect-1' },
      body: ECHO_BODY,
    });
    assert.equal(res.status, 200, res.body);
    const seen = recorder.seen.slice(seenBefore).find((s) => s.path === '/v2/models/echo/infer');
    assert.ok(seen);
    assert.equal(seen.headers.authorization, undefined, 'Authorization must not reach the worker');
    assert.equal(seen.headers['x-api-key'], undefined, 'X-API-Key must not reach the worker');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-request-id'], 'expect-1');
    assert.ok(seen.headers['x-infergate-timeout-ms'], 'the worker is told the deadline');
  });

  await t.test('an Expect other than 100-continue: 417 JSON, nothing reaches a worker', async () => {
    // Inference requests only: the gateway's own readiness checks go through the recorder too.
    const inferences = (): number => recorder.seen.filter((r) => r.path === '/v2/models/echo/infer').length;
    const seenBefore = inferences();
    const { response, closed } = await rawExchange(gateway.url, `POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Type: application/json\r\nContent-Length: ${ECHO_BODY.length}\r\n\r\n${ECHO_BODY}`);
    const answer = parseRawResponse(response);
    assert.equal(answer.status, 417);
    const body = JSON.parse(answer.body) as { code: string; error: string; request_id: string };
    assert.equal(body.code, 'ERR_EXPECTATION_FAILED');
    assert.equal(body.request_id, answer.headers['x-request-id']);
    assert.equal(answer.headers['x-content-type-options'], 'nosniff');
    assert.ok(closed, 'the unasked-for body does not become the next request');
    assert.equal(inferences(), seenBefore);
  });

  await t.test('hop-by-hop headers of the worker\'s response are dropped', async () => {
    recorder.responseHeaders = { connection: 'keep-alive, x-worker-hop', 'x-worker-hop': 'secret', 'keep-alive': 'timeout=3', 'set-cookie': 'w=1', 'proxy-connection': 'keep-alive' };
    try {
      const res = await nodeRequest(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ECHO_BODY });
      assert.equal(res.status, 200);
      assert.equal(res.headers['set-cookie'], undefined);
      assert.equal(res.headers['proxy-connection'], undefined);
      assert.notEqual(res.headers['keep-alive'], 'timeout=3', 'the worker\'s keep-alive parameters are its own');
      assert.equal(res.headers['x-worker-hop'], undefined, 'a header the worker named in Connection is hop-by-hop (RFC 9110 §7.6.1)');
    } finally {
      recorder.responseHeaders = {};
    }
  });

  await t.test('the client\'s own connection terms hold: Connection: close closes it, HTTP/1.0 gets a length-framed answer', async () => {
    const closing = await rawExchange(gateway.url, `POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${ECHO_BODY.length}\r\n\r\n${ECHO_BODY}`);
    const answer = parseRawResponse(closing.response);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.connection, 'close', 'the gateway says it closes, as the client asked');
    assert.ok(closing.closed, 'and closes the connection after the response (RFC 9112 §9.6)');
    const echoed = (body: string): unknown => (JSON.parse(body) as { outputs: Array<{ data: unknown }> }).outputs[0]!.data;
    assert.deepEqual(echoed(answer.body), [1, 2, 3], 'the echo worker\'s whole answer arrived');
    // The worker answers chunked: a 1.0 client cannot read chunks, so the body must come unframed or length-framed.
    recorder.chunked = true;
    try {
      const old = await rawExchange(gateway.url, `POST /v2/models/echo/infer HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${ECHO_BODY.length}\r\n\r\n${ECHO_BODY}`);
      const reply = parseRawResponse(old.response);
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['transfer-encoding'], undefined, 'no chunked framing for HTTP/1.0');
      assert.deepEqual(echoed(reply.body), [1, 2, 3]);
      assert.ok(old.closed, 'an HTTP/1.0 request without keep-alive ends with the connection');
    } finally {
      recorder.chunked = false;
    }
  });

  await t.test('a malformed request pipelined behind a valid one is answered after it, in order', async () => {
    const infer = `POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${ECHO_BODY.length}\r\n\r\n${ECHO_BODY}`;
    const malformed = 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n'; // a space in a field name
    const { response, closed } = await rawExchange(gateway.url, infer + malformed);
    const statuses = [...response.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [200, 400], 'the inference answer first, whole; then the refusal');
    const first = parseRawResponse(response);
    assert.equal(first.body.slice(0, Number(first.headers['content-length'])).length, Number(first.headers['content-length']));
    assert.ok(closed, 'the connection closes after the refusal');
  });

  await t.test('request smuggling (Content-Length and Transfer-Encoding): 400 JSON and the connection closed', async () => {
    const reached = (): number => recorder.seen.filter((s) => s.path === '/v2/models/echo/infer').length;
    const before = reached();
    const smuggled = `${ECHO_BODY.length.toString(16)}\r\n${ECHO_BODY}\r\n0\r\n\r\nGET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n`;
    const { response, closed } = await rawExchange(gateway.url, `POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n${smuggled}`);
    assert.ok(closed, 'the gateway closes the connection');
    const parsed = parseRawResponse(response);
    assert.equal(parsed.status, 400);
    assert.match(parsed.headers['content-type'] ?? '', /application\/json/);
    assert.equal(JSON.parse(parsed.body).code, 'ERR_BAD_REQUEST');
    assert.equal(response.match(/HTTP\/1\.1 /g)?.length, 1, 'exactly one response: the smuggled request was not served');

    const doubleLength = await rawExchange(gateway.url, `POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nContent-Length: ${ECHO_BODY.length}\r\n\r\n${ECHO_BODY}`);
    assert.equal(parseRawResponse(doubleLength.response).status, 400, 'two different Content-Lengths');
    assert.ok(doubleLength.closed);
    assert.equal(reached(), before, 'nothing reached a worker');
  });

  await t.test('oversize headers: 431 JSON', async () => {
    const { response, closed } = await rawExchange(gateway.url, `GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    const parsed = parseRawResponse(response);
    assert.equal(parsed.status, 431);
    assert.equal(JSON.parse(parsed.body).code, 'ERR_HEADERS_TOO_LARGE');
    assert.ok(closed);
  });

  await t.test('oversize body: 413 JSON, declared or streamed', async () => {
    const big = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [400, 4], data: new Array(1600).fill(1.25) }] });
    assert.ok(big.length > BODY_LIMIT);
    const declared = await nodeRequest(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(big.length) }, body: big });
    assert.equal(declared.status, 413);
    assert.equal(JSON.parse(declared.body).code, 'ERR_BODY_TOO_LARGE');
    const streamed = await nodeRequest(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, body: big });
    assert.equal(streamed.status, 413);
    assert.equal(JSON.parse(streamed.body).code, 'ERR_BODY_TOO_LARGE');
  });

  await t.test('unsupported content type or encoding: 415 JSON', async () => {
    const plain = await getJson(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: IRIS_BODY });
    assert.equal(plain.status, 415);
    assert.equal(plain.body.code, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    const brotli = await getJson(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'br' }, body: IRIS_BODY });
    assert.equal(brotli.status, 415);
    assert.equal(brotli.body.code, 'ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  await t.test('/metrics counts requests by model, status and worker', async () => {
    const ok = await metricSum(gateway.url, 'infergate_gateway_requests_total', { model: 'iris', status: '200' });
    assert.ok(ok >= 5, `iris 200s counted: ${ok}`);
    assert.ok(await metricSum(gateway.url, 'infergate_gateway_requests_total', { model: 'iris', status: '413' }) >= 2);
    assert.ok(await metricSum(gateway.url, 'infergate_gateway_requests_total', { model: 'echo', worker: echoWorker }) >= 4);
    const text = await (await fetch(`${gateway.url}/metrics`)).text();
    assert.match(text, /^# TYPE infergate_gateway_requests_total counter$/m);
  });

  await t.test('/metrics: made-up model names share one label instead of growing the registry', async () => {
    const before = await scrapeMetrics(gateway.url);
    const names = Array.from({ length: 25 }, (_, i) => `made-up-${i}-${Math.random().toString(36).slice(2, 8)}`);
    for (const name of names) {
      const res = await postJson(`${gateway.url}/v2/models/${name}/infer`, JSON.parse(IRIS_BODY));
      assert.equal(res.status, 404);
    }
    const after = await scrapeMetrics(gateway.url);
    const models = after.labelValues('infergate_gateway_requests_total', 'model');
    assert.deepEqual(models.filter((m) => m.startsWith('made-up-')), [], `no label per made-up name: ${models.join(', ')}`);
    assert.equal(after.delta(before, 'infergate_gateway_requests_total', { model: '(unknown)', status: '404' }), names.length);
    assert.equal(after.delta(before, 'infergate_gateway_request_duration_seconds_count', { model: '(unknown)' }), names.length);
    assert.deepEqual(after.labelValues('infergate_gateway_request_duration_seconds_count', 'model').filter((m) => m.startsWith('made-up-')), []);
  });

  await t.test('the gateway is still healthy after all that', async () => {
    assert.equal(gateway.child.exitCode, null);
    const res = await inferIris(gateway.url);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});

test('/v2/health/ready is 503 with Retry-After when no worker is ready', async (t) => {
  const fault = await startFaultUpstream(t, { mode: 'not-ready' });
  const gateway = await startGateway(t, [fault.url], { waitForWorkers: false });
  await waitFor(() => fault.requestsTo('/v2/health/ready') >= 1, 5000);
  const ready = await getJson(`${gateway.url}/v2/health/ready`);
  assert.equal(ready.status, 503);
  assert.equal(ready.body.ready, false);
  assert.ok(ready.headers.get('retry-after'));
  const live = await getJson(`${gateway.url}/v2/health/live`);
  assert.equal(live.status, 200, 'live even with no worker');
  assert.equal((await adminWorkers(gateway))[0]?.ready, false);
});
