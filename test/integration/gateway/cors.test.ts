// Browsers: security headers on every response, CORS for configured origins only, and a preflight
// answered by the gateway itself (without credentials, before any other stage).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway } from '../../helpers/processes.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { startRecorder } from './support.ts';

test('CORS and security headers', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-cors-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'gateway.yaml');
  await writeFile(config, 'cors:\n  allowedOrigins: ["https://app.example"]\n  maxAgeSeconds: 120\n');
  const upstream = await startFaultUpstream(t);
  // In front of the worker: lets the last case add headers to its answers.
  const recorder = await startRecorder(t, upstream.url);
  const gateway = await startGateway(t, [recorder.url], { args: ['--config', config] });
  const inferUrl = `${gateway.url}/v2/models/echo/infer`;

  const preflight = await fetch(inferUrl, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /authorization/);
  assert.equal(preflight.headers.get('access-control-max-age'), '120');
  assert.equal(upstream.requestsTo('/v2/models/echo/infer'), 0, 'the preflight never reached a worker');

  const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [1] }] });
  const allowed = await fetch(inferUrl, { method: 'POST', headers: { origin: 'https://app.example', 'content-type': 'application/json' }, body });
  assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.match(allowed.headers.get('access-control-expose-headers') ?? '', /x-infergate-worker/);
  assert.equal(allowed.headers.get('vary'), 'Origin');

  const other = await fetch(inferUrl, { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, body });
  assert.equal(other.headers.get('access-control-allow-origin'), null, 'an origin not configured gets no CORS grant');

  for (const res of [allowed, other, await fetch(`${gateway.url}/v2/health/live`)]) {
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  }

  // The browser policy is the gateway's: a worker's own CORS grant or security headers never
  // replace it, and its Vary adds to the gateway's.
  recorder.responseHeaders = { vary: 'Accept-Encoding', 'access-control-allow-origin': '*', 'access-control-allow-credentials': 'true', 'x-frame-options': 'SAMEORIGIN' };
  const fromAllowed = await fetch(inferUrl, { method: 'POST', headers: { origin: 'https://app.example', 'content-type': 'application/json' }, body });
  assert.equal(fromAllowed.status, 200);
  assert.equal(fromAllowed.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.equal(fromAllowed.headers.get('access-control-allow-credentials'), null);
  assert.equal(fromAllowed.headers.get('x-frame-options'), 'DENY');
  assert.equal(fromAllowed.headers.get('vary'), 'Origin, Accept-Encoding');
  const fromOther = await fetch(inferUrl, { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, body });
  assert.equal(fromOther.status, 200);
  assert.equal(fromOther.headers.get('access-control-allow-origin'), null, 'the worker\'s * does not grant an origin the gateway refuses');
  assert.equal(fromOther.headers.get('vary'), 'Accept-Encoding');
});
