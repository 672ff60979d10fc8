// The pipeline's path matcher: each inference route with its one method, and the Allow list the
// gateway's 405 carries for the others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allowedInferenceMethods, matchInferenceRoute } from '../../../gateway/pipeline/inference-route.ts';

const CASES: ReadonlyArray<{ path: string; method: string; route: object }> = [
  { path: '/v2/models/iris/infer', method: 'POST', route: { protocol: 'v2', model: 'iris', version: undefined } },
  { path: '/v2/models/iris/versions/2/infer?x=1', method: 'POST', route: { protocol: 'v2', model: 'iris', version: '2' } },
  { path: '/v1/models/iris:predict', method: 'POST', route: { protocol: 'tf', model: 'iris', version: undefined } },
  { path: '/v1/models/iris/versions/3:predict', method: 'POST', route: { protocol: 'tf', model: 'iris', version: '3' } },
  { path: '/v1/models/iris', method: 'GET', route: { protocol: 'tf', model: 'iris', version: undefined } },
  { path: '/v1/models/iris/versions/3', method: 'GET', route: { protocol: 'tf', model: 'iris', version: '3' } },
  { path: '/v1/models/iris/metadata', method: 'GET', route: { protocol: 'tf', model: 'iris', version: undefined } },
  { path: '/v1/models/iris/versions/3/metadata', method: 'GET', route: { protocol: 'tf', model: 'iris', version: '3' } },
];

test('each inference path is taken with its own method only', () => {
  for (const { path, method, route } of CASES) {
    assert.deepEqual(matchInferenceRoute(method, path), route, `${method} ${path}`);
    for (const other of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].filter((m) => m !== method)) {
      assert.equal(matchInferenceRoute(other, path), undefined, `${other} ${path} must not reach a worker`);
    }
    assert.deepEqual(allowedInferenceMethods(path), [method], `Allow for ${path}`);
  }
});

test('other paths are not inference routes, and have no Allow list here', () => {
  for (const path of ['/v2/models/iris', '/v2/models/iris/ready', '/v2/health/ready', '/v1/models/iris/predict', '/v1/models/iris/versions/x', '/v1/models/a:b:predict', '/v2/models/m/versions/x/y/infer', '/ui/']) {
    for (const method of ['GET', 'POST']) assert.equal(matchInferenceRoute(method, path), undefined, `${method} ${path}`);
    assert.equal(allowedInferenceMethods(path), undefined, path);
  }
  assert.equal(matchInferenceRoute('POST', undefined), undefined);
});

test('a model name with bad percent-encoding is left to the router', () => {
  assert.equal(matchInferenceRoute('POST', '/v2/models/%E0%A4%A/infer'), undefined);
  assert.deepEqual(matchInferenceRoute('POST', '/v2/models/my%20model/infer'), { protocol: 'v2', model: 'my model', version: undefined });
});
