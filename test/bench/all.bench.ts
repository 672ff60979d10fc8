/**
 * `npm run bench`: every benchmark scenario in one go — the worker benchmark, the gateway benchmark
 * (proxy overhead with NGINX and the floor, slow-worker strategies, a real model, authentication
 * and throttling), scaling and overload — then bench/report.md and bench/charts/*.svg from their
 * results. Each benchmark runs as its own process, exactly as `npm run bench:<name>` runs it, one
 * after the other; their progress lines pass through on stderr.
 *
 * Knobs: BENCH_QUICK=1 for a ~3-minute smoke run (short windows, fewer cells; the report says so);
 * BENCH_ONLY=worker,gateway,scaling,overload for a subset; BENCH_REPORT_DIR (default bench/).
 * Every benchmark's own knobs still apply (see docs/performance.md); BENCH_QUICK only fills in
 * the ones not set.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/processes.ts';
import { describeMachine, machineInfo, packageVersions, sourceState, probeMachine } from './lib/machine.ts';
import { nginxAvailable, nginxVersion } from './lib/nginx.ts';
import { wrkVersion } from './lib/wrk.ts';
import { backgroundLoad } from './lib/noise.ts';
import { chartsFor, renderReport, type Runs, type ScenarioRun } from './lib/report.ts';

const env = process.env;
const QUICK = env.BENCH_QUICK === '1';
const OUT_DIR = env.BENCH_REPORT_DIR ?? join(REPO_ROOT, 'bench');
const ONLY = (env.BENCH_ONLY ?? 'worker,gateway,scaling,overload').split(',').map((s) => s.trim());

interface Scenario {
  key: keyof Runs;
  title: string;
  script: string;
  /** Rough minutes, for the progress line. */
  minutes: number;
  /** Settings of the quick smoke run, applied where the caller set nothing. */
  quick: Record<string, string>;
}

const QUICK_WINDOWS = { BENCH_WARMUP_MS: '300', BENCH_DURATION_MS: '1000', BENCH_PREWARM_MS: '500', BENCH_RETRIES: '1' };

const SCENARIOS: Scenario[] = [
  { key: 'worker', title: 'Worker benchmark', script: 'worker.bench.ts', minutes: 3, quick: { ...QUICK_WINDOWS, BENCH_CONCURRENCY: '1,64' } },
  {
    key: 'gateway',
    title: 'Gateway benchmark',
    script: 'gateway.bench.ts',
    minutes: 6,
    quick: { ...QUICK_WINDOWS, BENCH_CONCURRENCY: '1,64', BENCH_STRATEGIES: 'round-robin,p2c,peak-ewma', BENCH_AUTH_CONCURRENCY: '64' },
  },
  { key: 'scaling', title: 'Scaling: one gateway process on one core', script: 'scaling.bench.ts', minutes: 2, quick: { ...QUICK_WINDOWS, BENCH_SCALING_WORKERS: '1,2,4' } },
  { key: 'overload', title: 'Overload: 10x capacity', script: 'overload.bench.ts', minutes: 2, quick: { BENCH_OVERLOAD_MS: '5000', BENCH_UNLOADED_MS: '2000', BENCH_RECOVERY_MS: '4000' } },
];

const progress = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);

/** Runs one benchmark as `tsx <script>`; stdout is its text report, stderr passes through. */
async function run(scenario: Scenario, rawFile: string): Promise<ScenarioRun<never>> {
  const childEnv: NodeJS.ProcessEnv = { ...env, BENCH_OUT: rawFile };
  if (QUICK) for (const [k, v] of Object.entries(scenario.quick)) childEnv[k] ??= v;
  await rm(rawFile, { force: true }); // a benchmark that fails must not leave an older run's results to report
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test', 'bench', scenario.script)], { cwd: REPO_ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let raw: never | undefined;
  try {
    raw = JSON.parse(await readFile(rawFile, 'utf8')) as never;
  } catch {
    raw = undefined;
  }
  const quickEnv = QUICK ? Object.entries(scenario.quick).map(([k]) => `${k}=${childEnv[k]} `).join('') : '';
  return { title: scenario.title, command: `${quickEnv}npm run bench:${scenario.key}`, text, raw, seconds: (performance.now() - started) / 1000, exitCode };
}

function redisVersion(): string {
  try {
    return /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const chosen = SCENARIOS.filter((s) => ONLY.includes(s.key));
  const minutes = chosen.reduce((sum, s) => sum + s.minutes, 0);
  progress(`${chosen.length} benchmarks${QUICK ? ' (quick smoke run)' : ''}: ${chosen.map((s) => s.key).join(', ')}; about ${QUICK ? 3 : Math.round(minutes)} min`);
  await probeMachine();
  const background = await backgroundLoad();
  if (background > 0.25) progress(`the machine is busy (${background.toFixed(2)} cores before the start): figures will be noisy`);
  const runs: Runs = {};
  for (const [i, scenario] of chosen.entries()) {
    const elapsed = (performance.now() - started) / 60_000;
    progress(`(${i + 1}/${chosen.length}) ${scenario.title} — ${elapsed.toFixed(1)} min elapsed`);
    const result = await run(scenario, join(OUT_DIR, `${scenario.key}.raw.json`));
    (runs as Record<string, ScenarioRun<never>>)[scenario.key] = result;
    progress(`(${i + 1}/${chosen.length}) ${scenario.title}: ${result.exitCode === 0 ? 'done' : `FAILED (exit ${result.exitCode})`} in ${Math.round(result.seconds)} s`);
  }

  const charts = chartsFor(runs);
  const chartDir = join(OUT_DIR, 'charts');
  await rm(chartDir, { recursive: true, force: true });
  await mkdir(chartDir, { recursive: true });
  for (const c of charts) await writeFile(join(chartDir, c.file), `${c.svg}\n`);
  const packages = runs.gateway?.raw?.packages ?? packageVersions(['express', 'http-proxy', 'opossum', 'prom-client', 'pino', 'autocannon', 'onnxruntime-node']);
  const report = renderReport({
    date: new Date(),
    quick: QUICK,
    machine: describeMachine(machineInfo()),
    source: sourceState(),
    versions: { nginx: runs.gateway?.raw?.nginx ?? (nginxAvailable() ? nginxVersion() : 'not installed'), redis: runs.gateway?.raw?.redis ?? redisVersion(), wrk: wrkVersion(), ...packages },
    runs,
    charts,
    totalSeconds: (performance.now() - started) / 1000,
    background,
  });
  await writeFile(join(OUT_DIR, 'report.md'), report);
  progress(`wrote ${join(OUT_DIR, 'report.md')} and ${charts.length} charts in ${chartDir} (${((performance.now() - started) / 60_000).toFixed(1)} min)`);
  if (Object.values(runs).some((r) => r !== undefined && r.exitCode !== 0)) process.exitCode = 1;
}

await main();
