// The repository is rescanned while traffic flows: a new version is served without restart, a
// removed one finishes its in-flight requests and is released, a broken one is reported in the
// index while the good version keeps serving. No request fails throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_MODELS, startWorker, waitFor } from '../../helpers/processes.ts';
import { getJson, postJson } from '../../helpers/http.ts';
import { startLoad } from '../../helpers/load.ts';

/** Copies a model file in beside its final place, then renames: how operators should publish one. */
async function publish(repo: string, version: string, bytes?: Buffer): Promise<void> {
  const staging = join(repo, `.staging-${version}`);
  await mkdir(staging, { recursive: true });
  if (bytes === undefined) await cp(join(DEMO_MODELS, 'iris', '1', 'model.onnx'), join(staging, 'model.onnx'));
  else await writeFile(join(staging, 'model.onnx'), bytes);
  await rename(staging, join(repo, 'iris', version));
}

test('versions come and go under load with no failed request', async (t) => {
  const repo = await mkdtemp(join(tmpdir(), 'infergate-reload-'));
  t.after(() => rm(repo, { recursive: true, force: true }));
  await mkdir(join(repo, 'iris'));
  await writeFile(join(repo, 'iris', 'config.json'), JSON.stringify({ maxBatchSize: 8, versionPolicy: { all: true } }));
  await publish(repo, '1');
  const worker = await startWorker(t, repo, { args: ['--poll-interval-ms', '100'] });

  const seenVersions = new Set<string>();
  const load = startLoad(async () => {
    const res = await fetch(`${worker.url}/v2/models/iris/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] }),
    });
    if (res.ok) {
      const clone = res.clone();
      seenVersions.add(((await clone.json()) as { model_version: string }).model_version);
    }
    return res;
  }, 8);

  await publish(repo, '2');
  await waitFor(async () => (await getJson(`${worker.url}/v2/models/iris`)).body.versions?.includes('2'), 10_000);
  await waitFor(() => seenVersions.has('2'), 10_000); // the newest ready version takes unversioned traffic

  await rm(join(repo, 'iris', '1'), { recursive: true });
  await waitFor(async () => (await getJson(`${worker.url}/v2/models/iris/versions/1`)).status === 404, 10_000);

  await publish(repo, '3', Buffer.from('this is not an ONNX model'));
  await waitFor(async () => {
    const index = await postJson(`${worker.url}/v2/repository/index`, {});
    return index.body.some((e: { version: string; state: string }) => e.version === '3' && e.state === 'UNAVAILABLE');
  }, 10_000);
  const result = await load.stop();

  assert.deepEqual(result.failures, [], 'no request failed while versions changed');
  assert.ok(result.sent > 50, `load ran (${result.sent} requests)`);
  const index = (await postJson(`${worker.url}/v2/repository/index`, {})).body as Array<{ version: string; state: string; reason: string }>;
  assert.deepEqual(index.map((e) => [e.version, e.state]), [['2', 'READY'], ['3', 'UNAVAILABLE']]);
  assert.match(index[1]!.reason, /\S/, 'the failed version says why');
  const after = await postJson(`${worker.url}/v2/models/iris/infer`, { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] });
  assert.equal(after.body.model_version, '2', 'the good version keeps serving');
});

test('a config change with an unknown key is reported and the model keeps serving', async (t) => {
  const repo = await mkdtemp(join(tmpdir(), 'infergate-config-'));
  t.after(() => rm(repo, { recursive: true, force: true }));
  await mkdir(join(repo, 'iris'));
  await publish(repo, '1');
  const worker = await startWorker(t, repo, { args: ['--poll-interval-ms', '100'] });
  await writeFile(join(repo, 'iris', 'config.json'), JSON.stringify({ maxBatchSize: 8, dynamicBatchin: {} }));
  await waitFor(async () => {
    const index = await postJson(`${worker.url}/v2/repository/index`, {});
    return /dynamicBatchin/.test(index.body[0]?.reason ?? '');
  }, 10_000);
  const index = await postJson(`${worker.url}/v2/repository/index`, {});
  assert.match(index.body[0].reason, /config\.json/, 'the message names the file');
  assert.equal(index.body[0].state, 'READY');
  const res = await postJson(`${worker.url}/v2/models/iris/infer`, { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] });
  assert.equal(res.status, 200);
});
