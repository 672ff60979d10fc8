// The wrk driver behind the worker benchmark's load: the request it sends is the one asked for (method,
// headers, binary body byte for byte), and what it counts agrees with what the server answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpLoad } from '../../bench/lib/load.ts';
import { runWrk, wrkAvailable } from '../../bench/lib/wrk.ts';

const skip = wrkAvailable() ? false : 'wrk is not installed (Debian: apt-get install -y wrk)';

interface Seen {
  method: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** Answers every `failEvery`-th request 503, the others 200; remembers the first request and counts them all. */
async function countingServer(failEvery: number) {
  const state = { answered: 0, failed: 0, first: undefined as Seen | undefined };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.first ??= { method: req.method!, headers: req.headers, body: Buffer.concat(chunks) };
      state.answered++;
      if (state.answered % failEvery === 0) {
        state.failed++;
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"busy"}');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/models/m/infer`;
  return { state, url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

// Every byte value, and the sequence that would end a Lua long string if the body were inlined.
const body = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from(']==] "quoted" \\ end')]);
const headers = { 'content-type': 'application/octet-stream', 'inference-header-content-length': '17', 'x-odd': 'a]=]b "c"' };

test('wrk sends the request as given and counts 2xx and errors as the server saw them', { skip }, async () => {
  const server = await countingServer(5);
  try {
    const run = await runWrk({ url: server.url, connections: 4, method: 'POST', headers, body }, 1);
    const seen = server.state.first!;
    assert.equal(seen.method, 'POST');
    assert.deepEqual(seen.body, body, 'the body arrives byte for byte');
    assert.equal(seen.headers['inference-header-content-length'], '17');
    assert.equal(seen.headers['x-odd'], headers['x-odd']);
    assert.ok(run.responses > 100, `wrk ran: ${run.responses} responses`);
    // wrk stops with up to one request per connection unanswered or unread.
    assert.ok(server.state.answered >= run.responses && server.state.answered - run.responses <= 4, `server ${server.state.answered}, wrk ${run.responses}`);
    assert.ok(Math.abs(run.statusErrors - run.responses / 5) <= 4, `${run.statusErrors} 503s of ${run.responses}`);
    assert.equal(run.transportErrors, 0);
    assert.ok(run.seconds > 0.9 && run.seconds < 1.5, `${run.seconds} s`);
    assert.ok(run.p50Ms > 0 && run.p50Ms <= run.p99Ms && run.p99Ms <= run.maxMs, JSON.stringify(run));
  } finally {
    await server.close();
  }
});

test('httpLoad through wrk: completions exclude error statuses, the client CPU is wrk\'s own', { skip }, async () => {
  const server = await countingServer(4);
  try {
    const result = await httpLoad({ url: server.url, connections: 2, method: 'POST', headers, body, warmupMs: 1000, durationMs: 1000, generator: 'wrk' });
    const total = result.completed + result.errors;
    assert.ok(total > 100, `${total} answers`);
    assert.ok(Math.abs(result.errors - total / 4) <= 2, `${result.errors} errors of ${total}`);
    assert.ok(result.clientCpuMsPerOp > 0 && Number.isFinite(result.clientCpuMsPerOp), `client CPU ${result.clientCpuMsPerOp} ms/op`);
    assert.ok(Number.isNaN(result.serverCpuMsPerOp), 'no server clock given: no server CPU');
    assert.equal(result.latency.count, result.completed);
  } finally {
    await server.close();
  }
});

test('a header the Lua script cannot quote is refused before wrk runs', { skip }, async () => {
  await assert.rejects(runWrk({ url: 'http://127.0.0.1:9/', connections: 1, method: 'GET', headers: { 'x-bad': 'x]==]y' } }, 1), /cannot quote/);
});
