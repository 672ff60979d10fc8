// bench/report.md from the benchmarks' raw results: every judged target reaches the summary under
// its issue, charts exist for the parts that ran, warnings appear when the run was quick, busy or
// failed, and nothing in a benchmark's text can break the Markdown around it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chartsFor, mdCell, renderReport, targetSummary, type Runs } from '../../bench/lib/report.ts';

const result = (perSecond: number, p50Ms: number, p99Ms: number) => ({ perSecond, latency: { p50Ms, p99Ms } });
const run = <T>(title: string, raw: T, text = 'report text', exitCode: number | null = 0) => ({ title, command: `npm run bench:${title}`, text, raw, seconds: 12, exitCode });

const runs: Runs = {
  worker: run('worker', {
    cells: [
      { mode: 'binary', model: 'cifar10', concurrency: 16, result: result(4000, 3, 15), liveness: { p99Ms: 9, failures: 0, count: 500 } },
      { mode: 'raw', model: 'cifar10', concurrency: 16, result: result(24000, 0.6, 1) },
    ],
    ratios: [
      { name: '(c)/(a) binary vs raw', model: 'cifar10', concurrency: 16, value: 0.17, target: 0.4, pass: false },
      { name: '(d)/(c) batching vs none', model: 'cifar10', concurrency: 16, value: 1.7 },
    ],
    liveness: { targetP99Ms: 20 },
  }),
  gateway: run('gateway', {
    cells: [
      { part: 'overhead', path: 'direct', strategy: '', variant: '', concurrency: 1, result: result(11000, 0.09, 0.2), proxyCpuUs: Number.NaN },
      { part: 'overhead', path: 'gateway', strategy: 'p2c', variant: '', concurrency: 1, result: result(1500, 0.5, 3), proxyCpuUs: 600 },
      { part: 'hetero', path: 'gateway', strategy: 'p2c', variant: 'worker-like', concurrency: 24, result: result(1000, 17, 93), proxyCpuUs: 580 },
      { part: 'auth', path: 'gateway', strategy: 'p2c', variant: 'none', concurrency: 64, result: result(4000, 15, 25), proxyCpuUs: 260 },
      { part: 'auth', path: 'gateway', strategy: 'p2c', variant: 'JWT HS256', concurrency: 64, result: result(3800, 16, 26), proxyCpuUs: 270 },
    ],
    targets: [
      { name: 'added p50 latency at c=1', detail: 'tiny upstream, p2c', value: '0.41 ms', limit: '<= 0.5 ms', result: 'PASS', pass: true },
      { name: 'throughput cost vs no auth/limit', detail: 'JWT HS256, c=64', value: '5.0%', limit: '<= 15%', result: 'PASS', pass: true },
      { name: 'floor CPU/req ÷ NGINX CPU/req', detail: 'info only', value: '6x', limit: '', result: 'info' },
    ],
  }),
  scaling: run('scaling', {
    points: [
      { label: 'workers 1', workers: 1, result: result(480, 100, 130), gatewayCores: 0.2, workerCapacity: 500 },
      { label: 'workers 2', workers: 2, result: result(950, 50, 70), gatewayCores: 0.4, workerCapacity: 1000 },
    ],
    targets: [{ name: 'req/s grows with workers until the gateway core saturates', detail: '1/2 workers', value: '480 / 950', limit: '', result: 'PASS', pass: true }],
  }),
  overload: run('overload', {
    outcomes: [{ variant: 'in-flight-cap', unloaded: { latency: { p50Ms: 21, p99Ms: 24 } }, recovery: { series: [{ startMs: 0, count: 40, p99Ms: 60 }, { startMs: 250, count: 0, p99Ms: null }, { startMs: 500, count: 40, p99Ms: 23 }] } }],
    targets: [{ name: 'admitted p99 ÷ unloaded p99', detail: 'in-flight-cap', value: '1.40x', limit: '<= 2x', result: 'PASS', pass: true }],
  }, 'a | pipe and ```fences``` inside', 1),
};

test('every judged target is summarised under its issue; info rows are not', () => {
  const summary = targetSummary(runs);
  const issues = summary.map((t) => `${t.issue}: ${t.row.name}`);
  assert.deepEqual(issues, [
    '2 (worker): (c)/(a) binary vs raw',
    '2 (worker): liveness p99 while saturated',
    '3 (gateway): added p50 latency at c=1',
    '4 (auth, throttling): throughput cost vs no auth/limit',
    '7 (scaling): req/s grows with workers until the gateway core saturates',
    '7 (overload): admitted p99 ÷ unloaded p99',
  ]);
  assert.equal(summary[0]!.row.result, 'FAIL');
  assert.equal(summary[1]!.row.result, 'PASS', 'liveness p99 9 ms < 20 ms with no failed probe');
});

test('charts exist for the parts that ran, and none for parts that did not', () => {
  const files = chartsFor(runs).map((c) => c.file);
  assert.deepEqual(files, [
    'worker-throughput.svg',
    'worker-p99.svg',
    'gateway-throughput.svg',
    'gateway-p99.svg',
    'strategies-slow-worker.svg',
    'auth-throughput.svg',
    'auth-cpu.svg',
    'scaling.svg',
    'scaling-gateway-cpu.svg',
    'overload-recovery.svg',
  ]);
  assert.deepEqual(chartsFor({ scaling: runs.scaling! }).map((c) => c.file), ['scaling.svg', 'scaling-gateway-cpu.svg']);
  for (const c of chartsFor(runs)) assert.match(c.svg, /^<svg [^>]*>[\s\S]*<\/svg>$/);
});

test('the report: header, warnings, target table, charts, and each text verbatim in a fence it cannot close', () => {
  const charts = chartsFor(runs);
  const md = renderReport({
    date: new Date('2026-11-22T09:00:00Z'),
    quick: true,
    machine: ['cpu:              Xeon | VM', 'cores:            2 logical'],
    source: 'abc1234',
    versions: { node: 'v20.20.2', nginx: '1.22.1' },
    runs,
    charts,
    totalSeconds: 180,
    background: 1.2,
  });
  assert.match(md, /^# infergate benchmark report\n/);
  assert.match(md, /BENCH_QUICK=1/);
  assert.match(md, /\*\*The machine was busy\*\*/);
  assert.match(md, /\*\*overload failed\*\* \(exit 1\)/);
  assert.match(md, /\| cpu \| Xeon \\\| VM \|/, 'a pipe inside a cell is escaped');
  assert.match(md, /\| git commit \| abc1234 \|/);
  assert.match(md, /5 of 6 judged targets PASS/);
  assert.match(md, /\| 2 \(worker\) \| \(c\)\/\(a\) binary vs raw \| cifar10, c=16 \| 0\.17x \| >= 0\.4 \| \*\*FAIL\*\* \|/);
  for (const c of charts) assert.ok(md.includes(`](charts/${c.file})`), c.file);
  const fenced = /(`{4,})text\na \| pipe and ```fences``` inside\n\1\n/.exec(md);
  assert.ok(fenced, 'a text holding ``` is fenced with a longer run of backticks');
  assert.equal(mdCell('a|b\nc'), 'a\\|b c');
});
