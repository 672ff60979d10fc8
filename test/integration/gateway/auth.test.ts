// Authentication, authorization and throttling through a real gateway process: every credential
// path, the RFC 6750 answers, API-key lifecycle through the admin API and the CLI, JWT claims to
// scope, and the token bucket's 429 with its headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import jwt from 'jsonwebtoken';
import { CLI, REPO_ROOT, startGateway, waitFor } from '../../helpers/processes.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';

const run = promisify(execFile);
const SECRET = 'auth-test-secret-0123456789abcdefghijklmn';
const BODY = JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1], data: [1] }] });

test('authentication, authorization and throttling at the gateway', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-auth-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'keys.json');
  const config = join(dir, 'gateway.yaml');
  await writeFile(config, [
    'auth:',
    `  apiKeys: { file: ${JSON.stringify(keyFile)}, cacheTtlMs: 300 }`,
    'throttle:',
    '  plans: { tiny: { ratePerSec: 0.5, burst: 3 } }',
  ].join('\n'));
  const upstream = await startFaultUpstream(t, { models: [{ name: 'echo', version: '1' }, { name: 'other', version: '1' }] });
  const gateway = await startGateway(t, [upstream.url], { requireAuth: true, args: ['--config', config], env: { INFERGATE_JWT_SECRET: SECRET } });
  const infer = (headers: Record<string, string>, model = 'echo'): Promise<Response> =>
    fetch(`${gateway.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: BODY });
  const createKey = async (body: object): Promise<{ key: string; record: { id: string } }> => {
    const res = await gateway.admin('/admin/keys', { method: 'POST', body: JSON.stringify(body) });
    assert.equal(res.status, 201);
    return (await res.json()) as { key: string; record: { id: string } };
  };

  await t.test('no credential: 401 with a bare Bearer challenge; a bad one: error="invalid_token"', async () => {
    const none = await infer({});
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="infergate"');
    assert.equal(((await none.json()) as { code: string }).code, 'GW_ERR_UNAUTHENTICATED');
    const bad = await infer({ authorization: 'Bearer not-a-token' });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    const typo = await infer({ 'x-api-key': 'igk_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBCCCCCC' });
    assert.equal(typo.status, 401, 'a key with a bad checksum is refused');
    assert.equal(upstream.requestsTo('/v2/models/echo/infer'), 0, 'nothing unauthenticated reached a worker');
  });

  await t.test('API key by Bearer and by X-API-Key; two different credentials refused; scope 403', async () => {
    const { key } = await createKey({ name: 'echo-only', models: ['echo'] });
    assert.equal((await infer({ authorization: `Bearer ${key}` })).status, 200);
    assert.equal((await infer({ 'x-api-key': key })).status, 200);
    const other = (await createKey({ name: 'second', models: '*' })).key;
    const conflict = await infer({ authorization: `Bearer ${key}`, 'x-api-key': other });
    assert.equal(conflict.status, 401);
    const scope = await infer({ 'x-api-key': key }, 'other');
    assert.equal(scope.status, 403);
    assert.match(scope.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    assert.equal(((await scope.json()) as { code: string }).code, 'GW_ERR_FORBIDDEN');
  });

  await t.test('the key\'s own rate plan: burst admitted, then 429 with Retry-After and RateLimit headers', async () => {
    const { key } = await createKey({ name: 'limited', models: '*', ratePerSec: 0.5, burst: 3 });
    const statuses: number[] = [];
    let denied: Response | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await infer({ 'x-api-key': key });
      statuses.push(res.status);
      if (res.status === 200) assert.equal(res.headers.get('ratelimit-limit'), '3');
      if (res.status === 429) denied = res;
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429], 'burst of 3, then refused (rate 0.5/s adds nothing in this time)');
    assert.ok(denied !== undefined);
    assert.equal(((await denied.json()) as { code: string }).code, 'GW_ERR_RATE_LIMITED');
    assert.ok(Number(denied.headers.get('retry-after')) >= 1);
    assert.equal(denied.headers.get('ratelimit-remaining'), '0');
  });

  await t.test('the repository index and model metadata take tokens too: the index reaches every worker', async () => {
    const { key } = await createKey({ name: 'index-caller', models: '*', ratePerSec: 0.01, burst: 2 });
    const indexCalls = (): number => upstream.requestsTo('/v2/repository/index');
    const before = indexCalls();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gateway.url}/v2/repository/index`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: '{}' });
      statuses.push(res.status);
      if (res.status === 429) assert.equal(((await res.json()) as { code: string }).code, 'GW_ERR_RATE_LIMITED');
      else await res.body?.cancel();
    }
    assert.deepEqual(statuses, [200, 200, 429, 429]);
    // Two admitted calls reach the worker; one more may be the gateway's own periodic index refresh.
    assert.ok(indexCalls() - before <= 3, `a refused index call never fans out to the workers (${indexCalls() - before} index calls)`);
    const metadata = await fetch(`${gateway.url}/v2/models/echo`, { headers: { 'x-api-key': key } });
    assert.equal(metadata.status, 429, 'the same bucket');
    await metadata.body?.cancel();
  });

  await t.test('revocation through the admin API takes effect within seconds', async () => {
    const { key, record } = await createKey({ name: 'to-revoke', models: '*' });
    assert.equal((await infer({ 'x-api-key': key })).status, 200);
    assert.equal((await gateway.admin(`/admin/keys/${record.id}`, { method: 'DELETE' })).status, 200);
    await waitFor(async () => (await infer({ 'x-api-key': key })).status === 401, 5000);
  });

  await t.test('rotation keeps the old key valid for the grace period, and the new one works', async () => {
    const { key, record } = await createKey({ name: 'to-rotate', models: '*' });
    const rotated = await gateway.admin(`/admin/keys/${record.id}/rotate`, { method: 'POST', body: JSON.stringify({ graceMs: 60_000 }) });
    assert.equal(rotated.status, 201);
    const { key: next } = (await rotated.json()) as { key: string };
    assert.notEqual(next, key);
    assert.equal((await infer({ 'x-api-key': next })).status, 200);
    assert.equal((await infer({ 'x-api-key': key })).status, 200, 'the old key still works during the grace period');
    const listing = (await (await gateway.admin('/admin/keys')).json()) as { keys: Array<Record<string, unknown>> };
    assert.ok(listing.keys.every((k) => k.digest === undefined), 'the admin API never shows digests');
  });

  await t.test('a key made with the CLI against the same file works at once, and the secret never lands in the file', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'keys', 'create', '--file', keyFile, '--name', 'from-cli', '--models', 'echo', '--json'], { cwd: REPO_ROOT });
    const created = JSON.parse(stdout) as { key: string };
    await waitFor(async () => (await infer({ authorization: `Bearer ${created.key}` })).status === 200, 5000);
    const fileText = await (await import('node:fs/promises')).readFile(keyFile, 'utf8');
    assert.ok(!fileText.includes(created.key.slice(-38)), 'only the digest is stored');
  });

  await t.test('JWT: claims map to scope; expired and wrongly signed tokens are refused', async () => {
    const sign = (claims: object): string => jwt.sign({ exp: Math.floor(Date.now() / 1000) + 300, ...claims }, SECRET, { algorithm: 'HS256' });
    assert.equal((await infer({ authorization: `Bearer ${sign({ sub: 'alice', models: ['echo'] })}` })).status, 200);
    assert.equal((await infer({ authorization: `Bearer ${sign({ sub: 'alice', models: ['echo'] })}` }, 'other')).status, 403);
    assert.equal((await infer({ authorization: `Bearer ${sign({ sub: 'alice', models: ['echo'], exp: Math.floor(Date.now() / 1000) - 600 })}` })).status, 401);
    const forged = jwt.sign({ sub: 'mallory', models: ['echo'] }, 'another-secret-0123456789abcdefghijklmn', { algorithm: 'HS256', expiresIn: 300 });
    assert.equal((await infer({ authorization: `Bearer ${forged}` })).status, 401);
    const { stdout } = await run(process.execPath, [CLI, 'token', '--sub', 'bob', '--models', 'echo', '--ttl', '5m', '--secret', SECRET], { cwd: REPO_ROOT });
    assert.equal((await infer({ authorization: `Bearer ${stdout.trim()}` })).status, 200, 'infergate token mints a token the gateway accepts');
  });
});
