// Two environments on one Redis (redis.namespace): replicas of the same namespace share rate-limit
// buckets and strategy changes; a replica of another namespace sees neither.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { startGateway, waitFor, type RunningGateway } from '../../helpers/processes.ts';
import { startRedis } from '../../helpers/redis.ts';
import { tempDir, writeConfig } from './support.ts';

const BODY = JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1], data: [1] }] });
/** Two requests, then nothing for the length of the test. */
const TINY = { ratePerSec: 0.001, burst: 2 };

async function infer(gateway: RunningGateway): Promise<number> {
  const res = await fetch(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
  await res.body?.cancel();
  return res.status;
}

async function strategyOf(gateway: RunningGateway): Promise<string> {
  return ((await (await gateway.admin('/admin/strategy')).json()) as { strategy: string }).strategy;
}

test('redis.namespace keeps two environments on one Redis apart: buckets and strategy broadcasts', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis(t);
  const upstream = await startFaultUpstream(t);
  const dir = await tempDir(t, 'redis-namespaces');
  const configFor = (namespace: string): Promise<string> => writeConfig(join(dir, `${namespace}.yaml`), {
    redis: { namespace },
    balancing: { strategy: 'round-robin' },
    auth: { anonymous: { enabled: true, plan: 'tiny' }, apiKeys: { redisKeyPrefix: `{${namespace}}:` } },
    throttle: { plans: { tiny: TINY } },
  });
  // Unique per run, so a shared REDIS_URL server holds no state of an earlier run.
  const run = `${process.pid}-${Date.now()}`;
  const [staging, prod] = [await configFor(`staging-${run}`), await configFor(`prod-${run}`)];
  const start = (file: string): Promise<RunningGateway> => startGateway(t, [upstream.url], { args: ['--config', file, '--redis', redis.url] });
  const [stagingA, stagingB, prodA] = await Promise.all([start(staging), start(staging), start(prod)]);

  // Buckets: staging's two replicas share one bucket of 2; prod has its own.
  assert.equal(await infer(stagingA), 200);
  assert.equal(await infer(stagingB), 200);
  assert.equal(await infer(stagingA), 429, 'the staging bucket is spent, whichever replica is asked');
  assert.equal(await infer(stagingB), 429);
  assert.equal(await infer(prodA), 200, 'prod spends its own bucket');
  assert.equal(await infer(prodA), 200);
  assert.equal(await infer(prodA), 429);
  const client = redis.client();
  const keys = await client.keys(`{*-${run}:rl:*`);
  assert.deepEqual(keys.map((k) => k.slice(1, k.indexOf(':'))).sort(), [`prod-${run}`, `staging-${run}`], `one bucket per namespace: ${keys.join(', ')}`);

  // Strategy: set through one staging replica, applied by the other, not by prod.
  const put = await stagingA.admin('/admin/strategy', { method: 'PUT', body: JSON.stringify({ strategy: 'least-connections' }) });
  assert.equal(put.status, 200);
  await waitFor(async () => (await strategyOf(stagingB)) === 'least-connections', 5000, 50);
  await sleep(300); // the broadcast has reached every subscriber of its channel by now
  assert.equal(await strategyOf(prodA), 'round-robin', 'a strategy change in staging does not reach prod');
});
