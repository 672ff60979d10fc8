// Who may call the public routes the gateway answers itself, with real processes: the repository
// index lists only the models the caller may use, model metadata and readiness take the same
// credential and scope as inference, and repository load/unload take the admin token — an ordinary
// credential is 403, none is 401, and a refused request changes nothing on the workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { getJson, postJson } from '../../helpers/http.ts';
import { startGateway, startWorker, type RunningGateway } from '../../helpers/processes.ts';
import { irisRepository, tempDir, writeConfig, FAST_CONFIG } from '../gateway/support.ts';

const SECRET = 'public-auth-test-secret-0123456789abcdefgh';
const sign = (models: string[] | '*'): string => jwt.sign({ sub: `scope-${String(models)}`, models }, SECRET, { algorithm: 'HS256', expiresIn: 600 });
const bearer = (credential: string): Record<string, string> => ({ authorization: `Bearer ${credential}` });

interface IndexEntry { name: string; version: string; state: string }

test('authentication and scope on the public repository and metadata routes', async (t) => {
  const repo = await irisRepository(t, ['house-price']);
  const worker = await startWorker(t, repo);
  const dir = await tempDir(t, 'public-auth');
  const strict = await writeConfig(join(dir, 'strict.yaml'), { ...FAST_CONFIG, auth: { apiKeys: { file: join(dir, 'keys.json') } } });
  const open = await writeConfig(join(dir, 'open.yaml'), { ...FAST_CONFIG, auth: { apiKeys: { file: join(dir, 'keys.json') }, anonymous: { enabled: true, models: ['iris'] } } });
  const [gateway, anonymousGateway] = await Promise.all([
    startGateway(t, [worker.url], { requireAuth: true, args: ['--config', strict], env: { INFERGATE_JWT_SECRET: SECRET } }),
    startGateway(t, [worker.url], { requireAuth: true, args: ['--config', open], env: { INFERGATE_JWT_SECRET: SECRET } }),
  ]);
  // What the worker itself serves: the gateway's answers are computed from it, not written down.
  const served = ((await postJson(`${worker.url}/v2/repository/index`, {})).body as IndexEntry[]).map((e) => e.name).sort();
  assert.deepEqual(served, ['house-price', 'iris']);
  const createKey = async (g: RunningGateway, models: string[]): Promise<string> => {
    const res = await g.admin('/admin/keys', { method: 'POST', body: JSON.stringify({ name: `key-${models}`, models }) });
    assert.equal(res.status, 201);
    return ((await res.json()) as { key: string }).key;
  };
  const indexNames = async (g: RunningGateway, headers: Record<string, string>): Promise<string[]> => {
    const res = await postJson(`${g.url}/v2/repository/index`, {}, headers);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return [...new Set((res.body as IndexEntry[]).map((e) => e.name))].sort();
  };

  await t.test('repository index: 401 without a valid credential, else only the models in scope', async () => {
    const none = await postJson(`${gateway.url}/v2/repository/index`, {});
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'GW_ERR_UNAUTHENTICATED');
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="infergate"');
    const bad = await postJson(`${gateway.url}/v2/repository/index`, {}, bearer('not-a-token'));
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate') ?? '', /error="invalid_token"/);

    for (const scope of [['iris'], ['house-price'], ['iris', 'house-price'], ['resnet']]) {
      const expected = served.filter((m) => scope.includes(m));
      assert.deepEqual(await indexNames(gateway, bearer(sign(scope))), expected, `JWT for ${scope}`);
      assert.deepEqual(await indexNames(gateway, { 'x-api-key': await createKey(gateway, scope) }), expected, `API key for ${scope}`);
    }
    assert.deepEqual(await indexNames(gateway, bearer(sign('*'))), served, 'every model for "*"');
    assert.deepEqual(await indexNames(anonymousGateway, {}), ['iris'], 'anonymous callers see the anonymous scope');
  });

  await t.test('model metadata and readiness: 401 without a credential, 403 outside the scope', async () => {
    const irisOnly = bearer(sign(['iris']));
    for (const path of ['/v2/models/{m}', '/v2/models/{m}/versions/1', '/v2/models/{m}/ready', '/v2/models/{m}/versions/1/ready']) {
      const none = await getJson(gateway.url + path.replace('{m}', 'iris'));
      assert.equal(none.status, 401, path);
      assert.equal(none.body.code, 'GW_ERR_UNAUTHENTICATED');
      const allowed = await getJson(gateway.url + path.replace('{m}', 'iris'), { headers: irisOnly });
      assert.equal(allowed.status, 200, path);
      assert.equal(allowed.body.name, 'iris');
      const outside = await getJson(gateway.url + path.replace('{m}', 'house-price'), { headers: irisOnly });
      assert.equal(outside.status, 403, path);
      assert.equal(outside.body.code, 'GW_ERR_FORBIDDEN');
      assert.match(outside.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
      const unknown = await getJson(gateway.url + path.replace('{m}', 'nope'), { headers: irisOnly });
      assert.equal(unknown.status, 403, 'a model outside the scope is refused before it is looked up: no probing for names');
      assert.equal((await getJson(anonymousGateway.url + path.replace('{m}', 'iris'))).status, 200, 'anonymous, in scope');
      assert.equal((await getJson(anonymousGateway.url + path.replace('{m}', 'house-price'))).status, 403, 'anonymous, out of scope');
    }
  });

  await t.test('load and unload: the admin token only; refusals leave every worker as it was', async () => {
    const workerState = async (): Promise<string | undefined> => ((await postJson(`${worker.url}/v2/repository/index`, {})).body as IndexEntry[]).find((e) => e.name === 'house-price')?.state;
    const key = await createKey(gateway, ['*']);
    for (const action of ['unload', 'load']) {
      const path = `/v2/repository/models/house-price/${action}`;
      for (const g of [gateway, anonymousGateway]) {
        const none = await postJson(g.url + path, {});
        assert.equal(none.status, 401, `${action} without a credential, anonymous access ${g === gateway ? 'off' : 'on'}`);
        assert.equal(none.body.code, 'GW_ERR_UNAUTHENTICATED');
        assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="infergate"');
      }
      for (const headers of [bearer(sign('*')), bearer(key), { 'x-api-key': key }]) {
        const ordinary = await postJson(gateway.url + path, {}, headers);
        assert.equal(ordinary.status, 403, `${action} with an ordinary credential`);
        assert.equal(ordinary.body.code, 'GW_ERR_ADMIN_REQUIRED');
        assert.match(ordinary.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
      }
      const forged = await postJson(gateway.url + path, {}, bearer(`${gateway.adminToken}x`));
      assert.equal(forged.status, 401, 'a wrong admin token is an invalid credential');
      assert.match(forged.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      assert.equal(await workerState(), 'READY', `no refused ${action} reached the worker`);
    }

    const unload = await postJson(`${gateway.url}/v2/repository/models/house-price/unload`, {}, bearer(gateway.adminToken));
    assert.equal(unload.status, 200, JSON.stringify(unload.body));
    assert.equal(unload.body.ok, true);
    assert.notEqual(await workerState(), 'READY', 'the admin token unloaded it');
    const load = await postJson(`${gateway.url}/v2/repository/models/house-price/load`, {}, bearer(gateway.adminToken));
    assert.equal(load.status, 200);
    assert.equal(await workerState(), 'READY');
  });
});
