/**
 * `npm run bench:scaling`: the most requests per second one gateway process sustains on one core,
 * and whether throughput grows with the number of workers until that core is saturated (issue 7).
 *
 * The gateway (API-key authentication, p2c, its defaults otherwise) is pinned to CPU 0; the load
 * generator (this process) and the simulated workers (worker/simulated/, one execution slot each, so
 * each serves at most 1000/delay req/s; all of them in one process by default, see
 * lib/simulated-fleet-server.ts for why) share CPU 1. For 1, 2, 4, 8, 16 workers
 * at a fixed concurrency: req/s, p50/p99 and how busy the gateway's core was (from /proc). Then the
 * gateway's limit: 8 workers with no delay and no slot limit, so only the gateway's core bounds it.
 * Caveat: with 2 cores the workers and the load generator share one core; CPU 1's load is reported.
 *
 * Results: stdout (text), bench/scaling.raw.json. Knobs: BENCH_WARMUP_MS / BENCH_DURATION_MS
 * (1000 / 3000), BENCH_SCALING_WORKERS (1,2,4,8,16), BENCH_SCALING_DELAY_MS (2),
 * BENCH_SCALING_CONCURRENCY (64), BENCH_SCALING_WORKER_PROCESSES (one | each), BENCH_PREWARM_MS (1500), BENCH_RETRIES (4), BENCH_OUT.
 */
import os from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../helpers/processes.ts';
import { cpuClockOf, cpuClockOfAll } from './lib/cpu.ts';
import { startGatewayProcess, type GatewayProcess } from './lib/gateway-process.ts';
import { httpLoad, type CellResult } from './lib/load.ts';
import { describeMachine, machineInfo, sourceState, probeMachine } from './lib/machine.ts';
import { backgroundLoad, isNoisy, quietest, type RetryPolicy } from './lib/noise.ts';
import { currentCpus, pinToCpus } from './lib/pin.ts';
import { SIMULATED_MODEL, SIMULATED_REQUEST, startSimulatedFleet, startSimulatedWorkers, type SimulatedWorker } from './lib/simulated-workers.ts';
import { scalesUntilSaturated } from './lib/stats.ts';
import { ms, num, renderTable, renderTargets, verdict, type TargetRow } from './lib/table.ts';

const env = process.env;
const WARMUP_MS = Number(env.BENCH_WARMUP_MS ?? 1000);
const DURATION_MS = Number(env.BENCH_DURATION_MS ?? 3000);
const PREWARM_MS = Number(env.BENCH_PREWARM_MS ?? 1500);
const WORKER_COUNTS = (env.BENCH_SCALING_WORKERS ?? '1,2,4,8,16').split(',').map(Number);
const DELAY_MS = Number(env.BENCH_SCALING_DELAY_MS ?? 2);
const CONCURRENCY = Number(env.BENCH_SCALING_CONCURRENCY ?? 64);
/** "one": all simulated workers served by one process (default); "each": a process per worker (`infergate worker --simulate-delay-ms`). */
const WORKER_PROCESSES = env.BENCH_SCALING_WORKER_PROCESSES === 'each' ? 'each' : 'one';
const OUT = env.BENCH_OUT ?? join(REPO_ROOT, 'bench', 'scaling.raw.json');
const NOISY_CORES = 0.25;
const GATEWAY_CPU = '0';
const LOAD_CPU = '1';
/** The gateway's core counts as saturated from this share on. */
const SATURATED = 0.8;
const retryPolicy: RetryPolicy = { noisyCores: NOISY_CORES, perCell: 1, budget: { left: Number(env.BENCH_RETRIES ?? 4) }, log: (l) => progress(l) };
const progress = (line: string): void => void process.stderr.write(`[bench:scaling] ${line}\n`);

interface Point {
  label: string;
  workers: number;
  delayMs: number;
  /** Execution slots per worker (0 = unlimited). */
  slots: number;
  result: CellResult;
  /** Cores the gateway kept busy (1 = its core). */
  gatewayCores: number;
  /** Cores the workers used together. */
  workerCores: number;
  /** Cores the load generator used. */
  clientCores: number;
  /** What the workers could serve at most: workers × slots × 1000 / delay (Infinity without a limit). */
  workerCapacity: number;
}

const points: Point[] = [];
let pinned = false;

