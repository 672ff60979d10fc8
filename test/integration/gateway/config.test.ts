// The gateway's configuration and admin API, with real processes: a bad config file stops the
// process at boot with a message naming the bad key; YAML and JSON both load; the admin API is
// behind its token, never shows secrets, and adds, drains and removes workers at run time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, REPO_ROOT, startWorker, TEST_ADMIN_TOKEN, waitFor } from '../../helpers/processes.ts';
import { adminWorkers, inferIris, irisRepository, startConfiguredGateway, tempDir, waitForWorker, writeConfig } from './support.ts';

/** Runs `infergate gateway --config <file>` expecting it to refuse to start. */
async function bootFailure(configPath: string, adminToken = TEST_ADMIN_TOKEN): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, 'gateway', '--config', configPath, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'], {
    cwd: REPO_ROOT,
    env: { ...process.env, INFERGATE_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  child.stdout.resume();
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000); // a gateway that did start is a failure, not a hang
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  return { code, stderr, ms: performance.now() - started };
}

test('config errors name the bad key and stop the process', async (t) => {
  const dir = await tempDir(t, 'badconf');
  const cases: Array<{ name: string; file: string; config: object; expect: RegExp[] }> = [
    { name: 'unknown key', file: 'typo.yaml', config: { balancing: { strategyy: 'random' } }, expect: [/balancing\.strategyy/, /unknown key/] },
    { name: 'wrong type', file: 'type.yaml', config: { health: { intervalMs: 'fast' } }, expect: [/health\.intervalMs/, /expected number/] },
    { name: 'unknown strategy', file: 'strategy.json', config: { balancing: { strategy: 'fastest' } }, expect: [/balancing\.strategy\b/, /round-robin/] },
    { name: 'unknown top-level key', file: 'top.json', config: { listen: { port: 0 }, wrokers: [] }, expect: [/'wrokers'/] },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      const path = await writeConfig(join(dir, c.file), c.config);
      const { code, stderr } = await bootFailure(path);
      assert.notEqual(code, null, 'the process exits by itself, it is not killed');
      assert.notEqual(code, 0, 'the process exits non-zero');
      for (const re of c.expect) assert.match(stderr, re, 'stderr names the problem');
      assert.ok(stderr.includes(c.file), 'stderr names the file');
    });
  }

  await t.test('a short admin token from the environment is refused like one in the file', async () => {
    const path = await writeConfig(join(dir, 'fine.json'), {});
    const { code, stderr } = await bootFailure(path, 'a');
    assert.notEqual(code, null, 'the process exits by itself, it is not killed');
    assert.notEqual(code, 0);
    assert.match(stderr, /admin\.token/);
  });

  await t.test('a file that is not valid JSON is named', async () => {
    const path = join(dir, 'broken.json');
    await writeFile(path, '{"balancing": ');
    const { code, stderr } = await bootFailure(path);
    assert.notEqual(code, 0);
    assert.match(stderr, /broken\.json/);
    assert.match(stderr, /not valid JSON/);
  });
});

test('YAML and JSON config files are both accepted', async (t) => {
  const repo = await irisRepository(t);
  const worker = await startWorker(t, repo);
  const [yaml, json] = await Promise.all([
    startConfiguredGateway(t, [worker.url], { balancing: { strategy: 'random' } }, { file: 'gateway.yaml' }),
    startConfiguredGateway(t, [worker.url], { balancing: { strategy: 'least-connections' }, limits: { bodyBytes: 4096 } }, { file: 'gateway.json' }),
  ]);
  for (const [gateway, strategy] of [[yaml, 'random'], [json, 'least-connections']] as const) {
    const config = (await (await gateway.admin('/admin/config')).json()) as { balancing: { strategy: string }; health: { intervalMs: number } };
    assert.equal(config.balancing.strategy, strategy, `${gateway.configPath} was read`);
    assert.equal(config.health.intervalMs, 100);
    assert.equal((await inferIris(gateway.url)).status, 200);
  }
  const jsonConfig = (await (await json.admin('/admin/config')).json()) as { limits: { bodyBytes: number } };
  assert.equal(jsonConfig.limits.bodyBytes, 4096);
});

