// Everything infergate keeps in Redis, on a real Redis Cluster (3 masters + 3 replicas, local,
// cluster-require-full-coverage no): two gateway replicas configured with `redis.cluster` (the
// structured form) and two real workers registering with `--register redis+cluster://…` (the URL
// form), API keys made through the admin API and the CLI.
//
// - discovery: both workers appear in both gateways through the registry; a drained worker leaves both;
// - keys: a key made on A works on B; revoked with the CLI, B refuses it within seconds (pub/sub);
// - strategy: set on A's admin API, B follows (pub/sub through the cluster);
// - exact limiting for principals whose buckets live on three different masters: a simultaneous
//   burst spread over both gateways admits exactly `burst` (the refill, 0.01 token/s, adds no whole
//   token during the test), and every denial is a 429 with Retry-After;
// - failover: kill -9 the master owning one principal's bucket (one that holds neither the key
//   store's nor the registry's slot); during the gap that principal is refused 503 with Retry-After
//   (fail closed, as configured); once its replica is promoted, a fresh principal on that slot range
//   is limited exactly again, and the principals on the other masters never stopped being exact.
//
// About 30 s on a 2-core machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bucketKey } from '../../../gateway/throttle/limiter.ts';
import { registryKeys } from '../../../shared/registry/keys.ts';
import { CLI, REPO_ROOT, startGateway, startWorker, waitFor, type RunningGateway, type RunningProcess } from '../../helpers/processes.ts';
import { startRedisCluster, type RedisFixture } from '../../helpers/redis.ts';
import { IRIS_BODY, irisRepository, tempDir, writeConfig } from '../gateway/support.ts';

const execFileAsync = promisify(execFile);
/** So slow a refill that no whole token comes back during the test: a burst admits exactly `burst`. */
const PLAN = { ratePerSec: 0.01, burst: 5 };
const KEY_STORE_TAG = '{infergate}:keys';

interface Key {
  id: string;
  key: string;
  bucket: string;
}

async function infer(gateway: RunningGateway, key: string): Promise<Response> {
  return fetch(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: IRIS_BODY });
}

/** `n` simultaneous requests with `key`, alternating between the gateways; the statuses, and Retry-After of each 429. */
async function burst(gateways: RunningGateway[], key: string, n: number): Promise<{ statuses: number[]; retryAfterMissing: number }> {
  const replies = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const res = await infer(gateways[i % gateways.length]!, key);
    await res.arrayBuffer();
    return { status: res.status, retryAfter: res.headers.get('retry-after') };
  }));
  return { statuses: replies.map((r) => r.status), retryAfterMissing: replies.filter((r) => r.status === 429 && r.retryAfter === null).length };
}

const count = (statuses: number[], status: number): number => statuses.filter((s) => s === status).length;

async function workerIds(gateway: RunningGateway): Promise<string[]> {
  const body = (await (await gateway.admin('/admin/workers')).json()) as { workers: Array<{ url: string; ready: boolean }> };
  return body.workers.filter((w) => w.ready).map((w) => w.url).sort();
}