async function measure(label: string, workers: number, delayMs: number, slots: number): Promise<Point> {
  progress(`${label}: starting ${workers} simulated worker(s), ${delayMs} ms, ${slots || 'unlimited'} slot(s)`);
  const sims: SimulatedWorker[] = await (WORKER_PROCESSES === 'one' ? startSimulatedFleet : startSimulatedWorkers)(workers, { delayMs, concurrency: slots });
  const workerPids = [...new Set(sims.map((w) => w.pid))];
  let gateway: GatewayProcess | undefined;
  try {
    if (pinned) for (const pid of workerPids) pinToCpus(pid, LOAD_CPU);
    gateway = await startGatewayProcess({ workers: sims.map((w) => w.url), strategy: 'p2c' });
    if (pinned) pinToCpus(gateway.pid, GATEWAY_CPU);
    const url = `${gateway.url}/v2/models/${SIMULATED_MODEL}/infer`;
    const headers = { ...SIMULATED_REQUEST.headers, ...gateway.authHeaders };
    if (PREWARM_MS > 0) await httpLoad({ url, connections: 16, method: 'POST', headers, body: SIMULATED_REQUEST.body, warmupMs: PREWARM_MS, durationMs: 1 });
    const workerCpu = cpuClockOfAll(() => workerPids);
    const gatewayPid = gateway.pid;
    const point = await quietest(
      async () => {
        const result = await httpLoad({ url, connections: CONCURRENCY, method: 'POST', headers, body: SIMULATED_REQUEST.body, warmupMs: WARMUP_MS, durationMs: DURATION_MS, serverCpu: cpuClockOf(gatewayPid), accountedCpu: workerCpu });
        const cores = (msPerOp: number): number => (msPerOp * result.completed) / 1000 / result.seconds;
        return {
          label,
          workers,
          delayMs,
          slots,
          result,
          gatewayCores: cores(result.serverCpuMsPerOp),
          workerCores: result.accountedCores,
          clientCores: cores(result.clientCpuMsPerOp),
          workerCapacity: slots > 0 && delayMs > 0 ? (workers * slots * 1000) / delayMs : Number.POSITIVE_INFINITY,
        };
      },
      (p) => p.result,
      retryPolicy,
      label,
    );
    progress(`${label}: ${num(point.result.perSecond)}/s, p99 ${ms(point.result.latency.p99Ms)} ms, gateway core ${(point.gatewayCores * 100).toFixed(0)}% busy, errors ${point.result.errors}`);
    return point;
  } finally {
    await gateway?.stop();
    await Promise.all(workerPids.map((pid) => sims.find((w) => w.pid === pid)!.stop()));
  }
}

function targets(): TargetRow[] {
  const scaling = points.filter((p) => p.label.startsWith('workers'));
  const verdictOf = scalesUntilSaturated(scaling.map((p) => ({ workers: p.workers, perSecond: p.result.perSecond, gatewayCores: p.gatewayCores })), SATURATED);
  const best = [...points].sort((a, b) => b.result.perSecond - a.result.perSecond)[0];
  return [
    {
      name: 'req/s grows with workers until the gateway core saturates',
      detail: `${WORKER_COUNTS.join('/')} workers, ${DELAY_MS} ms, 1 slot`,
      value: scaling.map((p) => num(p.result.perSecond)).join(' / '),
      limit: `>= 60% of proportional growth (capped by core headroom) below ${SATURATED * 100}% core`,
      result: verdict(verdictOf.pass),
      pass: verdictOf.pass,
    },
    { name: 'why', detail: verdictOf.reason, value: '', limit: '', result: 'info' },
    {
      name: 'max req/s of one gateway process on one core',
      detail: best ? `${best.label}, gateway core ${(best.gatewayCores * 100).toFixed(0)}% busy` : '-',
      value: best ? num(best.result.perSecond) : '-',
      limit: '',
      result: 'info',
    },
  ];
}