test('admin API', async (t) => {
  const repo = await irisRepository(t);
  const [first, second] = await Promise.all([startWorker(t, repo), startWorker(t, repo)]);
  // The admin token is in the file too (the same as the environment's), so masking is visible.
  const gateway = await startConfiguredGateway(t, [first.url], { admin: { token: TEST_ADMIN_TOKEN }, balancing: { strategy: 'round-robin' } });

  await t.test('401 with WWW-Authenticate without a token, or with a wrong one', async () => {
    const none = await fetch(`${gateway.adminUrl}/admin/workers`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer realm="infergate-admin"$/);
    const body = (await none.json()) as { code: string; error: string };
    assert.equal(body.code, 'GW_ERR_ADMIN_UNAUTHORIZED');
    assert.equal(typeof body.error, 'string');

    const wrong = await fetch(`${gateway.adminUrl}/admin/config`, { headers: { authorization: 'Bearer not-the-admin-token-at-all' } });
    assert.equal(wrong.status, 401);
    assert.match(wrong.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    await wrong.body?.cancel();

    for (const [method, path] of [['PUT', '/admin/strategy'], ['POST', '/admin/workers'], ['DELETE', '/admin/workers/x']] as const) {
      const res = await fetch(`${gateway.adminUrl}${path}`, { method, headers: { 'content-type': 'application/json' }, body: method === 'DELETE' ? undefined : '{}' });
      assert.equal(res.status, 401, `${method} ${path}`);
      await res.body?.cancel();
    }
  });

  await t.test('the admin API is not served on the public port', async () => {
    const res = await fetch(`${gateway.url}/admin/workers`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
    assert.equal(res.status, 404);
    await res.body?.cancel();
  });

  await t.test('GET /admin/config masks the admin token', async () => {
    const res = await gateway.admin('/admin/config');
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(!text.includes(TEST_ADMIN_TOKEN), 'the token never appears in the config view');
    const config = JSON.parse(text) as { admin: { token: string }; balancing: { strategy: string } };
    assert.equal(config.admin.token, '***');
    assert.equal(config.balancing.strategy, 'round-robin');
  });

  const firstId = (await adminWorkers(gateway))[0]!.id;
  let secondId = '';

  await t.test('POST /admin/workers adds a worker, which is admitted and takes traffic', async () => {
    const res = await gateway.admin('/admin/workers', { method: 'POST', body: JSON.stringify({ url: second.url }) });
    assert.equal(res.status, 201);
    const added = (await res.json()) as { id: string; url: string; source: string };
    assert.equal(added.url, new URL(second.url).origin);
    assert.equal(added.source, 'admin');
    secondId = added.id;
    await waitForWorker(gateway, second.url, (w) => w.ready);
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = await inferIris(gateway.url);
      assert.equal(r.status, 200);
      seen.add(r.headers.get('x-infergate-worker') ?? '');
      await r.body?.cancel();
    }
    assert.deepEqual([...seen].sort(), [firstId, secondId].sort(), 'round-robin sends to both');

    const again = await gateway.admin('/admin/workers', { method: 'POST', body: JSON.stringify({ url: second.url }) });
    assert.equal(again.status, 409);
    assert.equal(((await again.json()) as { code: string }).code, 'GW_ERR_CONFLICT');
    const bad = await gateway.admin('/admin/workers', { method: 'POST', body: JSON.stringify({ url: 'not a url' }) });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'ERR_BAD_REQUEST');
  });

  await t.test('drain stops routing to a worker; undrain brings it back', async () => {
    const drained = await gateway.admin(`/admin/workers/${secondId}/drain`, { method: 'POST' });
    assert.equal(drained.status, 200);
    assert.equal(((await drained.json()) as { draining: boolean }).draining, true);
    for (let i = 0; i < 20; i++) {
      const r = await inferIris(gateway.url);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-infergate-worker'), firstId, 'a drained worker gets no request');
      await r.body?.cancel();
    }
    const undrained = await gateway.admin(`/admin/workers/${secondId}/undrain`, { method: 'POST' });
    assert.equal(undrained.status, 200);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await inferIris(gateway.url);
      seen.add(r.headers.get('x-infergate-worker') ?? '');
      await r.body?.cancel();
    }
    assert.ok(seen.has(secondId), 'undrained worker takes traffic again');
    const unknown = await gateway.admin('/admin/workers/w-nope/drain', { method: 'POST' });
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
  });

  await t.test('DELETE /admin/workers/:id removes a worker', async () => {
    const res = await gateway.admin(`/admin/workers/${secondId}`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    const workers = await adminWorkers(gateway);
    assert.deepEqual(workers.map((w) => w.id), [firstId]);
    for (let i = 0; i < 10; i++) {
      const r = await inferIris(gateway.url);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-infergate-worker'), firstId);
      await r.body?.cancel();
    }
    const again = await gateway.admin(`/admin/workers/${secondId}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    await again.body?.cancel();
  });

  await t.test('removing the last worker: not ready, inference 503 or 404, never a hang', async () => {
    const res = await gateway.admin(`/admin/workers/${firstId}`, { method: 'DELETE' });
    assert.equal(res.status, 204);
    await waitFor(async () => (await fetch(`${gateway.url}/v2/health/ready`)).status === 503, 5000);
    const r = await inferIris(gateway.url);
    assert.ok(r.status === 404 || r.status === 503, `status ${r.status}`);
    await r.body?.cancel();
  });
});
