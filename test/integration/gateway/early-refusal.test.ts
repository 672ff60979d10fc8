// A request refused before its body was read (401, 429...) keeps its keep-alive connection when the
// body is small and declared: the gateway discards the unread bytes instead of closing, so a flood
// of refusals does not become a flood of new TCP connections. A large or chunked unread body still
// closes the connection, so it can never be parsed as the next request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { startGateway } from '../../helpers/processes.ts';

interface Refusal {
  status: number;
  connection: string | undefined;
  reusedSocket: boolean;
}

/**
 * Sends the headers, waits for the answer, and only then writes the declared body (so the gateway
 * answers with the body still unread), then reads the whole answer.
 */
function refusedBeforeBody(url: string, agent: Agent, bodyBytes: number): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v2/models/echo/infer`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': String(bodyBytes) },
    }, (res) => {
      req.end(Buffer.alloc(bodyBytes, 0x20)); // the rest of the request, after the refusal
      res.resume().on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, reusedSocket: req.reusedSocket }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

test('a refusal before the body is read keeps a small-bodied connection open and closes a large one', async (t) => {
  const upstream = await startFaultUpstream(t);
  const gateway = await startGateway(t, [upstream.url], { requireAuth: true });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());

  const small = [];
  for (let i = 0; i < 3; i++) small.push(await refusedBeforeBody(gateway.url, agent, 512));
  for (const r of small) {
    assert.equal(r.status, 401);
    assert.notEqual(r.connection, 'close');
  }
  assert.deepEqual(small.map((r) => r.reusedSocket), [false, true, true], 'one connection served all three refusals');

  const large = await refusedBeforeBody(gateway.url, agent, 1024 * 1024);
  assert.equal(large.status, 401);
  assert.equal(large.connection, 'close', 'a large unread body closes the connection');
  assert.equal(upstream.requestsTo('/v2/models/echo/infer'), 0, 'no refused request reached a worker');
});