function method(): string[] {
  return [
    `Gateway (shared/cli/bin.js gateway, API-key authentication, p2c, defaults otherwise) ${pinned ? `pinned to CPU ${GATEWAY_CPU}` : 'NOT pinned (taskset or a second CPU missing)'};`,
    `    load generator (autocannon in this process) and simulated workers ${pinned ? `pinned to CPU ${LOAD_CPU}` : 'unpinned'} (taskset -a -p -c).`,
    `Simulated workers (worker/simulated/, delay ${DELAY_MS} ms, one execution slot: at most ${num(1000 / DELAY_MS)} req/s each),`,
    WORKER_PROCESSES === 'one'
      ? '    all served by one process, each on its own port (a process per worker spends CPU 1 on wake-ups: lib/simulated-fleet-server.ts);'
      : '    a process each (infergate worker --simulate-delay-ms);',
    `    ${CONCURRENCY} keep-alive connections, closed loop; ${PREWARM_MS} ms prewarm per gateway,`,
    `    ${WARMUP_MS} ms warm-up, ${DURATION_MS} ms measured; a cell with > ${NOISY_CORES} cores busy outside the benchmark is rerun once.`,
    'Gateway limit: 8 workers with no delay and no slot limit, so the gateway\'s own core is the only bound.',
    'gateway core: utime+stime of the gateway from /proc/<pid>/stat over the window ÷ window (1.00 = its core saturated).',
    'Caveat: on 2 cores the workers and the load generator share CPU 1 ("CPU 1 load" column); with more workers than',
    '    that core can drive, throughput is bounded there, not by the gateway.',
  ];
}

function report(background: number): string {
  const out: string[] = ['infergate scaling benchmark (one gateway process, one core)', '', ...describeMachine(machineInfo())];
  out.push(`source:           ${sourceState()}`, `background:       ${background.toFixed(2)} cores busy before the run started`, '');
  const noisy = points.filter((p) => isNoisy(p.result, NOISY_CORES));
  if (noisy.length > 0) out.push(`WARNING: ${noisy.length} of ${points.length} cells ran with more than ${NOISY_CORES} cores busy outside the benchmark: ${noisy.map((p) => p.label).join('; ')}`, '');
  out.push('method:', ...method().map((l) => `  ${l}`), '');
  out.push(
    renderTable(
      [
        { title: 'cell', align: 'left' },
        { title: 'workers' },
        { title: 'worker capacity req/s' },
        { title: 'req/s' },
        { title: 'p50 ms' },
        { title: 'p99 ms' },
        { title: 'gateway core' },
        { title: 'CPU 1 load (workers + client)' },
        { title: 'other cores' },
        { title: 'errors' },
      ],
      points.map((p) => [
        p.label,
        String(p.workers),
        Number.isFinite(p.workerCapacity) ? num(p.workerCapacity) : 'unlimited',
        num(p.result.perSecond),
        ms(p.result.latency.p50Ms),
        ms(p.result.latency.p99Ms),
        `${(p.gatewayCores * 100).toFixed(0)}%`,
        `${((p.workerCores + p.clientCores) * 100).toFixed(0)}%`,
        p.result.otherCores.toFixed(2),
        String(p.result.errors),
      ]),
    ),
    '',
    'targets:',
    renderTargets(targets()),
  );
  return out.join('\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  await probeMachine();
  const background = await backgroundLoad();
  progress(`${WORKER_COUNTS.length + 1} cells, about ${Math.round(((WORKER_COUNTS.length + 1) * (PREWARM_MS + WARMUP_MS + DURATION_MS + 3000)) / 1000)} s; background ${background.toFixed(2)} cores`);
  const restore = currentCpus();
  pinned = os.cpus().length >= 2 && pinToCpus(process.pid, LOAD_CPU);
  if (!pinned) progress('not pinned: taskset failed or only one CPU; the figures then mix the gateway with everything else');
  try {
    for (const workers of WORKER_COUNTS) points.push(await measure(`workers ${workers}`, workers, DELAY_MS, 1));
    points.push(await measure('gateway limit (8 workers, no delay)', 8, 0, 0));
  } finally {
    if (pinned) pinToCpus(process.pid, restore);
  }
  process.stdout.write(`${report(background)}\n`);
  await mkdir(dirname(OUT), { recursive: true });
  await writeFile(OUT, `${JSON.stringify({ benchmark: 'scaling', date: new Date().toISOString(), machine: machineInfo(), source: sourceState(), backgroundCores: background, pinned, settings: { warmupMs: WARMUP_MS, durationMs: DURATION_MS, prewarmMs: PREWARM_MS, workerCounts: WORKER_COUNTS, delayMs: DELAY_MS, concurrency: CONCURRENCY }, method: method(), points, targets: targets() }, null, 2)}\n`);
  progress(`results written to ${OUT}; done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

await main();
