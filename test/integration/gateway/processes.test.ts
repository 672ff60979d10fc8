// `infergate gateway --processes <n>`: n gateway processes (node:cluster) on one public and one
// admin port.
// - With Redis, a simultaneous burst spread over the processes admits exactly the burst, and the
//   429s come from more than one process (so the exactness is across processes, not inside one).
// - Without Redis: the primary warns that buckets are per process; a strategy set through the admin
//   API (answered by one process) is what every process reports; a crashed process is restarted
//   and serving goes on; SIGTERM stops every process and the primary exits 0, also when it comes
//   while a process is still starting or waiting to be restarted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';
import { startGateway, TEST_ADMIN_TOKEN, waitFor, type RunningGateway } from '../../helpers/processes.ts';
import { startRedis } from '../../helpers/redis.ts';
import { tempDir, writeConfig } from './support.ts';
import { join } from 'node:path';

const BODY = JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1], data: [1] }] });
/** No whole token comes back during the test: a burst admits exactly `burst`. */
const PLAN = { ratePerSec: 0.01, burst: 10 };

/**
 * Waits for the primary's log line saying every process listens, and for each child's own
 * 'gateway listening' line (log lines leave each process in batches, so they arrive in any order);
 * the children's pids.
 */
async function allListening(gateway: RunningGateway, processes: number): Promise<number[]> {
  await waitFor(() => gateway.logs.some((l) => l.msg === 'all gateway processes listening' && l.processes === processes), 60_000);
  await waitFor(() => childPids(gateway).length >= processes, 10_000);
  return childPids(gateway);
}

function childPids(gateway: RunningGateway): number[] {
  return [...new Set(gateway.logs.filter((l) => l.msg === 'gateway listening').map((l) => l.pid as number))];
}

/** A request on a new connection each time, so node:cluster hands each one to the next process. */
function onNewConnection(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', agent: false, headers: init.headers ?? { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('two processes sharing Redis admit exactly the burst between them', async (t) => {
  const redis = await startRedis(t);
  const upstream = await startFaultUpstream(t);
  // A burst of new connections keeps two loaded cores busy past the default 50 ms decision
  // deadline, and fail open would then decide locally (throttling.md): give Redis time to answer.
  const dir = await tempDir(t, 'processes-redis');
  const configPath = await writeConfig(join(dir, 'gateway.yaml'), { redis: { decisionDeadlineMs: 1000 } });
  const gateway = await startGateway(t, [upstream.url], { args: ['--config', configPath, '--processes', '2', '--redis', redis.url], requireAuth: true, waitForWorkers: false });
  assert.equal((await allListening(gateway, 2)).length, 2);
  await waitFor(async () => (await onNewConnection(`${gateway.adminUrl}/admin/workers`)).body.includes('"ready":true'), 30_000);
  const created = await gateway.admin('/admin/keys', { method: 'POST', body: JSON.stringify({ name: 'processes', models: '*', ...PLAN }) });
  const { key } = (await created.json()) as { key: string };

  const statuses = await Promise.all(Array.from({ length: 4 * PLAN.burst }, async () => {
    const res = await onNewConnection(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: BODY });
    return res.status;
  }));
  assert.equal(statuses.filter((s) => s === 200).length, PLAN.burst, `admitted: ${statuses.join(',')}`);
  assert.equal(statuses.filter((s) => s === 429).length, 3 * PLAN.burst);
  await waitFor(() => gateway.logs.filter((l) => l.code === 'GW_ERR_RATE_LIMITED').length === 3 * PLAN.burst, 5000);
  const refusers = new Set(gateway.logs.filter((l) => l.code === 'GW_ERR_RATE_LIMITED').map((l) => l.pid));
  assert.equal(refusers.size, 2, 'both processes refused requests: the limit held across them');
});

