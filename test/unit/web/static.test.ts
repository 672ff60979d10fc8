// The web application's files, served in-process from a temporary directory on both ports:
// redirects, content types, revalidation (ETag, Last-Modified, 304), the Content-Security-Policy,
// Swagger UI's files from the package, no listing, and path traversal in every spelling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { buildGateway } from '../../../gateway/app.ts';
import { parseGatewayConfig } from '../../../gateway/config/load.ts';
import { MemoryLimiter } from '../../../gateway/throttle/memory-limiter.ts';
import { CONTENT_SECURITY_POLICY } from '../../../gateway/web/web-routes.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { REPO_ROOT } from '../../helpers/processes.ts';

const TOKEN = 'admin-token-for-web-tests-0123456';
const FILES: Record<string, string> = {
  'index.html': '<!doctype html><title>playground</title>',
  'dashboard.html': '<!doctype html><title>dashboard</title>',
  'docs.html': '<!doctype html><title>docs</title>',
  'assets/app.js': 'export const x = 1;\n',
  'assets/style.css': 'body { margin: 0 }\n',
  'assets/icon.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>',
  'assets/sample.json': '{"a":1}',
  'assets/deep/er/module.js': 'export {};\n',
  '.secret': 'dotfile',
};
const EXPECTED_TYPES: Record<string, RegExp> = {
  'index.html': /^text\/html; charset=utf-8$/,
  'assets/app.js': /^(text|application)\/javascript; charset=utf-8$/,
  'assets/style.css': /^text\/css; charset=utf-8$/,
  'assets/icon.svg': /^image\/svg\+xml/,
  'assets/sample.json': /^application\/json/,
};