test('gateways and workers on a Redis Cluster: registry, keys, strategy broadcast, exact limits, a master failover', async (t) => {
  const cluster = await startRedisCluster(t);
  const repo = await irisRepository(t);
  const register = ['--register', cluster.url, '--heartbeat-ms', '500', '--registry-ttl-ms', '1500'];
  const workers: RunningProcess[] = await Promise.all([1, 2].map((i) => startWorker(t, repo, { args: [...register, '--worker-id', `cluster-w${i}`] })));
  const workerUrls = workers.map((w) => w.url).sort();

  const dir = await tempDir(t, 'cluster-gw');
  const configPath = await writeConfig(join(dir, 'gateway.yaml'), {
    redis: { cluster: { nodes: cluster.nodes.slice(0, 2).map((n) => `${n.host}:${n.port}`) }, decisionDeadlineMs: 1000 },
    discovery: { registry: { enabled: true, resyncMs: 250, ttlMs: 1500 } },
    health: { intervalMs: 100, timeoutMs: 500, unhealthyThreshold: 2, healthyThreshold: 1, indexRefreshMs: 500 },
    auth: { apiKeys: { cacheTtlMs: 30_000 } }, // revocation must come by pub/sub, not by a cache entry expiring
    throttle: { onStoreFailure: 'closed' },
  });
  const [a, b] = await Promise.all([1, 2].map(() => startGateway(t, [], { args: ['--config', configPath], requireAuth: true, waitForWorkers: false })));
  const gateways = [a!, b!];

  await t.test('both gateways find both workers in the registry', async () => {
    for (const gateway of gateways) await waitFor(async () => JSON.stringify(await workerIds(gateway)) === JSON.stringify(workerUrls), 30_000);
  });

  // Principals whose buckets live on every master, two of them on a master that holds neither the
  // key store's slot nor the registry's: that one is killed below, without touching keys or registry.
  const masters = await cluster.masters();
  const storeMaster = await cluster.masterOf(KEY_STORE_TAG);
  const registryMaster = await cluster.masterOf(registryKeys().index);
  const victim = masters.find((n) => n !== storeMaster && n !== registryMaster)!;
  const keysOn = new Map<RedisFixture, Key[]>(masters.map((m) => [m, []]));
  const wanted = (master: RedisFixture): number => (master === victim ? 2 : 1);
  for (let made = 0; masters.some((m) => keysOn.get(m)!.length < wanted(m)); made++) {
    assert.ok(made < 200, 'keys land on every master within 200 tries');
    const res = await a!.admin('/admin/keys', { method: 'POST', body: JSON.stringify({ name: `cluster-${made}`, models: '*', ...PLAN }) });
    assert.equal(res.status, 201, await res.clone().text());
    const { key, record } = (await res.json()) as { key: string; record: { id: string } };
    const bucket = bucketKey(`key:${record.id}`);
    const onMaster = keysOn.get(await cluster.masterOf(bucket))!;
    if (onMaster.length < 2) onMaster.push({ id: record.id, key, bucket });
  }
  const survivorKeys = masters.filter((m) => m !== victim).map((m) => keysOn.get(m)![0]!);
  const [failoverKey, afterFailoverKey] = keysOn.get(victim)! as [Key, Key];

  await t.test('a simultaneous burst over both gateways admits exactly the burst, for principals on three masters', async () => {
    for (const principal of [...survivorKeys, failoverKey]) {
      const { statuses, retryAfterMissing } = await burst(gateways, principal.key, 3 * PLAN.burst);
      assert.equal(count(statuses, 200), PLAN.burst, `admitted for ${principal.bucket}: ${statuses.join(',')}`);
      assert.equal(count(statuses, 429), 2 * PLAN.burst, `refused for ${principal.bucket}`);
      assert.equal(retryAfterMissing, 0, 'every 429 carries Retry-After');
    }
    const owners = new Set(await Promise.all([...survivorKeys, failoverKey].map((k) => cluster.masterOf(k.bucket))));
    assert.equal(owners.size, masters.length, 'the buckets are spread over every master');
  });

  await t.test('a key made on A works on B; revoked with the CLI through the cluster, B refuses it', async () => {
    const res = await a!.admin('/admin/keys', { method: 'POST', body: JSON.stringify({ name: 'to-revoke', models: '*' }) });
    const { key, record } = (await res.json()) as { key: string; record: { id: string } };
    assert.equal((await infer(b!, key)).status, 200, 'the new key works on the other replica');
    const { stdout } = await execFileAsync(process.execPath, [CLI, 'keys', 'revoke', record.id, '--redis', cluster.url, '--json'], { cwd: REPO_ROOT, timeout: 30_000 });
    assert.equal((JSON.parse(stdout) as { id: string }).id, record.id);
    await waitFor(async () => (await infer(b!, key)).status === 401, 5000);
    const listed = await execFileAsync(process.execPath, [CLI, 'keys', 'list', '--redis', cluster.url, '--json'], { cwd: REPO_ROOT, timeout: 30_000 });
    const revoked = (JSON.parse(listed.stdout) as Array<{ id: string; revokedAt?: number }>).find((k) => k.id === record.id);
    assert.ok(revoked?.revokedAt !== undefined, 'the CLI lists the key as revoked');
  });

  await t.test('a strategy set on A reaches B through the cluster', async () => {
    for (const strategy of ['round-robin', 'least-connections']) {
      const res = await a!.admin('/admin/strategy', { method: 'PUT', body: JSON.stringify({ strategy }) });
      assert.equal(res.status, 200, await res.text());
      await waitFor(async () => ((await (await b!.admin('/admin/strategy')).json()) as { strategy: string }).strategy === strategy, 5000);
    }
  });

  await t.test('kill -9 of the master holding a bucket: fail closed during the gap, exact again after the promotion', async () => {
    await victim.kill();
    const during = await infer(a!, failoverKey.key);
    const body = (await during.json()) as { code?: string };
    assert.equal(during.status, 503, 'the bucket\'s master is gone: no decision, fail closed');
    assert.equal(body.code, 'GW_ERR_RATE_LIMIT_UNAVAILABLE');
    assert.ok(during.headers.get('retry-after') !== null, '503 carries Retry-After');

    await cluster.waitForPromotion(afterFailoverKey.bucket, victim);
    // The gateways' cluster clients learn the new owner on their next command (MOVED, then a slot refresh).
    for (const gateway of gateways) {
      await waitFor(async () => {
        const res = await infer(gateway, failoverKey.key);
        await res.arrayBuffer();
        return res.status !== 503;
      }, 15_000, 200);
    }
    const { statuses } = await burst(gateways, afterFailoverKey.key, 3 * PLAN.burst);
    assert.equal(count(statuses, 200), PLAN.burst, `exact again on the promoted replica: ${statuses.join(',')}`);
    for (const principal of survivorKeys) {
      const again = await burst(gateways, principal.key, PLAN.burst);
      assert.equal(count(again.statuses, 200), 0, `${principal.bucket}: its bucket, on a master that stayed up, is still empty`);
    }
  });

  await t.test('a drained worker leaves both gateways', async () => {
    await workers[0]!.stop();
    for (const gateway of gateways) await waitFor(async () => JSON.stringify(await workerIds(gateway)) === JSON.stringify([workers[1]!.url]), 10_000);
    const res = await a!.admin('/admin/keys', { method: 'POST', body: JSON.stringify({ name: 'unlimited', models: '*' }) });
    const { key } = (await res.json()) as { key: string };
    for (const gateway of gateways) assert.equal((await infer(gateway, key)).status, 200, 'the remaining worker serves');
  });
});