test('without Redis: a warning, one strategy for every process, a crashed process restarted (a SIGHUP while it starts reaches it once it listens), SIGTERM stops all', async (t) => {
  const upstream = await startFaultUpstream(t);
  const dir = await tempDir(t, 'processes');
  const configPath = await writeConfig(join(dir, 'gateway.yaml'), { processes: 2, auth: { apiKeys: { file: join(dir, 'keys.json') } } });
  const gateway = await startGateway(t, [upstream.url], { args: ['--config', configPath], waitForWorkers: false });
  const pids = await allListening(gateway, 2);
  assert.equal(pids.length, 2);
  assert.ok(gateway.logs.some((l) => l.level === 40 && /per process/.test(String(l.msg))), 'the primary warns that in-memory buckets are per process');

  const set = await gateway.admin('/admin/strategy', { method: 'PUT', body: JSON.stringify({ strategy: 'round-robin' }) });
  assert.equal(set.status, 200, await set.text());
  await waitFor(async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => onNewConnection(`${gateway.adminUrl}/admin/strategy`)));
    return answers.every((a) => (JSON.parse(a.body) as { strategy: string }).strategy === 'round-robin');
  }, 5000);

  process.kill(pids[0]!, 'SIGKILL');
  await waitFor(() => gateway.logs.some((l) => l.msg === 'gateway process exited; restarting' && l.pid !== undefined), 5000);
  await waitFor(() => childPids(gateway).length === 3, 30_000); // the replacement announced itself
  await waitFor(async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => onNewConnection(`${gateway.adminUrl}/admin/strategy`)));
    return answers.every((a) => (JSON.parse(a.body) as { strategy: string }).strategy === 'round-robin');
  }, 5000); // the replacement was told the strategy its siblings use
  const infer = await fetch(`${gateway.url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
  assert.equal(infer.status, 200, 'still serving');

  // A reload while a replacement starts must not kill it (SIGHUP's default for a process with no
  // handler yet): the primary passes it on once the process listens.
  process.kill(pids[1]!, 'SIGKILL');
  await waitFor(() => gateway.logs.filter((l) => l.msg === 'gateway process exited; restarting').length === 2, 5000);
  await new Promise((resolve) => setTimeout(resolve, 400)); // forked, still loading
  gateway.child.kill('SIGHUP');
  await waitFor(() => childPids(gateway).length === 4, 30_000);
  await waitFor(() => gateway.logs.filter((l) => l.msg === 'configuration reloaded' && l.why === 'SIGHUP').length === 2, 10_000); // the running process at once, the new one once it listens
  const exits = gateway.logs.filter((l) => l.msg === 'gateway process exited; restarting');
  assert.deepEqual(exits.map((l) => l.signal), ['SIGKILL', 'SIGKILL'], 'the reload signal killed no gateway process');

  const code = await gateway.stop(20_000);
  assert.equal(code, 0, 'the primary exits 0 once every process has drained');
  for (const pid of childPids(gateway)) assert.ok(!alive(pid), `process ${pid} is gone`);
});

test('a stop while one process is still starting and another waits to restart: every process ends and the primary exits 0', async (t) => {
  const upstream = await startFaultUpstream(t);
  const dir = await tempDir(t, 'processes-stop');
  const configPath = await writeConfig(join(dir, 'gateway.yaml'), { processes: 2 });
  const gateway = await startGateway(t, [upstream.url], { args: ['--config', configPath], waitForWorkers: false });
  const pids = await allListening(gateway, 2);
  const restarts = (): number => gateway.logs.filter((l) => l.msg === 'gateway process exited; restarting').length;

  process.kill(pids[0]!, 'SIGKILL');
  await waitFor(() => restarts() === 1, 5000);
  await new Promise((resolve) => setTimeout(resolve, 400)); // its replacement is forked and still loading
  process.kill(pids[1]!, 'SIGKILL');
  await waitFor(() => restarts() === 2, 5000); // this one waits out its restart delay (250 ms)
  assert.equal(childPids(gateway).length, 2, 'the replacement was still starting when the stop came');
  const running = processesStartedBy(gateway.child.pid!);
  assert.equal(running.length, 1, 'one replacement process, starting');

  const code = await gateway.stop(20_000);
  assert.equal(code, 0, 'a process ended while starting, or not restarted, stopped as asked');
  assert.deepEqual(gateway.logs.find((l) => l.msg === 'all gateway processes exited')?.failed, []);
  assert.equal(childPids(gateway).length, 2, 'the slot waiting to restart was not started during the stop');
  assert.ok(!alive(running[0]!), 'the starting process is gone');
});

/** The pids of the processes `pid` started that are still running. */
function processesStartedBy(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
}
