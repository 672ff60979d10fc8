// Every worker endpoint of the Open Inference Protocol v2 and the TF-Serving dialect, against a real
// worker process serving the demo models.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { DEMO_MODELS, startWorker, type RunningProcess } from '../../helpers/processes.ts';
import { getJson, postJson } from '../../helpers/http.ts';
import { inferBinary, inferJson, values } from '../../helpers/v2-client.ts';

let worker: RunningProcess;
before(async () => {
  worker = await startWorker(undefined, DEMO_MODELS, { args: ['--body-limit-bytes', String(1024 * 1024)] });
});
after(() => worker.stop());

const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.3, 3.3, 6.0, 2.5];
const irisRequest = (data: unknown, shape = [2, 4]): object => ({ inputs: [{ name: 'features', datatype: 'FP32', shape, data }] });

describe('server endpoints', () => {
  test('GET /v2 describes the server and its extensions', async () => {
    const { status, body } = await getJson(`${worker.url}/v2`);
    assert.equal(status, 200);
    assert.equal(body.name, 'infergate');
    assert.ok(body.extensions.includes('binary_tensor_data'));
    assert.ok(body.extensions.includes('model_repository'));
  });

  test('health: live and ready', async () => {
    assert.equal((await getJson(`${worker.url}/v2/health/live`)).status, 200);
    assert.equal((await getJson(`${worker.url}/v2/health/ready`)).status, 200);
  });

  test('responses carry the request id (echoed when valid), the worker id and the queue depth', async () => {
    const res = await fetch(`${worker.url}/v2/health/live`, { headers: { 'x-request-id': 'trace-123' } });
    assert.equal(res.headers.get('x-request-id'), 'trace-123');
    assert.match(res.headers.get('x-infergate-worker') ?? '', /\S/);
    assert.match(res.headers.get('x-infergate-queue-depth') ?? '', /^\d+$/);
    const bad = await fetch(`${worker.url}/v2/health/live`, { headers: { 'x-request-id': 'bad id with spaces' } });
    assert.notEqual(bad.headers.get('x-request-id'), 'bad id with spaces');
  });

  test('GET /metrics exposes request counters by model', async () => {
    await inferJson(worker.url, 'iris', [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: SETOSA }]);
    const text = await (await fetch(`${worker.url}/metrics`)).text();
    assert.match(text, /infergate_worker_requests_total\{model="iris",version="1",outcome="ok"\} \d+/);
    assert.match(text, /infergate_worker_batch_size_bucket/);
  });
});

describe('model metadata and readiness', () => {
  test('metadata lists inputs, outputs, versions and labels', async () => {
    for (const path of ['/v2/models/iris', '/v2/models/iris/versions/1']) {
      const { status, body } = await getJson(worker.url + path);
      assert.equal(status, 200, path);
      assert.equal(body.name, 'iris');
      assert.deepEqual(body.versions, ['1']);
      assert.equal(body.platform, 'onnxruntime_onnx');
      assert.deepEqual(body.inputs, [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }]);
      assert.deepEqual(body.outputs, [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }]);
      assert.deepEqual(body.parameters.labels.probabilities, ['setosa', 'versicolor', 'virginica']);
    }
  });

  test('ready with and without version; unknown model and version are 404 with distinct codes', async () => {
    assert.equal((await getJson(`${worker.url}/v2/models/iris/ready`)).status, 200);
    assert.equal((await getJson(`${worker.url}/v2/models/iris/versions/1/ready`)).status, 200);
    const noModel = await getJson(`${worker.url}/v2/models/nope/ready`);
    assert.equal(noModel.status, 404);
    assert.equal(noModel.body.code, 'WK_ERR_MODEL_NOT_FOUND');
    const noVersion = await getJson(`${worker.url}/v2/models/iris/versions/7`);
    assert.equal(noVersion.status, 404);
    assert.equal(noVersion.body.code, 'WK_ERR_VERSION_NOT_FOUND');
  });
});

