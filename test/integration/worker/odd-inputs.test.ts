// Inputs a careless or hostile client can send, each of which must be a 400 naming the problem —
// never a 500 (which a gateway's breaker counts against the worker), never a silently altered
// tensor, never a dropped output value. Models with BOOL, BYTES and INT64 tensors come from
// test/helpers/typed-models.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_MODELS, startWorker, type RunningProcess } from '../../helpers/processes.ts';
import { writeTypedModels } from '../../helpers/typed-models.ts';

let worker: RunningProcess;
let repo: string;
before(async () => {
  repo = await mkdtemp(join(tmpdir(), 'infergate-odd-'));
  await cp(join(DEMO_MODELS, 'iris'), join(repo, 'iris'), { recursive: true });
  await writeTypedModels(repo);
  await mkdir(join(repo, 'broken', '1'), { recursive: true });
  await writeFile(join(repo, 'broken', '1', 'model.onnx'), 'not an ONNX model');
  worker = await startWorker(undefined, repo);
});
after(async () => {
  await worker.stop();
  await rm(repo, { recursive: true, force: true });
});

async function post(path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number; body: { code?: string; error?: string; [k: string]: unknown } }> {
  const res = await fetch(worker.url + path, { method: 'POST', body, headers });
  return { status: res.status, body: (await res.json()) as { code?: string; error?: string } };
}
const binaryHeaders = (header: string): Record<string, string> => ({ 'content-type': 'application/octet-stream', 'inference-header-content-length': String(Buffer.byteLength(header)) });
const iris = (data: string): string => `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"data":${data}}]}`;

test('classification of a BOOL or BYTES output is a 400: there are no scores to rank', async () => {
  const flags = await post('/v2/models/flags/infer', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }], outputs: [{ name: 'nan', parameters: { classification: 1 } }] }));
  assert.deepEqual([flags.status, flags.body.code], [400, 'ERR_BAD_REQUEST']);
  assert.match(flags.body.error ?? '', /BOOL/);
  const words = await post('/v2/models/words/infer', JSON.stringify({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['a'] }], outputs: [{ name: 'same', parameters: { classification: 1 } }] }));
  assert.deepEqual([words.status, words.body.code], [400, 'ERR_BAD_REQUEST']);
  const plain = await post('/v2/models/flags/infer', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: ['NaN', 2, 3, 4] }] }));
  assert.equal(plain.status, 200);
  assert.deepEqual((plain.body.outputs as Array<{ data: unknown[] }>)[0]!.data, [true, false, false, false], 'the model itself works');
});

test('values that break naive error messages are still 400s', async () => {
  for (const [path, body] of [
    ['/v2/models/iris/infer', iris('[{"toString":1},2,3,4]')],
    ['/v1/models/iris:predict', '{"instances":[[{"toString":1},2,3,4]]}'],
    ['/v2/models/iris/infer', `{"inputs":[{"name":"features","datatype":${'['.repeat(20_000)}1${']'.repeat(20_000)},"shape":[1,4],"data":[1,2,3,4]}]}`],
  ] as const) {
    const res = await post(path, body);
    assert.equal(res.status, 400, `${path} ${body.slice(0, 60)}: ${JSON.stringify(res.body).slice(0, 200)}`);
  }
  for (const size of ['{"toString":1}', `${'['.repeat(20_000)}1${']'.repeat(20_000)}`]) {
    const header = `{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":${size}}}]}`;
    const res = await post('/v2/models/iris/infer', header, binaryHeaders(header));
    assert.deepEqual([res.status, res.body.code], [400, 'WK_ERR_BAD_TENSOR'], size.slice(0, 20));
  }
});

test('a number that overflows its float type is refused, not turned into Infinity', async () => {
  for (const value of ['1e39', '-1e39', '1e400']) {
    const res = await post('/v2/models/iris/infer', iris(`[${value},3.5,1.4,0.2]`));
    assert.deepEqual([res.status, res.body.code], [400, 'WK_ERR_BAD_TENSOR'], value);
  }
  const largest = await post('/v2/models/iris/infer', iris('[3.4028234663852886e38,3.5,1.4,0.2]'));
  assert.equal(largest.status, 200, 'FP32\'s largest finite value is a value');
  const named = await post('/v2/models/iris/infer', iris('["Infinity",3.5,1.4,0.2]'));
  assert.equal(named.status, 200, 'an infinity asked for by name is still taken');
});

test('text that has no UTF-8 form, or base64 that is not base64, is refused rather than altered', async () => {
  const lone = await post('/v2/models/words/infer', '{"inputs":[{"name":"text","datatype":"BYTES","shape":[2],"data":["\\ud800","a"]}]}');
  assert.deepEqual([lone.status, lone.body.code], [400, 'WK_ERR_BAD_TENSOR']);
  const pair = await post('/v2/models/words/infer', '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["\\ud83d\\ude00"]}]}');
  assert.equal(pair.status, 200, 'a surrogate pair is one character');
  assert.deepEqual((pair.body.outputs as Array<{ data: unknown[] }>)[0]!.data, ['😀']);
  const odd = await post('/v1/models/words:predict', '{"instances":[{"b64":"A"}]}');
  assert.deepEqual([odd.status, odd.body.code], [400, 'WK_ERR_BAD_TENSOR']);
  const good = await post('/v1/models/words:predict', '{"instances":[{"b64":"QQ=="},{"b64":"QkM"}]}');
  assert.equal(good.status, 200, JSON.stringify(good.body));
});

test('TF rows: outputs that cannot be split per instance are a 400; the columnar answer has them whole', async () => {
  const rows = await post('/v1/models/uniq:predict', '{"instances":[1,1,2]}');
  assert.deepEqual([rows.status, rows.body.code], [400, 'ERR_BAD_REQUEST']);
  assert.match(rows.body.error ?? '', /first dimension/);
  const columns = await post('/v1/models/uniq:predict', '{"inputs":[1,1,2]}');
  assert.equal(columns.status, 200, JSON.stringify(columns.body));
  assert.deepEqual(columns.body.outputs, { y: [1, 2], inverse: [0, 0, 1], counts: [2, 1] });
});

test('"01" names version 1, on both protocols', async () => {
  assert.equal((await post('/v2/models/iris/versions/01/infer', iris('[5.1,3.5,1.4,0.2]'))).status, 200);
  assert.equal((await post('/v1/models/iris/versions/001:predict', '{"instances":[[5.1,3.5,1.4,0.2]]}')).status, 200);
  assert.equal((await post('/v2/models/iris/versions/2/infer', iris('[5.1,3.5,1.4,0.2]'))).status, 404);
});

test('TF model status reports a version that failed to load, with its error', async () => {
  for (const path of ['/v1/models/broken', '/v1/models/broken/versions/1']) {
    const res = await fetch(worker.url + path);
    const body = (await res.json()) as { model_version_status: Array<{ version: string; state: string; status: { error_code: string; error_message: string } }> };
    assert.equal(res.status, 200, path);
    assert.equal(body.model_version_status.length, 1);
    assert.equal(body.model_version_status[0]!.state, 'END');
    assert.notEqual(body.model_version_status[0]!.status.error_code, 'OK');
    assert.ok(body.model_version_status[0]!.status.error_message.length > 0, 'the load error is shown');
  }
  assert.equal((await fetch(`${worker.url}/v1/models/broken/versions/2`)).status, 404);
  assert.equal((await fetch(`${worker.url}/v1/models/nothing`)).status, 404);
  assert.equal((await fetch(`${worker.url}/v1/models/iris/versions/01`)).status, 200);
});