test('the web application\'s files', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'infergate-web-'));
  const root = join(base, 'public');
  for (const [path, content] of Object.entries(FILES)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), content);
  }
  await writeFile(join(base, 'outside.txt'), 'must never be served');
  await symlink(join(base, 'outside.txt'), join(root, 'assets', 'escape.txt'));
  await symlink(base, join(root, 'assets', 'up'));
  await symlink(join(root, 'assets', 'app.js'), join(root, 'assets', 'inside.js'));
  const config = parseGatewayConfig({ auth: { apiKeys: { enabled: false } }, health: { intervalMs: 60_000 } }, 'test');
  const gateway = buildGateway(config, { logger: silentLogger(), now: () => performance.now(), rng: Math.random, adminToken: TOKEN, limiter: new MemoryLimiter(), webRoot: root });
  t.after(async () => {
    gateway.close();
    await rm(base, { recursive: true, force: true });
  });
  const ports = { public: gateway.handlePublic, admin: gateway.handleAdmin };

  await t.test('/ and /ui redirect to /ui/; /ui/ is the playground (public) or the dashboard (admin)', async () => {
    for (const [side, handler] of Object.entries(ports)) {
      for (const path of ['/', '/ui']) {
        const res = await request(handler).get(path);
        assert.equal(res.status, 302, `${side} ${path}`);
        assert.equal(res.headers.location, '/ui/');
      }
      const page = await request(handler).get('/ui/');
      assert.equal(page.status, 200);
      assert.equal(page.text, FILES[side === 'public' ? 'index.html' : 'dashboard.html']);
    }
  });

  await t.test('every file on both ports with its content type, CSP, no-cache and validators', async () => {
    for (const [side, handler] of Object.entries(ports)) {
      for (const [path, type] of Object.entries(EXPECTED_TYPES)) {
        const res = await request(handler).get(`/ui/${path}`).buffer(true).parse((r, cb) => {
          let text = '';
          r.on('data', (c: Buffer) => { text += c.toString(); });
          r.on('end', () => cb(null, text));
        });
        assert.equal(res.status, 200, `${side} ${path}`);
        assert.equal(res.body, FILES[path]);
        assert.match(res.headers['content-type'] ?? '', type, path);
        assert.equal(res.headers['content-security-policy'], CONTENT_SECURITY_POLICY);
        assert.equal(res.headers['cache-control'], 'no-cache');
        assert.equal(res.headers['x-content-type-options'], 'nosniff', 'the security headers stay');
        assert.ok(res.headers.etag, 'ETag');
        assert.ok(res.headers['last-modified'], 'Last-Modified');
      }
    }
  });

  await t.test('revalidation answers 304 without a body; HEAD has the headers only', async () => {
    const first = await request(gateway.handlePublic).get('/ui/docs.html');
    const byEtag = await request(gateway.handlePublic).get('/ui/docs.html').set('if-none-match', first.headers.etag!);
    assert.equal(byEtag.status, 304);
    assert.equal(byEtag.text, '');
    const byDate = await request(gateway.handlePublic).get('/ui/docs.html').set('if-modified-since', first.headers['last-modified']!);
    assert.equal(byDate.status, 304);
    const stale = await request(gateway.handlePublic).get('/ui/docs.html').set('if-none-match', 'W/"other"');
    assert.equal(stale.status, 200);
    const head = await request(gateway.handlePublic).head('/ui/docs.html');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(FILES['docs.html']!.length));
  });

  await t.test('Swagger UI\'s own files from swagger-ui-dist, and nothing else of the package', async () => {
    const dir = (createRequire(join(REPO_ROOT, 'package.json'))('swagger-ui-dist/absolute-path.js') as () => string)();
    for (const [file, type] of [['swagger-ui.css', /^text\/css/], ['swagger-ui-bundle.js', /javascript/], ['swagger-ui-standalone-preset.js', /javascript/], ['swagger-ui-bundle.js.map', /^application\/json/]] as const) {
      const res = await request(gateway.handleAdmin).get(`/ui/vendor/swagger-ui/${file}`).buffer(true).parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      });
      assert.equal(res.status, 200, file);
      assert.match(res.headers['content-type'] ?? '', type);
      assert.ok((res.body as Buffer).equals(await readFile(join(dir, file))), `${file} is the package's file`);
    }
    for (const file of ['index.html', 'swagger-initializer.js', 'package.json', 'oauth2-redirect.html', '..%2Fpackage.json']) {
      const res = await request(gateway.handlePublic).get(`/ui/vendor/swagger-ui/${file}`);
      assert.equal(res.status, 404, file);
      assert.equal(res.body.code, 'ERR_NOT_FOUND');
    }
  });

  await t.test('missing files, directories and dotfiles: a JSON 404, never a listing; another method: 405', async () => {
    for (const path of ['/ui/nope.js', '/ui/assets', '/ui/assets/', '/ui/assets/deep', '/ui/.secret', '/ui/assets/deep/er/']) {
      for (const handler of Object.values(ports)) {
        const res = await request(handler).get(path);
        assert.equal(res.status, 404, path);
        assert.match(res.headers['content-type'] ?? '', /^application\/json/);
        assert.equal(res.body.code, 'ERR_NOT_FOUND');
        assert.equal(typeof res.body.error, 'string');
        assert.equal(res.body.request_id, res.headers['x-request-id']);
      }
    }
    assert.equal((await request(gateway.handlePublic).get('/ui/assets/deep/er/module.js')).status, 200, 'nested files are served');
    const post = await request(gateway.handlePublic).post('/ui/index.html');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    assert.equal(post.body.code, 'ERR_METHOD_NOT_ALLOWED');
  });

  await t.test('path traversal is impossible, however it is spelled', async () => {
    const attempts = [
      '/ui/../package.json', '/ui/..%2Fpackage.json', '/ui/%2e%2e/package.json', '/ui/%2e%2e%2fpackage.json',
      '/ui/assets/..%2F..%2Foutside.txt', '/ui/assets/%252e%252e/outside.txt', '/ui/..%5Coutside.txt', '/ui/assets/..\\..\\outside.txt',
      '/ui/%00index.html', '/ui/index.html%00.js', '/ui//etc/passwd', '/ui/%2Fetc%2Fpasswd', `/ui/${'..%2F'.repeat(12)}etc%2Fpasswd`,
      '/ui/assets/escape.txt', '/ui/assets/up/outside.txt',
    ];
    for (const path of attempts) {
      for (const handler of Object.values(ports)) {
        const res = await request(handler).get(path);
        assert.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`);
        assert.doesNotMatch(res.text, /must never be served|root:|"name": "infergate"/, path);
        assert.match(res.headers['content-type'] ?? '', /^application\/json/, path);
      }
    }
    assert.equal((await request(gateway.handlePublic).get('/ui/%E0%A4%A')).status, 400, 'bad percent-encoding is a 400, not a 500');
    assert.equal((await request(gateway.handlePublic).get('/ui/assets/inside.js')).status, 200, 'a symlink that stays inside is fine');
  });

  await t.test('/openapi.json on both ports, with revalidation', async () => {
    for (const handler of Object.values(ports)) {
      const res = await request(handler).get('/openapi.json');
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(res.body.openapi, '3.1.0');
      const again = await request(handler).get('/openapi.json').set('if-none-match', res.headers.etag!);
      assert.equal(again.status, 304);
    }
    const onPublic = (await request(gateway.handlePublic).get('/openapi.json')).body;
    const onAdmin = (await request(gateway.handleAdmin).get('/openapi.json')).body;
    assert.deepEqual(onPublic.servers, [{ url: '/', description: 'this gateway\'s public port (where this document came from)' }]);
    assert.equal(onPublic.paths['/admin/workers'].servers[0].variables.port.default, '8081', 'admin paths point at the admin port');
    assert.equal(onAdmin.paths['/admin/workers'].servers[0].url, '/');
    assert.equal(onAdmin.servers[0].variables.port.default, '8080', 'public paths point at the public port');
    assert.deepEqual(Object.keys(onPublic.paths), Object.keys(onAdmin.paths), 'one document, served on both ports');
  });
});
