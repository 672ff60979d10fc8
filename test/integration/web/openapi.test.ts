// The OpenAPI document against the gateway itself. First, agreement: every route the two express
// apps serve (found by walking their routers) and every inference path the pipeline's matcher
// takes is in the document, on the right port, and every documented operation is served. Then
// truth: a real gateway in front of real workers is called on every documented operation (and on
// the usual failures), and each JSON answer is validated against the document's schema for its
// status, which must be documented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { buildGateway } from '../../../gateway/app.ts';
import { parseGatewayConfig } from '../../../gateway/config/load.ts';
import { matchInferenceRoute } from '../../../gateway/pipeline/inference-route.ts';
import { MemoryLimiter } from '../../../gateway/throttle/memory-limiter.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { resolvePointer, validate } from '../../helpers/json-schema.ts';
import { startGateway, startWorker } from '../../helpers/processes.ts';
import { irisRepository, tempDir, writeConfig, FAST_CONFIG } from '../gateway/support.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the document is walked as data
type Side = 'public' | 'admin';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
const SECRET = 'openapi-test-secret-0123456789abcdefghij';
/** Values for path parameters when a documented path is turned into a request path. */
const SAMPLE: Record<string, string> = { model: 'iris', version: '1', id: 'w-0123456789', path: 'index.html', file: 'swagger-ui.css' };

function instantiate(template: string): string {
  return template.replace(/\{(\w+)\}/g, (_m, name: string) => SAMPLE[name] ?? name);
}

/** A documented path as a regular expression over request paths. */
function templateRegex(template: string): RegExp {
  return new RegExp(`^${template.split(/\{\w+\}/).map((s) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')).join('[^/]+')}$`);
}

/** The ports a documented path is served on, read from its `servers` in the public port's copy. */
function sidesOf(item: Json): Set<Side> {
  if (item.servers === undefined) return new Set(['public']);
  return new Set((item.servers as Json[]).map((s) => (s.url === '/' ? 'public' : 'admin')));
}

interface ServedRoute { side: Side; method: string; path: string; layer: { match(path: string): boolean } }

/** Every route layer of an express app, recursing into mounted routers. */
function expressRoutes(app: unknown, side: Side): ServedRoute[] {
  const out: ServedRoute[] = [];
  const walk = (stack: Json[]): void => {
    for (const layer of stack) {
      if (layer.route !== undefined) {
        for (const method of Object.keys(layer.route.methods)) out.push({ side, method, path: String(layer.route.path), layer: layer as ServedRoute['layer'] });
      } else if (Array.isArray(layer.handle?.stack)) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as Json).router.stack);
  return out;
}

/** Express path syntax → OpenAPI template: `:id` and `*path` become `{id}` and `{path}`. */
function toTemplate(path: string): string {
  return path.replace(/[:*](\w+)/g, '{$1}');
}

