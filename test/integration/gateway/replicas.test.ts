// Two gateway replicas sharing Redis: a strategy change through one replica's admin API reaches
// the other within 2 s (pub/sub), while each replica's own config stays its starting point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, waitFor } from '../../helpers/processes.ts';
import { startRedis } from '../../helpers/redis.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';

test('a strategy change on one replica reaches the other', async (t) => {
  const redis = await startRedis(t);
  const upstream = await startFaultUpstream(t);
  const [a, b] = await Promise.all([
    startGateway(t, [upstream.url], { args: ['--redis', redis.url, '--strategy', 'round-robin'] }),
    startGateway(t, [upstream.url], { args: ['--redis', redis.url, '--strategy', 'round-robin'] }),
  ]);
  const strategyOf = async (g: typeof a): Promise<string> => ((await (await g.admin('/admin/strategy')).json()) as { strategy: string }).strategy;
  assert.equal(await strategyOf(b), 'round-robin');
  const res = await a.admin('/admin/strategy', { method: 'PUT', body: JSON.stringify({ strategy: 'least-connections' }) });
  assert.equal(res.status, 200);
  const sent = Date.now();
  await waitFor(async () => (await strategyOf(b)) === 'least-connections', 2000, 20);
  t.diagnostic(`replica B switched ${Date.now() - sent} ms after A's admin API`);
  assert.equal(await strategyOf(a), 'least-connections');
});
