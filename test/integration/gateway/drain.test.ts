// SIGTERM on a gateway under load, with everything it keeps in Redis in use (rate limiter, key
// store, worker registry, strategy broadcast): it stops accepting connections at once, the requests
// it had accepted finish with 200 and `Connection: close`, idle keep-alive connections do not hold
// it open, and it exits 0 well within timeouts.drainMs with every Redis connection it opened
// closed (CLIENT LIST on the test's own redis-server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { startGateway, waitFor } from '../../helpers/processes.ts';
import { startRedis } from '../../helpers/redis.ts';
import { tempDir, writeConfig } from './support.ts';

const BODY = JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1], data: [1] }] });
/** Long enough for every request to be in flight when SIGTERM arrives. */
const UPSTREAM_DELAY_MS = 1500;
const DRAIN_MS = 20_000;
const IN_FLIGHT = 8;

/** The infergate connections in CLIENT LIST, by name (every client infergate opens is named `infergate:<role>`). */
async function infergateClients(list: () => Promise<string>): Promise<string[]> {
  return (await list()).split('\n').map((line) => /\bname=(infergate:\S+)/.exec(line)?.[1]).filter((n): n is string => n !== undefined).sort();
}

/** POSTs `body` on a keep-alive connection of `agent`; the status, the Connection header and the body. */
function post(url: string, body: string, agent: Agent): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; }).on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves 'refused' when a TCP connection to `port` is refused, 'accepted' when it opens. */
async function tryConnect(port: number): Promise<'refused' | 'accepted'> {
  const socket = connect({ host: '127.0.0.1', port });
  try {
    await once(socket, 'connect');
    return 'accepted';
  } catch {
    return 'refused';
  } finally {
    socket.destroy();
  }
}

test('SIGTERM drains a loaded gateway: no new connections, accepted requests finish, Redis closed, exit 0', async (t) => {
  const redis = await startRedis(t, { spawn: true }); // its CLIENT LIST must show only this test's clients
  const probe = redis.client();
  const list = async (): Promise<string> => String(await probe.call('CLIENT', 'LIST'));
  const upstream = await startFaultUpstream(t, { mode: 'delay', delayMs: UPSTREAM_DELAY_MS });
  const dir = await tempDir(t, 'drain');
  const configPath = await writeConfig(join(dir, 'gateway.yaml'), {
    redis: { url: redis.url },
    discovery: { registry: { enabled: true } },
    auth: { anonymous: { enabled: true, plan: 'roomy' } },
    throttle: { plans: { roomy: { ratePerSec: 1000, burst: 1000 } } },
    timeouts: { drainMs: DRAIN_MS },
  });
  const gateway = await startGateway(t, [upstream.url], { args: ['--config', configPath] });
  const port = Number(new URL(gateway.url).port);

  const expected = ['infergate:key-store', 'infergate:key-store-subscriber', 'infergate:rate-limiter', 'infergate:registry', 'infergate:registry-subscriber', 'infergate:strategy-publisher', 'infergate:strategy-subscriber'];
  await waitFor(async () => JSON.stringify(await infergateClients(list)) === JSON.stringify(expected), 10_000);

  // Keep-alive clients that would happily keep their connections open: an idle one, and busy ones
  // that go idle when their response ends. Neither may hold the drain open.
  const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT + 1 });
  t.after(() => agent.destroy());
  assert.equal((await post(`${gateway.url}/v2/models/echo/infer`, BODY, agent)).status, 200);
  const inferUrl = `${gateway.url}/v2/models/echo/infer`;
  const before = upstream.requestsTo('/v2/models/echo/infer');
  const inFlight = Array.from({ length: IN_FLIGHT }, () => post(inferUrl, BODY, agent));
  await waitFor(() => upstream.requestsTo('/v2/models/echo/infer') - before === IN_FLIGHT, 10_000, 10);

  const signalledAt = Date.now();
  const exited = once(gateway.child, 'exit') as Promise<[number | null, string | null]>;
  gateway.child.kill('SIGTERM');
  await waitFor(async () => (await tryConnect(port)) === 'refused', 5000, 20);
  assert.ok(upstream.requestsTo('/v2/models/echo/infer') - before === IN_FLIGHT, 'no request reached the worker after SIGTERM');

  const replies = await Promise.all(inFlight);
  assert.deepEqual(replies.map((r) => r.status), Array(IN_FLIGHT).fill(200), `accepted requests finish: ${replies.map((r) => r.body.slice(0, 80)).join(' | ')}`);
  // Answered after the drain began: each tells its client not to send the next request on that connection.
  assert.deepEqual(replies.map((r) => r.connection), Array(IN_FLIGHT).fill('close'), 'in-flight answers say Connection: close');
  const [code, signal] = await exited;
  assert.equal(signal, null);
  assert.equal(code, 0, 'exit code 0');
  assert.ok(Date.now() - signalledAt < DRAIN_MS, `exited before the drain timeout (${Date.now() - signalledAt} ms)`);
  assert.ok(gateway.logs.some((l) => l.msg === 'gateway stopped'), 'closed everything in order');
  assert.ok(!gateway.logs.some((l) => String(l.msg).startsWith('drain timeout')), 'no connection had to be cut');
  await waitFor(async () => (await infergateClients(list)).length === 0, 5000);
});
