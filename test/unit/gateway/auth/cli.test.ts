/**
 * `infergate keys` and `infergate token` (shared/cli/keys.ts, shared/cli/token.ts), run in-process
 * against a key file in a temp dir, with console output captured.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseApiKey } from '../../../../gateway/auth/api-key.ts';
import { createJwtVerifier } from '../../../../gateway/auth/jwt-verifier.ts';
import { DEFAULT_KEY_FILE, keyStoreLocation } from '../../../../gateway/auth/open-key-store.ts';
import { parseDuration, runKeys } from '../../../../shared/cli/keys.ts';
import { runToken } from '../../../../shared/cli/token.ts';

const NOW = Date.UTC(2030, 0, 1);
const SECRET = 'cli-test-secret-cli-test-secret-1234567890';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs a CLI function, returning its exit code and what it printed. */
async function capture(t: TestContext, run: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const log = t.mock.method(console, 'log', (...args: unknown[]) => { out += `${args.join(' ')}\n`; });
  const error = t.mock.method(console, 'error', (...args: unknown[]) => { err += `${args.join(' ')}\n`; });
  try {
    return { code: await run(), out, err };
  } finally {
    log.mock.restore();
    error.mock.restore();
  }
}

test('durations', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('12h'), 43_200_000);
  assert.equal(parseDuration('30d'), 30 * 86_400_000);
  assert.equal(parseDuration('2w'), 14 * 86_400_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('0'), 0);
  for (const bad of ['', '30', 'd', '-1d', '1y', '1 d']) assert.throws(() => parseDuration(bad), bad);
});

test('keys create prints the key once; the file holds only its digest; list shows it', async (t) => {
  const file = join(await tempDir(t), 'keys.json');
  const created = await capture(t, () => runKeys(['create', '--file', file, '--name', 'ci', '--models', 'iris,mnist', '--rate', '5', '--burst', '10', '--expires', '30d', '--json'], {}, () => NOW));
  assert.equal(created.code, 0, created.err);
  const { key, record } = JSON.parse(created.out) as { key: string; record: Record<string, unknown> };
  const parsed = parseApiKey(key);
  assert.ok(parsed);
  assert.equal(record.digest, undefined, 'the digest is not shown');
  assert.deepEqual(
    { id: record.id, name: record.name, models: record.models, ratePerSec: record.ratePerSec, burst: record.burst, expiresAt: record.expiresAt },
    { id: parsed.id, name: 'ci', models: ['iris', 'mnist'], ratePerSec: 5, burst: 10, expiresAt: NOW + 30 * 86_400_000 },
  );
  assert.ok(!(await readFile(file, 'utf8')).includes(parsed.secret));

  const human = await capture(t, () => runKeys(['create', '--file', file, '--name', 'laptop'], {}, () => NOW));
  assert.equal(human.code, 0, human.err);
  const shown = human.out.match(/igk_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}/g) ?? [];
  assert.equal(shown.length, 1, 'the key appears exactly once');
  assert.match(human.out, /only time the key is shown/);
  assert.match(human.out, /models \* \(all\)/);

  const list = await capture(t, () => runKeys(['list', '--file', file], {}, () => NOW));
  assert.equal(list.code, 0);
  assert.match(list.out, /ID\s+NAME\s+PREFIX/);
  assert.match(list.out, new RegExp(`${parsed.id}\\s+ci\\s+igk_${parsed.id}_${parsed.secret.slice(0, 4)}…\\s+iris,mnist\\s+5/s burst 10`));
  assert.ok(!list.out.includes(parsed.secret));
  const listJson = await capture(t, () => runKeys(['list', '--json', '--file', file], {}, () => NOW));
  assert.deepEqual((JSON.parse(listJson.out) as Array<{ name: string }>).map((r) => r.name), ['ci', 'laptop']);
});