describe('inference', () => {
  test('infer with and without a version; id echoed; one probability row per input row', async () => {
    for (const version of [undefined, '1']) {
      const res = await inferJson(worker.url, 'iris', [{ name: 'features', datatype: 'FP32', shape: [2, 4], data: [...SETOSA, ...VIRGINICA] }], { id: 'req-7', ...(version ? { version } : {}) });
      assert.equal(res.id, 'req-7');
      assert.equal(res.modelName, 'iris');
      assert.equal(res.modelVersion, '1');
      const probs = res.output('probabilities');
      assert.deepEqual(probs.shape, [2, 3]);
      const p = values(probs) as number[];
      for (const row of [p.slice(0, 3), p.slice(3)]) assert.ok(Math.abs(row.reduce((a, b) => a + b) - 1) < 1e-5);
      assert.equal(p.slice(0, 3).indexOf(Math.max(...p.slice(0, 3))), 0, 'setosa measurements classify as setosa');
      assert.equal(p.slice(3).indexOf(Math.max(...p.slice(3))), 2, 'virginica measurements classify as virginica');
    }
  });

  test('nested and flat data give identical results', async () => {
    const flat = await postJson(`${worker.url}/v2/models/iris/infer`, irisRequest([...SETOSA, ...VIRGINICA]));
    const nested = await postJson(`${worker.url}/v2/models/iris/infer`, irisRequest([SETOSA, VIRGINICA]));
    assert.equal(flat.status, 200);
    assert.deepEqual(nested.body.outputs, flat.body.outputs);
  });

  test('binary tensor extension gives the same numbers as JSON, bit for bit', async () => {
    const input = [{ name: 'features', datatype: 'FP32' as const, shape: [2, 4], data: new Float32Array([...SETOSA, ...VIRGINICA]) }];
    const json = await inferJson(worker.url, 'iris', input);
    const binary = await inferBinary(worker.url, 'iris', input);
    assert.equal(binary.headers.get('content-type'), 'application/octet-stream');
    assert.ok(Number(binary.headers.get('inference-header-content-length')) > 0);
    assert.deepEqual(Array.from(binary.output('probabilities').data as Float32Array), Array.from(new Float32Array(values(json.output('probabilities')) as number[])));
  });

  test('concurrent binary requests each get the answer to their own input (decode buffers are reused)', async () => {
    const rows = Array.from({ length: 24 }, (_, i) => [4 + (i % 7) * 0.4, 2 + (i % 5) * 0.3, 1 + (i % 6) * 0.9, 0.1 + (i % 4) * 0.7]);
    const input = (row: number[]) => [{ name: 'features', datatype: 'FP32' as const, shape: [1, 4], data: new Float32Array(row) }];
    const alone: number[][] = [];
    for (const row of rows) alone.push(Array.from((await inferBinary(worker.url, 'iris', input(row))).output('probabilities').data as Float32Array));
    for (let round = 0; round < 3; round++) {
      const together = await Promise.all(rows.map((row) => inferBinary(worker.url, 'iris', input(row))));
      together.forEach((res, i) => assert.deepEqual(Array.from(res.output('probabilities').data as Float32Array), alone[i], `row ${i}, round ${round}`));
    }
  });

  test('inference responses, answered or refused, carry the request id, the worker id and the queue depth', async () => {
    const input = [{ name: 'features', datatype: 'FP32' as const, shape: [1, 4], data: new Float32Array(SETOSA) }];
    const ok = await inferBinary(worker.url, 'iris', input, { headers: { 'x-request-id': 'trace-infer-1' } });
    assert.equal(ok.headers.get('x-request-id'), 'trace-infer-1');
    assert.match(ok.headers.get('x-infergate-worker') ?? '', /\S/);
    assert.match(ok.headers.get('x-infergate-queue-depth') ?? '', /^\d+$/);
    const refused = await fetch(`${worker.url}/v2/models/iris/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'trace-infer-2' },
      body: JSON.stringify(irisRequest([1, 2, 3], [1, 3])),
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.headers.get('x-request-id'), 'trace-infer-2');
    assert.match(refused.headers.get('x-infergate-worker') ?? '', /\S/);
    assert.match(refused.headers.get('x-infergate-queue-depth') ?? '', /^\d+$/);
    assert.equal((await refused.json()).request_id, 'trace-infer-2');
  });

  test('classification extension returns top-k "score:index:label"', async () => {
    const { status, body } = await postJson(`${worker.url}/v2/models/iris/infer`, {
      ...irisRequest([SETOSA, VIRGINICA]),
      outputs: [{ name: 'probabilities', parameters: { classification: 2 } }],
    });
    assert.equal(status, 200);
    const out = body.outputs[0];
    assert.equal(out.datatype, 'BYTES');
    assert.deepEqual(out.shape, [2, 2]);
    assert.match(out.data[0], /^0\.\d+:0:setosa$/);
    assert.match(out.data[2], /^0\.\d+:2:virginica$/);
    assert.ok(Number(out.data[0].split(':')[0]) >= Number(out.data[1].split(':')[0]), 'sorted by score');
  });

  test('gzip-encoded request bodies are accepted', async () => {
    const res = await fetch(`${worker.url}/v2/models/iris/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify(irisRequest(SETOSA, [1, 4]))),
    });
    assert.equal(res.status, 200);
  });
});