test('every route the gateway serves is documented, and every documented route is served', async (t) => {
  const config = parseGatewayConfig({ auth: { apiKeys: { enabled: false } }, health: { intervalMs: 60_000 } }, 'test');
  const gateway = buildGateway(config, { logger: silentLogger(), now: () => performance.now(), rng: Math.random, adminToken: 'x'.repeat(20), limiter: new MemoryLimiter() });
  t.after(() => gateway.close());
  const served = [...expressRoutes(gateway.apps.public, 'public'), ...expressRoutes(gateway.apps.admin, 'admin')];
  assert.ok(served.length > 30, 'the walk found the routes');
  const handler = { public: gateway.handlePublic, admin: gateway.handleAdmin };
  const doc = await documentFrom(handler.public);

  for (const route of served) {
    const item = doc.paths[toTemplate(route.path)];
    assert.ok(item !== undefined, `${route.method.toUpperCase()} ${route.path} (${route.side}) is served but not documented`);
    assert.ok(item[route.method] !== undefined, `${route.method.toUpperCase()} ${route.path} is served but only ${Object.keys(item).filter((k) => METHODS.includes(k))} are documented`);
    assert.ok(sidesOf(item).has(route.side), `${route.path} is served on the ${route.side} port but documented for ${[...sidesOf(item)]}`);
  }

  // The pipeline's matcher: every path shape it takes is documented (the worker answers 405 for a
  // method its route does not have, as documented methods are the ones that exist there).
  const shapes = ['/v2/models/m/infer', '/v2/models/m/versions/1/infer', '/v1/models/m', '/v1/models/m/versions/1', '/v1/models/m:predict',
    '/v1/models/m/versions/1:predict', '/v1/models/m/metadata', '/v1/models/m/versions/1/metadata', '/v2/models/m/versions/x/y/infer', '/v1/models/m/predict'];
  const templates = Object.keys(doc.paths);
  for (const shape of shapes) {
    for (const method of ['GET', 'POST', 'PUT', 'DELETE']) {
      if (matchInferenceRoute(method, shape) === undefined) continue;
      const documented = templates.find((tpl) => templateRegex(tpl).test(shape));
      assert.ok(documented !== undefined, `${method} ${shape} goes to a worker but is not documented`);
      assert.ok(sidesOf(doc.paths[documented]).has('public'));
    }
  }

  for (const [template, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const method of Object.keys(item).filter((k) => METHODS.includes(k))) {
      for (const side of sidesOf(item)) {
        const path = instantiate(template);
        const byExpress = served.some((r) => r.side === side && r.method === method && r.layer.match(path));
        const byPipeline = side === 'public' && matchInferenceRoute(method.toUpperCase(), path) !== undefined;
        assert.ok(byExpress || byPipeline, `${method.toUpperCase()} ${template} is documented for the ${side} port but not served there`);
      }
    }
  }

  const adminDoc = await documentFrom(handler.admin);
  assert.deepEqual(Object.keys(adminDoc.paths), templates, 'both ports serve the same document');
  for (const [ref, target] of refsIn(doc)) assert.doesNotThrow(() => resolvePointer(doc, ref), `${target} refers to ${ref}`);
});

async function documentFrom(handler: (req: never, res: never) => void): Promise<Json> {
  const { default: request } = await import('supertest');
  return (await request(handler as never).get('/openapi.json')).body as Json;
}

function refsIn(node: unknown, at = '$'): Array<[string, string]> {
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([k, v]) => (k === '$ref' ? [[String(v), at] as [string, string]] : refsIn(v, `${at}.${k}`)));
}

