// The gateway and `infergate keys --config` read the same config keys to find the key store, so a
// key the CLI makes is one the gateway accepts: with a per-environment Redis key prefix
// (auth.apiKeys.redisKeyPrefix), and with auth.apiKeys.store: file although Redis is configured.
// Environments sharing one Redis under different prefixes never accept each other's keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI, REPO_ROOT, startGateway, waitFor } from '../../helpers/processes.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { startRedis } from '../../helpers/redis.ts';

const run = promisify(execFile);
const BODY = JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1], data: [1] }] });

test('gateway and keys CLI agree on the key store given one config', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-key-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const redis = await startRedis(t);
  const upstream = await startFaultUpstream(t);
  // Unique prefixes: REDIS_URL may name a server other tests share.
  const tag = randomBytes(4).toString('hex');
  const staging = `{infergate-staging-${tag}}:`;
  const production = `{infergate-prod-${tag}}:`;
  const keyFile = join(dir, 'keys.json');
  const configs = {
    staging: join(dir, 'staging.yaml'),
    production: join(dir, 'production.yaml'),
    fileStore: join(dir, 'file-store.yaml'),
  };
  const redisSection = `redis: { url: ${JSON.stringify(redis.url)} }`;
  await writeFile(configs.staging, `${redisSection}\nauth: { apiKeys: { redisKeyPrefix: ${JSON.stringify(staging)} } }\n`);
  await writeFile(configs.production, `${redisSection}\nauth: { apiKeys: { redisKeyPrefix: ${JSON.stringify(production)} } }\n`);
  await writeFile(configs.fileStore, `${redisSection}\nauth: { apiKeys: { store: file, file: ${JSON.stringify(keyFile)} } }\n`);

  const createKey = async (config: string): Promise<string> => {
    const { stdout } = await run(process.execPath, [CLI, 'keys', 'create', '--config', config, '--name', 'from-cli', '--json'], { cwd: REPO_ROOT });
    return (JSON.parse(stdout) as { key: string }).key;
  };
  const gatewayFor = (config: string): ReturnType<typeof startGateway> => startGateway(t, [upstream.url], { requireAuth: true, args: ['--config', config] });
  const [stagingGateway, productionGateway, fileGateway] = await Promise.all([gatewayFor(configs.staging), gatewayFor(configs.production), gatewayFor(configs.fileStore)]);
  const infer = async (gateway: { url: string }, key: string): Promise<{ status: number; code: unknown }> => {
    const res = await fetch(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: BODY });
    return { status: res.status, code: res.status === 200 ? undefined : ((await res.json()) as { code: unknown }).code };
  };

  await t.test('a key made with a custom Redis prefix works on the gateway of that config only', async () => {
    const key = await createKey(configs.staging);
    const client = redis.client();
    try {
      assert.deepEqual(await infer(stagingGateway, key), { status: 200, code: undefined });
      assert.deepEqual(await infer(productionGateway, key), { status: 401, code: 'GW_ERR_UNAUTHENTICATED' }, 'another prefix is another environment');
      assert.equal(await client.scard(`${staging}keys`), 1, 'the record is under the configured prefix');
      assert.equal(await client.scard(`${production}keys`), 0);
    } finally {
      // REDIS_URL may name a server other tests share: leave nothing behind there.
      const left = await client.keys(`${staging}*`);
      if (left.length > 0) await client.del(...left);
    }
  });

  await t.test("auth.apiKeys.store: file keeps keys in the file although Redis is configured, for both", async () => {
    const key = await createKey(configs.fileStore);
    assert.ok((await readFile(keyFile, 'utf8')).includes('"name": "from-cli"'), 'the CLI wrote the key file');
    // A running gateway sees a key file change at its next poll (every 500 ms: docs/authentication.md).
    await waitFor(async () => (await infer(fileGateway, key)).status === 200, 10_000);
    assert.deepEqual(await infer(stagingGateway, key), { status: 401, code: 'GW_ERR_UNAUTHENTICATED' });
  });
});

test('a key-store setting the gateway cannot honour fails at startup, naming the key', async () => {
  for (const [config, message] of [
    ['auth: { apiKeys: { redisKeyPrefix: "staging:" } }', /auth\.apiKeys\.redisKeyPrefix: needs a \{hash tag\}/],
    ['auth: { apiKeys: { store: redis } }', /auth\.apiKeys\.store: 'redis' needs redis\.url/],
  ] as const) {
    const dir = await mkdtemp(join(tmpdir(), 'infergate-key-config-'));
    try {
      const file = join(dir, 'gateway.yaml');
      await writeFile(file, `${config}\n`);
      const failed = await run(process.execPath, [CLI, 'gateway', '--config', file, '--port', '0', '--admin-port', '0'], { cwd: REPO_ROOT, env: { ...process.env, REDIS_URL: '' } }).then(() => undefined, (err: { code: number; stderr: string }) => err);
      assert.ok(failed, `the gateway refused ${config}`);
      assert.equal(failed.code, 2);
      assert.match(failed.stderr, message);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
});