describe('TF-Serving REST dialect', () => {
  test('row (instances) and columnar (inputs) predict agree with V2', async () => {
    const v2 = await postJson(`${worker.url}/v2/models/iris/infer`, irisRequest([SETOSA, VIRGINICA]));
    const rows = await postJson(`${worker.url}/v1/models/iris:predict`, { instances: [SETOSA, VIRGINICA] });
    const cols = await postJson(`${worker.url}/v1/models/iris/versions/1:predict`, { inputs: { features: [SETOSA, VIRGINICA] } });
    assert.equal(rows.status, 200);
    assert.equal(cols.status, 200);
    const flat = v2.body.outputs[0].data as number[];
    assert.deepEqual(rows.body.predictions, [flat.slice(0, 3), flat.slice(3)]);
    assert.deepEqual(cols.body.outputs, [flat.slice(0, 3), flat.slice(3)]);
  });

  test('model status and metadata', async () => {
    const status = await getJson(`${worker.url}/v1/models/iris`);
    assert.equal(status.body.model_version_status[0].state, 'AVAILABLE');
    const meta = await getJson(`${worker.url}/v1/models/iris/metadata`);
    const sig = meta.body.metadata.signature_def.signature_def.serving_default;
    assert.equal(sig.inputs.features.dtype, 'DT_FLOAT');
    assert.deepEqual(sig.inputs.features.tensor_shape.dim.map((d: { size: string }) => d.size), ['-1', '4']);
  });

  test('bad predict bodies are JSON errors', async () => {
    const both = await postJson(`${worker.url}/v1/models/iris:predict`, { instances: [SETOSA], inputs: [SETOSA] });
    assert.equal(both.status, 400);
    const ragged = await postJson(`${worker.url}/v1/models/iris:predict`, { instances: [SETOSA, [1, 2]] });
    assert.equal(ragged.status, 400);
    assert.equal(ragged.body.code, 'WK_ERR_BAD_TENSOR');
  });
});

describe('repository extension', () => {
  test('index, unload and load', async () => {
    const index = await postJson(`${worker.url}/v2/repository/index`, {});
    assert.equal(index.status, 200);
    assert.ok(index.body.some((e: { name: string; state: string }) => e.name === 'house-price' && e.state === 'READY'));

    assert.equal((await postJson(`${worker.url}/v2/repository/models/house-price/unload`, {})).status, 200);
    const gone = await postJson(`${worker.url}/v2/models/house-price/infer`, { inputs: [{ name: 'sqft', datatype: 'FP32', shape: [1, 1], data: [1000] }] });
    assert.equal(gone.status, 404);
    const afterUnload = await postJson(`${worker.url}/v2/repository/index`, {});
    assert.ok(afterUnload.body.some((e: { name: string; state: string }) => e.name === 'house-price' && e.state === 'UNAVAILABLE'));

    assert.equal((await postJson(`${worker.url}/v2/repository/models/house-price/load`, {})).status, 200);
    const back = await postJson(`${worker.url}/v2/models/house-price/infer`, { inputs: [{ name: 'sqft', datatype: 'FP32', shape: [1, 1], data: [1000] }] });
    assert.equal(back.status, 200);
    const ready = await postJson(`${worker.url}/v2/repository/index`, { ready: true });
    assert.ok(ready.body.every((e: { state: string }) => e.state === 'READY'));
    assert.equal((await postJson(`${worker.url}/v2/repository/models/no-such-model/load`, {})).status, 404);
  });
});