test('real answers of a real gateway match the document', async (t) => {
  const repo = await irisRepository(t, ['house-price']);
  const [first, second] = await Promise.all([startWorker(t, repo), startWorker(t, repo)]);
  const dir = await tempDir(t, 'openapi');
  const configPath = await writeConfig(join(dir, 'gateway.yaml'), { ...FAST_CONFIG, auth: { apiKeys: { file: join(dir, 'keys.json') } } });
  const gateway = await startGateway(t, [first.url, second.url], { requireAuth: true, args: ['--config', configPath], env: { INFERGATE_JWT_SECRET: SECRET } });
  const doc = (await (await fetch(`${gateway.url}/openapi.json`)).json()) as Json;
  const token = jwt.sign({ sub: 'doc-tester', models: ['iris', 'house-price'] }, SECRET, { algorithm: 'HS256', expiresIn: 600 });
  const irisOnly = jwt.sign({ sub: 'iris-only', models: ['iris'] }, SECRET, { algorithm: 'HS256', expiresIn: 600 });
  const caller = { authorization: `Bearer ${token}` };
  const everyModel = { authorization: `Bearer ${jwt.sign({ sub: 'any-model', models: '*' }, SECRET, { algorithm: 'HS256', expiresIn: 600 })}` };
  const admin = { authorization: `Bearer ${gateway.adminToken}` };
  const covered = new Set<string>();
  const failures: string[] = [];

  /** Sends one request and validates its answer against the document; returns the parsed body. */
  async function check(side: Side, method: string, path: string, options: { headers?: Record<string, string>; body?: unknown; expect: number }): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const base = side === 'public' ? gateway.url : gateway.adminUrl;
    const res = await fetch(base + path, {
      method,
      redirect: 'manual',
      headers: { ...(options.body !== undefined && { 'content-type': 'application/json' }), ...options.headers },
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
    });
    const where = `${method} ${path} (${side})`;
    const type = res.headers.get('content-type') ?? '';
    const isStream = type.startsWith('text/event-stream');
    const text = isStream ? await firstEvent(res) : await res.text();
    assert.equal(res.status, options.expect, `${where}: ${text.slice(0, 300)}`);
    const pathPart = path.split('?')[0]!;
    const template = Object.keys(doc.paths).find((tpl) => templateRegex(tpl).test(pathPart));
    if (template === undefined) return void failures.push(`${where}: no documented path`);
    const operation = doc.paths[template][method.toLowerCase()];
    if (operation === undefined) return void failures.push(`${where}: method not documented`);
    let response = operation.responses[String(res.status)];
    if (response === undefined) return void failures.push(`${where}: status ${res.status} not documented for ${template}`);
    if (response.$ref !== undefined) response = resolvePointer(doc, response.$ref);
    if (res.status < 400) covered.add(`${method} ${template}`);
    if (response.content === undefined) return undefined; // a redirect or 204: no body to check
    const media = Object.keys(response.content).find((m) => type.startsWith(m) || m === '*/*');
    if (media === undefined) return void failures.push(`${where}: content type ${type} not documented (${Object.keys(response.content)})`);
    const schema = isStream ? response.content[media]['x-event-data'] : response.content[media].schema;
    if (!type.startsWith('application/json') && !isStream) return text;
    const body = JSON.parse(text);
    for (const error of validate(schema, body, (ref) => resolvePointer(doc, ref))) failures.push(`${where}: ${error}`);
    return body;
  }

  const irisInput = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] };
  for (const path of ['/v2', '/v2/health/live', '/v2/health/ready']) await check('public', 'GET', path, { expect: 200 });
  for (const path of ['/v2/models/iris', '/v2/models/iris/versions/1', '/v2/models/iris/ready', '/v2/models/iris/versions/1/ready']) await check('public', 'GET', path, { headers: caller, expect: 200 });
  for (const path of ['/v2/models/iris/infer', '/v2/models/iris/versions/1/infer']) await check('public', 'POST', path, { headers: caller, body: irisInput, expect: 200 });
  await check('public', 'POST', '/v2/repository/index', { headers: caller, body: {}, expect: 200 });
  await check('public', 'POST', '/v2/repository/models/house-price/unload', { headers: admin, body: {}, expect: 200 });
  await check('public', 'POST', '/v2/repository/models/house-price/load', { headers: admin, body: {}, expect: 200 });
  for (const path of ['/v1/models/iris:predict', '/v1/models/iris/versions/1:predict']) {
    await check('public', 'POST', path, { headers: caller, body: { instances: [[5.1, 3.5, 1.4, 0.2]] }, expect: 200 });
    await check('public', 'POST', path, { headers: caller, body: { inputs: { features: [[5.1, 3.5, 1.4, 0.2]] } }, expect: 200 });
  }
  for (const path of ['/v1/models/iris', '/v1/models/iris/versions/1', '/v1/models/iris/metadata', '/v1/models/iris/versions/1/metadata']) await check('public', 'GET', path, { headers: caller, expect: 200 });
  await check('public', 'GET', '/metrics', { expect: 200 });

  for (const side of ['public', 'admin'] as const) {
    await check(side, 'GET', '/', { expect: 302 });
    await check(side, 'GET', '/ui', { expect: 302 });
    await check(side, 'GET', '/ui/vendor/swagger-ui/swagger-ui.css', { expect: 200 });
    await check(side, 'GET', '/ui/index.html', { expect: 200 });
    await check(side, 'GET', '/openapi.json', { expect: 200 });
    await check(side, 'GET', '/ui/missing.js', { expect: 404 });
  }
  await check('public', 'GET', '/ui/', { expect: 200 });

  // Failures the document promises.
  await check('public', 'GET', '/v2/models/iris', { expect: 401 });
  await check('public', 'POST', '/v2/models/iris/infer', { headers: { authorization: 'Bearer not-a-jwt' }, body: irisInput, expect: 401 });
  await check('public', 'GET', '/v2/models/house-price', { headers: { authorization: `Bearer ${irisOnly}` }, expect: 403 });
  await check('public', 'POST', '/v2/models/house-price/infer', { headers: { authorization: `Bearer ${irisOnly}` }, body: irisInput, expect: 403 });
  await check('public', 'GET', '/v2/models/nope', { headers: everyModel, expect: 404 });
  await check('public', 'POST', '/v2/models/iris/versions/7/infer', { headers: caller, body: irisInput, expect: 404 });
  await check('public', 'POST', '/v2/models/iris/infer', { headers: caller, body: { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }, expect: 400 });
  await check('public', 'POST', '/v1/models/iris:predict', { headers: caller, body: { instances: [[1, 2]] }, expect: 400 });
  await check('public', 'POST', '/v2/repository/models/iris/unload', { headers: caller, body: {}, expect: 403 });
  await check('public', 'POST', '/v2/repository/models/iris/load', { expect: 401 });

  // Admin API.
  await check('admin', 'GET', '/admin/workers', { expect: 401 });
  const workers = await check('admin', 'GET', '/admin/workers', { headers: admin, expect: 200 });
  const added = await check('admin', 'POST', '/admin/workers', { headers: admin, body: { url: 'http://127.0.0.1:9', weight: 2 }, expect: 201 });
  await check('admin', 'POST', '/admin/workers', { headers: admin, body: { url: 'http://127.0.0.1:9' }, expect: 409 });
  await check('admin', 'POST', `/admin/workers/${added.id}/drain`, { headers: admin, expect: 200 });
  await check('admin', 'POST', `/admin/workers/${added.id}/undrain`, { headers: admin, expect: 200 });
  await check('admin', 'DELETE', `/admin/workers/${added.id}`, { headers: admin, expect: 204 });
  await check('admin', 'DELETE', `/admin/workers/${added.id}`, { headers: admin, expect: 404 });
  await check('admin', 'GET', '/admin/strategy', { headers: admin, expect: 200 });
  await check('admin', 'PUT', '/admin/strategy', { headers: admin, body: { strategy: 'round-robin' }, expect: 200 });
  await check('admin', 'PUT', '/admin/strategy', { headers: admin, body: { strategy: 'fastest' }, expect: 400 });
  await check('admin', 'GET', '/admin/config', { headers: admin, expect: 200 });
  const created = await check('admin', 'POST', '/admin/keys', { headers: admin, body: { name: 'doc', models: ['iris'], ratePerSec: 5 }, expect: 201 });
  await check('admin', 'GET', '/admin/keys', { headers: admin, expect: 200 });
  const rotated = await check('admin', 'POST', `/admin/keys/${created.record.id}/rotate`, { headers: admin, body: { graceMs: 0 }, expect: 201 });
  await check('admin', 'POST', `/admin/keys/${created.record.id}/rotate`, { headers: admin, body: {}, expect: 409 });
  await check('admin', 'DELETE', `/admin/keys/${rotated.record.id}`, { headers: admin, expect: 200 });
  await check('public', 'POST', '/v2/repository/index', { headers: { 'x-api-key': created.key }, body: {}, expect: 401 });
  await check('admin', 'GET', '/admin/pool', { headers: admin, expect: 200 });
  const event = await check('admin', 'GET', '/admin/pool/stream', { headers: admin, expect: 200 });
  assert.deepEqual(event.workers.map((w: { id: string }) => w.id).sort(), workers.workers.map((w: { id: string }) => w.id).sort());

  assert.deepEqual(failures, [], 'every answer matches the document');
  const logs = JSON.stringify(gateway.logs);
  assert.ok(gateway.logs.length > 20, 'the gateway logged the traffic');
  for (const secret of [gateway.adminToken, created.key, rotated.key, token]) assert.ok(!logs.includes(secret), 'no admin token, API key or JWT in the logs');
  const documented = Object.entries(doc.paths as Record<string, Json>).flatMap(([tpl, item]) => Object.keys(item).filter((k) => METHODS.includes(k)).map((m) => `${m.toUpperCase()} ${tpl}`));
  assert.deepEqual(documented.filter((op) => !covered.has(op)), [], 'every documented operation was exercised with a successful answer');
});

/** The first `event:` block's data line of a server-sent event stream; the stream is then closed. */
async function firstEvent(res: Response): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const match = /event: pool\ndata: (.*)\n\n/.exec(text);
    if (match !== null) {
      await reader.cancel();
      return match[1]!;
    }
  }
  throw new Error(`the stream ended before an event: ${text}`);
}
