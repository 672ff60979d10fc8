// Requests Node's HTTP parser refuses before the worker sees them — request smuggling (both
// Content-Length and Transfer-Encoding), bad syntax, oversized header blocks, an Expect it cannot
// meet — get the JSON error of
// DESIGN.md with a request id, then the connection closes; the worker keeps serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { DEMO_MODELS, startWorker } from '../../helpers/processes.ts';

/** Writes `raw` on a fresh connection and returns everything the worker sent until it closed. */
function exchange(url: string, raw: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(raw));
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => { received += chunk; });
    socket.on('close', () => resolve(received)).on('error', reject);
  });
}

function parse(raw: string): { status: number; requestIdHeader: string | undefined; body: { error?: unknown; code?: unknown; request_id?: unknown } } {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const requestIdHeader = /\r\nx-request-id: ([^\r]+)/i.exec(head)?.[1];
  return { status, requestIdHeader, body: JSON.parse(body) as { error?: unknown; code?: unknown; request_id?: unknown } };
}

test('the worker answers requests its HTTP parser refuses with a JSON error and keeps serving', async (t) => {
  const worker = await startWorker(t, DEMO_MODELS);
  const cases = [
    { name: 'Content-Length and Transfer-Encoding together', status: 400, code: 'ERR_BAD_REQUEST',
      raw: 'POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' },
    { name: 'a malformed request line', status: 400, code: 'ERR_BAD_REQUEST', raw: 'GET /v2 HTTP/9.9 junk\r\n\r\n' },
    { name: 'an oversized header block', status: 431, code: 'ERR_HEADERS_TOO_LARGE', raw: `GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n` },
    { name: 'an Expect other than 100-continue', status: 417, code: 'ERR_EXPECTATION_FAILED',
      raw: 'POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}' },
  ];
  for (const c of cases) {
    const reply = parse(await exchange(worker.url, c.raw));
    assert.equal(reply.status, c.status, c.name);
    assert.equal(reply.body.code, c.code, c.name);
    assert.equal(typeof reply.body.error, 'string', c.name);
    assert.equal(typeof reply.body.request_id, 'string', c.name);
    assert.equal(reply.requestIdHeader, reply.body.request_id, `${c.name}: the header and the body name the same request`);
  }
  assert.equal((await fetch(`${worker.url}/v2/health/live`)).status, 200, 'the worker still serves');
});
