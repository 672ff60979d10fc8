// A method an inference route does not have (GET …:predict, POST on a TF model's status or
// metadata, GET …/infer) is answered by the gateway itself: 405 with Allow and the JSON error
// body, and no worker sees the request. The route's own method still goes through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type RunningGateway } from '../../helpers/processes.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';

/** Each (method, path) is answered 405 with that Allow and the JSON error body of DESIGN.md. */
async function expect405(gateway: RunningGateway, wrong: ReadonlyArray<[method: string, path: string, allow: string]>): Promise<void> {
  for (const [method, path, allow] of wrong) {
    const res = await fetch(gateway.url + path, { method, ...(method === 'GET' ? {} : { headers: { 'content-type': 'application/json' }, body: '{}' }) });
    const where = `${method} ${path}`;
    assert.equal(res.status, 405, where);
    assert.equal(res.headers.get('allow'), allow, where);
    const body = (await res.json()) as { error: string; code: string; request_id: string };
    assert.equal(body.code, 'ERR_METHOD_NOT_ALLOWED', where);
    assert.equal(typeof body.error, 'string', where);
    assert.equal(body.request_id, res.headers.get('x-request-id'), where);
  }
}

test('wrong methods on inference paths: the gateway answers 405, no worker is asked', async (t) => {
  const upstream = await startFaultUpstream(t);
  const gateway = await startGateway(t, [upstream.url]);
  const wrong: Array<[method: string, path: string, allow: string]> = [
    ['GET', '/v1/models/echo:predict', 'POST'],
    ['PUT', '/v1/models/echo/versions/1:predict', 'POST'],
    ['POST', '/v1/models/echo', 'GET, HEAD'],
    ['POST', '/v1/models/echo/versions/1', 'GET, HEAD'],
    ['DELETE', '/v1/models/echo/metadata', 'GET, HEAD'],
    ['GET', '/v2/models/echo/infer', 'POST'],
  ];
  await expect405(gateway, wrong);
  for (const [, path] of wrong) assert.equal(upstream.requestsTo(path), 0, `${path} reached a worker`);

  // The methods the routes do have are forwarded (the fault upstream speaks V2 only: it answers
  // TF paths 404 itself, which is enough to show they reached it).
  const predict = await fetch(`${gateway.url}/v1/models/echo:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [[1]] }) });
  await predict.body?.cancel();
  assert.equal(upstream.requestsTo('/v1/models/echo:predict'), 1);
  await (await fetch(`${gateway.url}/v1/models/echo/metadata`)).body?.cancel();
  assert.equal(upstream.requestsTo('/v1/models/echo/metadata'), 1);
  const infer = await fetch(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1], data: [1] }] }) });
  assert.equal(infer.status, 200);
  await infer.body?.cancel();
});

test('wrong methods on the gateway\'s own routes: 405 with the Allow the route has; unknown paths stay 404', async (t) => {
  const upstream = await startFaultUpstream(t);
  const gateway = await startGateway(t, [upstream.url]);
  const wrong: Array<[method: string, path: string, allow: string]> = [
    ['POST', '/v2/health/live', 'GET, HEAD'],
    ['DELETE', '/v2/health/ready', 'GET, HEAD'],
    ['PUT', '/v2', 'GET, HEAD'],
    ['DELETE', '/v2/models/echo', 'GET, HEAD'],
    ['POST', '/v2/models/echo/versions/1/ready', 'GET, HEAD'],
    ['GET', '/v2/repository/index', 'POST'],
    ['GET', '/v2/repository/models/echo/unload', 'POST'],
    ['POST', '/metrics', 'GET, HEAD'],
    ['PUT', '/openapi.json', 'GET, HEAD'],
    ['POST', '/ui/index.html', 'GET, HEAD'],
  ];
  await expect405(gateway, wrong);

  const unknown = await fetch(`${gateway.url}/v2/nothing-here`, { method: 'POST' });
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { code: string }).code, 'ERR_NOT_FOUND');

  // Admin routes: the token is checked first, then the method.
  const anonymous = await fetch(`${gateway.adminUrl}/admin/strategy`, { method: 'DELETE' });
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();
  const admin = await gateway.admin('/admin/strategy', { method: 'DELETE' });
  assert.equal(admin.status, 405);
  assert.equal(admin.headers.get('allow'), 'GET, HEAD, PUT');
  assert.equal(((await admin.json()) as { code: string }).code, 'ERR_METHOD_NOT_ALLOWED');
  const workers = await gateway.admin('/admin/workers', { method: 'PATCH' });
  assert.equal(workers.status, 405);
  assert.equal(workers.headers.get('allow'), 'GET, HEAD, POST');
  await workers.body?.cancel();
});