describe('every bad request is a JSON error with the right status and code', () => {
  const cases: Array<[string, string | object, number, string, Record<string, string>?]> = [
    ['malformed JSON', '{"inputs": [', 400, 'ERR_BAD_JSON'],
    ['inputs not an array', { inputs: 3 }, 400, 'ERR_BAD_REQUEST'],
    ['id not a string', { id: 5, ...irisRequest(SETOSA, [1, 4]) }, 400, 'ERR_BAD_REQUEST'],
    ['wrong datatype', { inputs: [{ name: 'features', datatype: 'FP64', shape: [1, 4], data: SETOSA }] }, 400, 'WK_ERR_BAD_TENSOR'],
    ['unknown datatype', { inputs: [{ name: 'features', datatype: 'FLOAT', shape: [1, 4], data: SETOSA }] }, 400, 'WK_ERR_BAD_TENSOR'],
    ['wrong rank', irisRequest(SETOSA, [4]), 400, 'WK_ERR_BAD_TENSOR'],
    ['wrong fixed dim', irisRequest([1, 2, 3, 4, 5], [1, 5]), 400, 'WK_ERR_BAD_TENSOR'],
    ['element count vs shape', irisRequest(SETOSA, [2, 4]), 400, 'WK_ERR_BAD_TENSOR'],
    ['batch over max', irisRequest(new Array(65 * 4).fill(1), [65, 4]), 400, 'WK_ERR_BATCH_TOO_LARGE'],
    ['absurd shape', irisRequest(SETOSA, [1_000_000_000, 4]), 400, 'WK_ERR_BAD_TENSOR'],
    ['negative dim', irisRequest(SETOSA, [-1, 4]), 400, 'WK_ERR_BAD_TENSOR'],
    ['string in FP32 data', irisRequest([5.1, 'x', 1, 1], [1, 4]), 400, 'WK_ERR_BAD_TENSOR'],
    ['nesting too deep', irisRequest(JSON.parse('['.repeat(100) + ']'.repeat(100)), [1, 4]), 400, 'WK_ERR_BAD_TENSOR'],
    ['missing input', { inputs: [] }, 400, 'WK_ERR_BAD_TENSOR'],
    ['unknown input', { inputs: [{ name: 'petals', datatype: 'FP32', shape: [1, 4], data: SETOSA }] }, 400, 'WK_ERR_BAD_TENSOR'],
    ['duplicate input', { inputs: [irisRequest(SETOSA, [1, 4]), irisRequest(SETOSA, [1, 4])].flatMap((r) => (r as { inputs: object[] }).inputs) }, 400, 'WK_ERR_BAD_TENSOR'],
    ['unknown output', { ...irisRequest(SETOSA, [1, 4]), outputs: [{ name: 'logits' }] }, 400, 'ERR_BAD_REQUEST'],
    ['unsupported content type', JSON.stringify(irisRequest(SETOSA, [1, 4])), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'text/plain' }],
    ['unsupported encoding', JSON.stringify(irisRequest(SETOSA, [1, 4])), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE', { 'content-encoding': 'br' }],
    ['binary header length past the body', JSON.stringify(irisRequest(SETOSA, [1, 4])), 400, 'ERR_BAD_REQUEST', { 'inference-header-content-length': '99999' }],
    ...['0x10', '1e1', '', '-0'].map((value): [string, string, number, string, Record<string, string>] => [`binary header length ${JSON.stringify(value)} (not decimal digits)`, JSON.stringify(irisRequest(SETOSA, [1, 4])), 400, 'ERR_BAD_REQUEST', { 'inference-header-content-length': value }]),
  ];
  for (const [name, body, status, code, headers] of cases) {
    test(name, async () => {
      const res = await postJson(`${worker.url}/v2/models/iris/infer`, body, headers);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.code, code);
      assert.equal(typeof res.body.error, 'string');
      assert.equal(res.body.request_id, res.headers.get('x-request-id'));
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    });
  }

  test('unknown model is 404, unknown route 404, wrong method 405', async () => {
    assert.equal((await postJson(`${worker.url}/v2/models/nope/infer`, irisRequest(SETOSA, [1, 4]))).body.code, 'WK_ERR_MODEL_NOT_FOUND');
    assert.equal((await getJson(`${worker.url}/v3/anything`)).status, 404);
    assert.equal((await getJson(`${worker.url}/v2/models/iris/infer`)).status, 405);
  });

  test('a body over the limit is refused with 413, also when it only inflates past it (gzip bomb)', async () => {
    const big = await postJson(`${worker.url}/v2/models/iris/infer`, 'x'.repeat(2 * 1024 * 1024));
    assert.equal(big.status, 413);
    assert.equal(big.body.code, 'ERR_BODY_TOO_LARGE');
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20)); // 50 MiB of spaces: about 50 KiB compressed
    const res = await getJson(`${worker.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: bomb });
    assert.equal(res.status, 413);
  });

  test('a compressed body refused part-way leaves its keep-alive connection serving the next request', async () => {
    // The bomb is refused while inflating, with most of it still unread: the rest must be read and
    // thrown away (or the connection closed), never left in the socket with the next request behind it.
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20));
    const junk = Buffer.alloc(200 * 1024, 0x41); // not gzip at all
    for (const body of [bomb, junk]) {
      const head = `POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${body.length}\r\n\r\n`;
      const next = 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n';
      const answers = await exchangeUntil(worker.url, Buffer.concat([Buffer.from(head), body, Buffer.from(next)]), (text) => text.includes('"live"'), 5000);
      const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      assert.equal(statuses[0], body === bomb ? 413 : 400);
      assert.ok(statuses[1] === 200 || /connection: close/i.test(answers), `the next request is answered, or the connection closed: ${JSON.stringify(statuses)}`);
    }
  });

  test('the worker still serves after all of the above', async () => {
    assert.equal((await getJson(`${worker.url}/v2/health/live`)).status, 200);
    assert.equal(worker.child.exitCode, null);
  });
});

/** Writes `raw` on a fresh connection and collects what comes back until `done` says so, the peer closes, or `ms` pass. */
function exchangeUntil(url: string, raw: Buffer, done: (text: string) => boolean, ms: number): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let text = '';
    const socket = connect(Number(port), hostname, () => socket.write(raw));
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    const timer = setTimeout(finish, ms);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (done(text)) finish();
    });
    socket.on('close', finish);
    socket.on('error', () => undefined);
  });
}
