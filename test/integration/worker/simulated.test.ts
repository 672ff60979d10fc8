// The simulated worker (`infergate worker --simulate-delay-ms`): it serves the V2 surface without
// any model, refuses wrong input with the catalogue's errors, queues beyond its execution slots, and
// a gateway admits and balances it like any real worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, startProcess, type RunningProcess } from '../../helpers/processes.ts';
import { getJson, postJson } from '../../helpers/http.ts';
import { inferBinary, inferJson } from '../../helpers/v2-client.ts';

const INPUT = { name: 'input', datatype: 'FP32' as const, shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] };

function startSimulated(t: import('node:test').TestContext, args: string[]): Promise<RunningProcess> {
  return startProcess(t, 'worker', { args: ['--port', '0', '--host', '127.0.0.1', ...args] });
}


test('a simulated worker serves the V2 surface with no model', async (t) => {
  const worker = await startSimulated(t, ['--simulate-delay-ms', '1', '--simulate-models', 'iris,echo', '--worker-id', 'sim-a']);

  await t.test('health, server metadata, model metadata, readiness and the repository index', async () => {
    assert.equal((await fetch(`${worker.url}/v2/health/live`)).status, 200);
    assert.equal((await fetch(`${worker.url}/v2/health/ready`)).status, 200);
    const server = await getJson(`${worker.url}/v2`);
    assert.equal(server.status, 200);
    for (const model of ['iris', 'echo']) {
      const meta = await getJson(`${worker.url}/v2/models/${model}`);
      assert.equal(meta.status, 200);
      assert.equal((meta.body as { name: string }).name, model);
      assert.deepEqual((meta.body as { versions: string[] }).versions, ['1']);
      assert.equal((await fetch(`${worker.url}/v2/models/${model}/versions/1/ready`)).status, 200);
    }
    const index = await postJson(`${worker.url}/v2/repository/index`, '{"ready":true}');
    assert.deepEqual(index.body, [
      { name: 'iris', version: '1', state: 'READY', reason: '' },
      { name: 'echo', version: '1', state: 'READY', reason: '' },
    ]);
  });

  await t.test('inference answers a well-formed V2 response, JSON or binary request, id echoed', async () => {
    const json = await inferJson(worker.url, 'iris', [INPUT], { id: 'sim-1' });
    assert.equal(json.status, 200);
    assert.equal(json.modelName, 'iris');
    assert.equal(json.modelVersion, '1');
    assert.equal(json.id, 'sim-1');
    assert.deepEqual(json.output('output').shape, [1, 1]);
    assert.equal(json.headers.get('x-infergate-worker'), 'sim-a');
    const binary = await inferBinary(worker.url, 'echo', [INPUT], { version: '1' });
    assert.equal(binary.modelName, 'echo');
  });

  await t.test('wrong input gets the catalogue errors', async () => {
    const cases: Array<[string, string | Buffer, Record<string, string>, number, string]> = [
      ['/v2/models/nope/infer', '{"inputs":[{}]}', { 'content-type': 'application/json' }, 404, 'WK_ERR_MODEL_NOT_FOUND'],
      ['/v2/models/iris/versions/7/infer', '{"inputs":[{}]}', { 'content-type': 'application/json' }, 404, 'WK_ERR_VERSION_NOT_FOUND'],
      ['/v2/models/iris/infer', '{"inputs":', { 'content-type': 'application/json' }, 400, 'ERR_BAD_JSON'],
      ['/v2/models/iris/infer', '{"inputs":[]}', { 'content-type': 'application/json' }, 400, 'ERR_BAD_REQUEST'],
      ['/v2/models/iris/infer', '[1,2]', { 'content-type': 'application/json' }, 400, 'ERR_BAD_REQUEST'],
      ['/v2/models/iris/infer', 'inputs', { 'content-type': 'text/plain' }, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
      ['/v2/models/iris/infer', '{"inputs":[{}]}', { 'content-type': 'application/json', 'inference-header-content-length': '999' }, 400, 'ERR_BAD_REQUEST'],
      ['/v2/repository/models/iris/unload', '', { 'content-type': 'application/json' }, 400, 'WK_ERR_LOAD_FAILED'],
    ];
    for (const [path, body, headers, status, code] of cases) {
      const res = await postJson(`${worker.url}${path}`, body, headers);
      assert.equal(res.status, status, `${path} ${String(body)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, code);
      assert.equal(typeof res.body.error, 'string');
      assert.equal(res.body.request_id, res.headers.get('x-request-id'));
    }
  });

  await t.test('bad flags stop it at startup with a message', async () => {
    for (const args of [['--simulate-delay-ms', '-1'], ['--simulate-delay-ms', '1', '--simulate-models', 'bad name'], ['--simulate-delay-ms', '1', '--models', 'models']]) {
      await assert.rejects(startSimulated(t, args), /exited early \(code 2/);
    }
  });
});

test('execution slots: one runs, the queue holds the next, the rest are refused; a deadline gives 504', async (t) => {
  const worker = await startSimulated(t, ['--simulate-delay-ms', '1500', '--simulate-models', 'iris', '--simulate-concurrency', '1', '--simulate-queue-size', '1']);
  const body = JSON.stringify({ inputs: [INPUT] });
  const url = `${worker.url}/v2/models/iris/infer`;
  const running = postJson(url, body);
  await new Promise((r) => setTimeout(r, 100));
  const queued = postJson(url, body);
  await new Promise((r) => setTimeout(r, 100));
  const refused = await postJson(url, body);
  assert.equal(refused.status, 503);
  assert.equal(refused.body.code, 'WK_ERR_QUEUE_FULL');
  assert.equal(refused.headers.get('retry-after'), '1');
  assert.equal((await running).status, 200);
  assert.equal((await queued).status, 200);

  const busy = postJson(url, body);
  await new Promise((r) => setTimeout(r, 100));
  const late = await postJson(url, body, { 'content-type': 'application/json', 'x-infergate-timeout-ms': '50' });
  assert.equal(late.status, 504);
  assert.equal(late.body.code, 'WK_ERR_DEADLINE_EXCEEDED');
  assert.equal((await busy).status, 200);
});

test('a gateway admits simulated workers and balances over them like real ones', async (t) => {
  const [a, b] = await Promise.all([
    startSimulated(t, ['--simulate-delay-ms', '1', '--simulate-models', 'iris', '--worker-id', 'sim-a']),
    startSimulated(t, ['--simulate-delay-ms', '1', '--simulate-models', 'iris', '--worker-id', 'sim-b']),
  ]);
  const gateway = await startGateway(t, [a.url, b.url], { args: ['--strategy', 'round-robin'] });
  const model = await getJson(`${gateway.url}/v2/models/iris`);
  assert.equal(model.status, 200);
  assert.equal((model.body as { name: string }).name, 'iris');
  const served = new Map<string, number>();
  const rounds = 10;
  for (let i = 0; i < rounds; i++) {
    const res = await inferJson(gateway.url, 'iris', [INPUT], { id: `via-gateway-${i}` });
    assert.equal(res.id, `via-gateway-${i}`);
    const id = res.headers.get('x-infergate-worker') ?? '';
    served.set(id, (served.get(id) ?? 0) + 1);
  }
  // Round-robin over two admitted workers (the gateway names them by its own opaque ids): each serves half.
  assert.equal(served.size, 2);
  assert.deepEqual([...served.values()], [rounds / 2, rounds / 2]);
  const unknown = await postJson(`${gateway.url}/v2/models/house-price/infer`, { inputs: [INPUT] });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.code, 'GW_ERR_MODEL_NOT_FOUND');
});
