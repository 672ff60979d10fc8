// The pipeline's path matcher: each inference route with its methods, the Allow list the gateway's
// 405 carries for the others, and the origin form of an absolute-form target.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allowedInferenceMethods, matchInferenceRoute, originFormOf } from '../../../gateway/pipeline/inference-route.ts';

const CASES: ReadonlyArray<{ path: string; methods: readonly string[]; route: object }> = [
  { path: '/v2/models/iris/infer', methods: ['POST'], route: { protocol: 'v2', model: 'iris', version: undefined } },
  { path: '/v2/models/iris/versions/2/infer?x=1', methods: ['POST'], route: { protocol: 'v2', model: 'iris', version: '2' } },
  { path: '/v1/models/iris:predict', methods: ['POST'], route: { protocol: 'tf', model: 'iris', version: undefined } },
  { path: '/v1/models/iris/versions/3:predict', methods: ['POST'], route: { protocol: 'tf', model: 'iris', version: '3' } },
  { path: '/v1/models/iris', methods: ['GET', 'HEAD'], route: { protocol: 'tf', model: 'iris', version: undefined } },
  { path: '/v1/models/iris/versions/3', methods: ['GET', 'HEAD'], route: { protocol: 'tf', model: 'iris', version: '3' } },
  { path: '/v1/models/iris/metadata', methods: ['GET', 'HEAD'], route: { protocol: 'tf', model: 'iris', version: undefined } },
  { path: '/v1/models/iris/versions/3/metadata', methods: ['GET', 'HEAD'], route: { protocol: 'tf', model: 'iris', version: '3' } },
];

test('each inference path is taken with its own methods only', () => {
  for (const { path, methods, route } of CASES) {
    for (const method of methods) assert.deepEqual(matchInferenceRoute(method, path), route, `${method} ${path}`);
    for (const other of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].filter((m) => !methods.includes(m))) {
      assert.equal(matchInferenceRoute(other, path), undefined, `${other} ${path} must not reach a worker`);
    }
    assert.deepEqual(allowedInferenceMethods(path), methods, `Allow for ${path}`);
  }
});

test('an absolute-form target has an origin form; an origin-form one or a non-URL has none', () => {
  assert.equal(originFormOf('http://gw.example:8080/v2/models/iris/infer?x=1'), '/v2/models/iris/infer?x=1');
  assert.equal(originFormOf('HTTPS://gw.example/v1/models/iris:predict'), '/v1/models/iris:predict');
  assert.equal(originFormOf('/v2/models/iris/infer'), undefined);
  assert.equal(originFormOf('*'), undefined);
  assert.equal(originFormOf('gw.example:443'), undefined, 'authority form (CONNECT) is not a path');
  assert.equal(originFormOf('http://[bad/v2'), undefined);
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
