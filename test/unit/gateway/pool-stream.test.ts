// The pool dashboard's event stream in-process, over real HTTP: the event shape, one shared timer
// that exists only while a stream is open, nothing left behind after 50 connect/disconnects, and
// streams cut for a client that stops reading and for a server that is closing.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { buildGateway } from '../../../gateway/app.ts';
import { PoolStream } from '../../../gateway/admin/pool-stream.ts';
import { parseGatewayConfig } from '../../../gateway/config/load.ts';
import { MemoryLimiter } from '../../../gateway/throttle/memory-limiter.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { waitFor } from '../../helpers/processes.ts';

const TOKEN = 'admin-token-for-stream-tests-0123';

async function listen(t: TestContext, handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Reads server-sent events from a fetch() body until `count` events have arrived. */
async function readEvents(body: ReadableStream<Uint8Array>, count: number): Promise<{ retry: string | undefined; events: Array<{ event: string; data: string }> }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let retry: string | undefined;
  const events: Array<{ event: string; data: string }> = [];
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trimStart()]));
      if (fields.retry !== undefined) retry = fields.retry;
      if (fields.event !== undefined) events.push({ event: fields.event, data: fields.data ?? '' });
    }
  }
  await reader.cancel();
  return { retry, events };
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

test('GET /admin/pool/stream', async (t) => {
  const config = parseGatewayConfig({ auth: { apiKeys: { enabled: false } }, health: { intervalMs: 60_000 } }, 'test');
  const gateway = buildGateway(config, { logger: silentLogger(), now: () => performance.now(), rng: Math.random, adminToken: TOKEN, limiter: new MemoryLimiter() });
  t.after(() => gateway.close());
  const { url } = await listen(t, gateway.handleAdmin);
  const open = (headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }, signal?: AbortSignal): Promise<Response> => fetch(`${url}/admin/pool/stream`, { headers, ...(signal && { signal }) });

  await t.test('needs the admin token in the header; a query string is not a credential', async () => {
    const none = await open({});
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { code: string }).code, 'GW_ERR_ADMIN_UNAUTHORIZED');
    const query = await fetch(`${url}/admin/pool/stream?token=${TOKEN}`);
    assert.equal(query.status, 401);
    await query.body?.cancel();
    assert.equal(gateway.poolStream.clients, 0);
  });

  await t.test('retry: 2000, then `event: pool` with the snapshot, the first at once', async () => {
    const res = await open();
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(res.headers.get('cache-control'), 'no-cache, no-transform');
    const { retry, events } = await readEvents(res.body!, 2);
    assert.equal(retry, '2000');
    assert.equal(events.length, 2);
    for (const event of events) {
      assert.equal(event.event, 'pool');
      const data = JSON.parse(event.data) as Record<string, unknown>;
      assert.deepEqual(Object.keys(data).sort(), ['strategies', 'strategy', 'time', 'totals', 'workers']);
      assert.equal(data.strategy, gateway.strategy);
      assert.deepEqual(Object.keys(data.totals as object).sort(), ['errorsPerSec', 'inFlight', 'p50Ms', 'p99Ms', 'reqPerSec']);
    }
    const [first, second] = events.map((e) => (JSON.parse(e.data) as { time: number }).time);
    assert.ok(second! > first!, 'a later snapshot each time');
  });

  await t.test('HEAD answers the headers and ends: no stream is opened', async () => {
    const res = await fetch(`${url}/admin/pool/stream`, { method: 'HEAD', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(gateway.poolStream.clients, 0);
    assert.equal(gateway.poolStream.ticking, false);
  });

  await t.test('50 connects and disconnects leave no stream, listener or timer behind', async () => {
    await waitFor(() => gateway.poolStream.clients === 0, 5000);
    const baseline = timers();
    for (let i = 0; i < 50; i++) {
      const aborter = new AbortController();
      const res = await open(undefined, aborter.signal);
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      await reader.read(); // the first event arrived: the stream is registered
      assert.equal(gateway.poolStream.clients, 1);
      assert.equal(gateway.poolStream.ticking, true);
      aborter.abort();
      await waitFor(() => gateway.poolStream.clients === 0, 5000);
    }
    assert.equal(gateway.poolStream.ticking, false, 'the shared timer stops with the last stream');
    await waitFor(() => timers() <= baseline, 5000);
  });

  await t.test('many streams share one timer', async () => {
    const aborter = new AbortController();
    const before = timers();
    const streams = await Promise.all(Array.from({ length: 5 }, () => open(undefined, aborter.signal)));
    await Promise.all(streams.map((s) => s.body!.getReader().read()));
    assert.equal(gateway.poolStream.clients, 5);
    assert.equal(timers() - before, 1);
    aborter.abort();
    await waitFor(() => gateway.poolStream.clients === 0 && !gateway.poolStream.ticking, 5000);
  });

  await t.test('gateway.close() ends every stream', async () => {
    const res = await open();
    const reader = res.body!.getReader();
    await reader.read();
    gateway.poolStream.close();
    for (;;) if ((await reader.read()).done) break;
    assert.equal(gateway.poolStream.clients, 0);
    assert.equal(gateway.poolStream.ticking, false);
  });
});

test('a client that stops reading is cut off instead of buffered without bound', async (t) => {
  const big = 'x'.repeat(256 * 1024);
  const stream = new PoolStream({ snapshot: () => big, intervalMs: 10, maxBufferedBytes: 64 * 1024 });
  t.after(() => stream.close());
  const { url } = await listen(t, (req, res) => stream.handle(req as never, res as never));
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  socket.pause(); // never read: the kernel buffers fill, then the server's
  t.after(() => socket.destroy());
  await waitFor(() => stream.clients === 1, 5000);
  await waitFor(() => stream.clients === 0 && !stream.ticking, 30_000);
});

test('a stream ends when its server stops listening (a draining gateway is not held open)', async (t) => {
  const stream = new PoolStream({ snapshot: () => ({ n: 1 }), intervalMs: 10 });
  t.after(() => stream.close());
  const { server, url } = await listen(t, (req, res) => stream.handle(req as never, res as never));
  const ended = new Promise<string>((resolve, reject) => {
    httpRequest(url, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; });
      res.on('end', () => resolve(text));
    }).on('error', reject).end();
  });
  await waitFor(() => stream.clients === 1, 5000);
  server.close();
  const text = await ended;
  assert.match(text, /^retry: 2000\n\nevent: pool\ndata: \{"n":1\}\n\n/);
  assert.equal(stream.clients, 0);
});