test('keys revoke and rotate', async (t) => {
  const file = join(await tempDir(t), 'keys.json');
  const { out } = await capture(t, () => runKeys(['create', '--file', file, '--name', 'svc', '--json'], {}, () => NOW));
  const id = (JSON.parse(out) as { record: { id: string } }).record.id;

  const rotated = await capture(t, () => runKeys(['rotate', id, '--grace', '1h', '--file', file, '--json'], {}, () => NOW));
  assert.equal(rotated.code, 0, rotated.err);
  const result = JSON.parse(rotated.out) as { key: string; record: { id: string; rotatedFrom: string }; replaces: string; oldKeyValidUntil: number };
  assert.ok(parseApiKey(result.key));
  assert.equal(result.record.rotatedFrom, id);
  assert.equal(result.oldKeyValidUntil, NOW + 3_600_000);
  const again = await capture(t, () => runKeys(['rotate', id, '--file', file], {}, () => NOW));
  assert.equal(again.code, 1);
  assert.match(again.err, /already rotated/);

  const revoked = await capture(t, () => runKeys(['revoke', result.record.id, '--file', file], {}, () => NOW + 5));
  assert.equal(revoked.code, 0, revoked.err);
  assert.match(revoked.out, /revoked key/);
  const list = await capture(t, () => runKeys(['list', '--file', file], {}, () => NOW + 10));
  assert.match(list.out, /revoked/);
  assert.match(list.out, /rotating until/);

  const unknown = await capture(t, () => runKeys(['revoke', '000000000000', '--file', file], {}, () => NOW));
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /no key with id/);
});

test('keys: usage errors exit 2 and write nothing', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'keys.json');
  for (const argv of [
    ['create', '--file', file],
    ['create', '--file', file, '--name', 'x', '--burst', '5'],
    ['create', '--file', file, '--name', 'x', '--rate', 'fast'],
    ['create', '--file', file, '--name', 'x', '--expires', 'soon'],
    ['create', '--file', file, '--name', 'x', '--models', ','],
    ['revoke', '--file', file],
    ['rotate', 'a', 'b', '--file', file],
    ['frobnicate', '--file', file],
    ['list', '--file', file, '--redis', 'redis://x'],
    ['list', '--bogus'],
  ]) {
    const { code } = await capture(t, () => runKeys(argv, {}));
    assert.equal(code, 2, argv.join(' '));
  }
  await assert.rejects(readFile(file), { code: 'ENOENT' });
});

test('keys --config reads auth.apiKeys.file; the store location follows the gateway config', async (t) => {
  const dir = await tempDir(t);
  const config = join(dir, 'gateway.yaml');
  await writeFile(config, `auth:\n  apiKeys:\n    file: ${join(dir, 'from-config.json')}\n`);
  const { code, err } = await capture(t, () => runKeys(['create', '--config', config, '--name', 'x'], {}));
  assert.equal(code, 0, err);
  assert.ok((await readFile(join(dir, 'from-config.json'), 'utf8')).includes('"name": "x"'));

  assert.deepEqual(keyStoreLocation({}, '/srv'), { kind: 'file', path: resolve('/srv', DEFAULT_KEY_FILE) });
  assert.deepEqual(keyStoreLocation({ auth: { apiKeys: { file: 'k.json' } } }, '/srv'), { kind: 'file', path: '/srv/k.json' });
  assert.deepEqual(keyStoreLocation({ redis: { url: 'redis://r:6379' } }, '/srv'), { kind: 'redis', url: 'redis://r:6379' });
  assert.deepEqual(keyStoreLocation({ redis: { url: 'redis://r' }, auth: { apiKeys: { file: 'k.json', redisKeyPrefix: '{x}:' } } }, '/srv'), { kind: 'redis', url: 'redis://r', keyPrefix: '{x}:' }, 'Redis wins when configured');
  assert.throws(() => keyStoreLocation({ redis: { url: 'redis://r' }, auth: { apiKeys: { redisKeyPrefix: 'no-tag:' } } }, '/srv'), /auth\.apiKeys\.redisKeyPrefix: needs a \{hash tag\}/, 'the gateway schema\'s rule');
  assert.throws(() => keyStoreLocation({ auth: { apiKeys: { store: 'memory' } } }, '/srv'), /auth\.apiKeys\.store/);
  assert.deepEqual(keyStoreLocation({ redis: { url: 'redis://r' }, auth: { apiKeys: { store: 'file' } } }, '/srv'), { kind: 'file', path: resolve('/srv', DEFAULT_KEY_FILE) });
  assert.throws(() => keyStoreLocation({ auth: { apiKeys: { store: 'redis' } } }, '/srv'));
});

