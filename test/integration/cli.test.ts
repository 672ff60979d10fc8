// The `infergate` command as a user runs it right after `npm install`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI, REPO_ROOT, startProcess, waitFor } from '../helpers/processes.ts';
import { postJson } from '../helpers/http.ts';

const run = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('infergate --help lists the commands', async () => {
  const { code, stdout } = await cli('--help');
  assert.equal(code, 0);
  assert.match(stdout, /worker/);
  assert.match(stdout, /Usage: infergate <command>/);
});

test('infergate worker --help and a missing --models', async () => {
  const help = await cli('worker', '--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--models <dir>/);
  const missing = await cli('worker');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--models <dir> is required/);
  const unknown = await cli('frobnicate');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
});

test('infergate up (npm start) serves the demo models through a gateway; a killed worker is restarted', async (t) => {
  const up = await startProcess(t, 'up', { args: ['--port', '0', '--admin-port', '0', '--workers', '2'] });
  let gatewayUrl = '';
  await waitFor(() => {
    gatewayUrl = String(up.logs.find((l) => l.msg === 'gateway listening')?.url ?? '');
    return gatewayUrl !== '';
  }, 60_000);
  await waitFor(async () => (await fetch(`${gatewayUrl}/v2/health/ready`)).status === 200, 60_000);
  const keyLine = up.logs.map((l) => String(l.raw ?? '')).find((line) => line.includes('a fresh API key for you:'));
  const apiKey = /(igk_\S+)/.exec(keyLine ?? '')?.[1];
  assert.ok(apiKey !== undefined, 'up prints a fresh API key');
  const curl = up.logs.map((l) => String(l.raw ?? '')).find((line) => line.includes('curl -s'));
  assert.match(curl ?? '', new RegExp(`Authorization: Bearer ${apiKey}`), 'the printed curl carries the key');

  // With --port 0 and --admin-port 0 the printed URLs carry the ports the gateway really bound.
  const printed = (label: string): string => {
    const line = up.logs.map((l) => String(l.raw ?? '')).find((l) => l.startsWith(label));
    return /(https?:\/\/\S+)/.exec(line ?? '')?.[1] ?? '';
  };
  const adminUrl = String(up.logs.find((l) => l.msg === 'gateway listening')?.admin ?? '');
  assert.equal(printed('infergate is up: gateway'), gatewayUrl);
  assert.equal(printed('admin API:'), adminUrl);
  assert.doesNotMatch(adminUrl, /:0$/);
  assert.equal(printed('playground'), `${gatewayUrl}/ui/`);
  assert.equal(printed('dashboard'), `${adminUrl}/ui/dashboard.html`);
  assert.match(up.logs.map((l) => String(l.raw ?? '')).find((l) => l.startsWith('dashboard')) ?? '', /admin token/, 'says the dashboard asks for the admin token');
  for (const page of [printed('playground'), printed('dashboard')]) {
    const res = await fetch(page);
    assert.equal(res.status, 200, page);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/, page);
  }
  const infer = (): Promise<{ status: number; body: any }> => postJson(`${gatewayUrl}/v2/models/iris/infer`, { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] }, { authorization: `Bearer ${apiKey}` }); // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.equal((await postJson(`${gatewayUrl}/v2/models/iris/infer`, {})).status, 401, 'no credential, no inference');
  const res = await infer();
  assert.equal(res.status, 200);
  const p = res.body.outputs[0].data as number[];
  assert.equal(p.indexOf(Math.max(...p)), 0, 'classified as setosa');

  const workerPids = up.logs.filter((l) => l.msg === 'worker listening').map((l) => Number(l.pid));
  assert.equal(workerPids.length, 2);
  process.kill(workerPids[0]!, 'SIGKILL');
  await waitFor(() => up.logs.filter((l) => l.msg === 'worker listening').length === 3, 30_000);
  await waitFor(async () => (await infer()).status === 200, 30_000);
});
