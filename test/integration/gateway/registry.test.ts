// Scale out and in through the Redis registry, end to end: a worker started with --register takes
// traffic from a gateway that follows the registry within seconds; SIGTERM withdraws it before it
// stops listening (no failed request under load); kill -9 drops it within the record's TTL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_MODELS, startGateway, startWorker, waitFor } from '../../helpers/processes.ts';
import { startRedis } from '../../helpers/redis.ts';
import { startLoad } from '../../helpers/load.ts';

const BODY = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] });

test('workers join and leave a gateway through the Redis registry', async (t) => {
  const redis = await startRedis(t);
  const dir = await mkdtemp(join(tmpdir(), 'infergate-registry-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'gateway.yaml');
  await writeFile(config, 'discovery: { registry: { enabled: true, resyncMs: 300 } }\nhealth: { intervalMs: 200 }\n');
  const register = ['--register', redis.url, '--heartbeat-ms', '300', '--registry-ttl-ms', '1500'];
  const first = await startWorker(t, DEMO_MODELS, { args: register });
  const gateway = await startGateway(t, [], { args: ['--config', config, '--redis', redis.url], waitForWorkers: false });
  const workers = async (): Promise<Array<{ url: string; ready: boolean }>> => ((await (await gateway.admin('/admin/workers')).json()) as { workers: Array<{ url: string; ready: boolean }> }).workers;
  await waitFor(async () => (await workers()).some((w) => w.url === first.url && w.ready), 5000);

  const load = startLoad(() => fetch(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY }), 4);
  const second = await startWorker(t, DEMO_MODELS, { args: register });
  const joinedAt = Date.now();
  await waitFor(async () => (await workers()).some((w) => w.url === second.url && w.ready), 5000);
  const joinMs = Date.now() - joinedAt;
  t.diagnostic(`second worker admitted ${joinMs} ms after it was ready`);
  assert.ok(joinMs < 3000, 'a registered worker joins within seconds');

  // Scale in gracefully under load: the worker withdraws, the gateway stops routing, then it exits.
  second.child.kill('SIGTERM');
  await waitFor(async () => !(await workers()).some((w) => w.url === second.url), 5000);
  assert.equal(await second.stop(10_000), 0);
  const graceful = await load.stop();
  assert.deepEqual(graceful.failures, [], 'no request failed while the worker left');
  assert.ok(graceful.sent > 20);

  // A worker that dies without withdrawing disappears when its record expires.
  const third = await startWorker(t, DEMO_MODELS, { args: register });
  await waitFor(async () => (await workers()).some((w) => w.url === third.url), 5000);
  third.child.kill('SIGKILL');
  const killedAt = Date.now();
  await waitFor(async () => !(await workers()).some((w) => w.url === third.url), 6000);
  t.diagnostic(`killed worker gone after ${Date.now() - killedAt} ms (TTL 1500 ms)`);
  const after = await fetch(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
  assert.equal(after.status, 200, 'the remaining worker serves');
});