test('token --secret mints an HS256 JWT the verifier accepts, with models and plan', async (t) => {
  const { code, out, err } = await capture(t, () => runToken(['--sub', 'alice', '--models', 'iris,mnist', '--plan', 'gold', '--ttl', '10m', '--secret', SECRET], {}, () => NOW));
  assert.equal(code, 0, err);
  const token = out.trim();
  const verifier = createJwtVerifier({ keys: [{ algorithms: ['HS256'], secret: SECRET }], maxLifetimeSec: 600, now: () => NOW });
  const result = verifier.verify(token);
  assert.ok(result.ok, result.ok ? '' : result.message);
  assert.deepEqual(result.principal, { subject: 'alice', kind: 'jwt', models: ['iris', 'mnist'], plan: 'gold' });
  assert.equal(result.expiresAt, NOW / 1000 + 600);
});

test('token takes INFERGATE_JWT_SECRET, or the config\'s first HS key with its kid, issuer and audience', async (t) => {
  const fromEnv = await capture(t, () => runToken(['--sub', 'bob', '--models', '*'], { INFERGATE_JWT_SECRET: SECRET }, () => NOW));
  assert.equal(fromEnv.code, 0, fromEnv.err);
  const envResult = createJwtVerifier({ keys: [{ algorithms: ['HS256'], secret: SECRET }], now: () => NOW }).verify(fromEnv.out.trim());
  assert.ok(envResult.ok);
  assert.equal(envResult.principal.models, '*');

  const dir = await tempDir(t);
  const config = join(dir, 'gateway.json');
  await writeFile(config, JSON.stringify({ auth: { jwt: { issuer: 'https://me', audience: ['infergate', 'x'], keys: [{ kid: 'rsa', algorithms: ['RS256'], publicKeyFile: 'x.pem' }, { kid: 'k1', algorithms: ['HS384'], secret: SECRET + SECRET }] } } }));
  const fromConfig = await capture(t, () => runToken(['--sub', 'carol', '--config', config], {}, () => NOW));
  assert.equal(fromConfig.code, 0, fromConfig.err);
  const verifier = createJwtVerifier({ keys: [{ kid: 'k1', algorithms: ['HS384'], secret: SECRET + SECRET }], issuer: 'https://me', audience: 'infergate', now: () => NOW });
  const result = verifier.verify(fromConfig.out.trim());
  assert.ok(result.ok, result.ok ? '' : result.reason);
  assert.deepEqual(result.principal.models, [], 'no --models: no models claim');

  // As in the gateway, INFERGATE_JWT_SECRET replaces the config key's secret.
  const overridden = await capture(t, () => runToken(['--sub', 'dave', '--config', config], { INFERGATE_JWT_SECRET: 'e'.repeat(48) }, () => NOW));
  assert.equal(overridden.code, 0, overridden.err);
  const envVerifier = createJwtVerifier({ keys: [{ kid: 'k1', algorithms: ['HS384'], secret: 'e'.repeat(48) }], issuer: 'https://me', audience: 'infergate', now: () => NOW });
  assert.ok(envVerifier.verify(overridden.out.trim()).ok);
});

test('token: no secret, no subject or a bad ttl exit 2', async (t) => {
  assert.equal((await capture(t, () => runToken(['--sub', 'a'], {}))).code, 2);
  assert.equal((await capture(t, () => runToken(['--secret', SECRET], {}))).code, 2);
  assert.equal((await capture(t, () => runToken(['--sub', 'a', '--secret', SECRET, '--ttl', 'forever'], {}))).code, 2);
  const short = await capture(t, () => runToken(['--sub', 'a', '--secret', 'short'], {}));
  assert.equal(short.code, 0);
  assert.match(short.err, /shorter than 32 bytes/);
});
