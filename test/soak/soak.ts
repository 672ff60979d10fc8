/**
 * Soak run (not part of CI): a gateway in front of three real workers with its rate-limit state in a
 * real Redis, under steady closed-loop load, with faults injected on a schedule — a worker killed
 * (-9) and restarted on its port, a worker frozen (SIGSTOP) and resumed, Redis restarted empty, a
 * burst of clients that disconnect mid-request. Every `--sample-s` seconds it records the error
 * rate and, for the gateway and for the one worker that is never killed, RSS, heap in use after a
 * full GC, active handles and open file descriptors; at the end it prints the table and a verdict
 * on flatness: the least-squares slope of each figure over the second half of the run, per minute,
 * against a threshold.
 *
 *   npm run soak -- --minutes 3 [--sample-s 10] [--fault-s 20] [--concurrency 8] [--json out.json]
 *
 * Exits 0 when everything stayed flat, 1 when something grew, 2 on a usage error.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { startLoad } from '../helpers/load.ts';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { DEMO_MODELS, startGateway, startWorker, type RunningGateway, type RunningProcess } from '../helpers/processes.ts';
import { startRedis, type RedisFixture } from '../helpers/redis.ts';
import { gcPreloadEnv, heapAfterGc } from '../resilience/support.ts';

interface ProcessFigures {
  rssMb: number;
  heapMb: number;
  handles: number;
  fds: number;
}

interface Sample {
  minute: number;
  requests: number;
  errors: number;
  errorRate: number;
  fault: string;
  gateway: ProcessFigures;
  worker: ProcessFigures;
}

/** Growth per minute, over the second half, above which a figure is not flat. */
const THRESHOLDS: Record<keyof ProcessFigures, number> = {
  // RSS moves with the allocator and the JIT: only steady growth of a MiB a minute counts.
  rssMb: 1,
  // Heap after a full GC is what is reachable: 0.25 MiB a minute is 15 MiB an hour.
  heapMb: 0.25,
  handles: 1,
  fds: 1,
};

const USAGE = 'npm run soak -- --minutes <n> [--sample-s 10] [--fault-s 20] [--concurrency 8] [--json <file>]';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      'sample-s': { type: 'string', default: '10' },
      'fault-s': { type: 'string', default: '20' },
      concurrency: { type: 'string', default: '8' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const minutes = Number(values.minutes);
  const sampleMs = Number(values['sample-s']) * 1000;
  const faultMs = Number(values['fault-s']) * 1000;
  const concurrency = Number(values.concurrency);
  if (![minutes, sampleMs, faultMs, concurrency].every((n) => Number.isFinite(n) && n > 0)) {
    console.error(`usage: ${USAGE}`);
    return 2;
  }

  const stack = await startStack();
  try {
    return await soak(stack, { minutes, sampleMs, faultMs, concurrency, json: values.json });
  } finally {
    await stack.stop();
  }
}

interface Stack {
  redis: RedisFixture;
  gateway: RunningGateway;
  /** [0] is never killed (its figures are sampled), [1] is frozen, [2] is killed and restarted. */
  workers: RunningProcess[];
  repo: string;
  stop(): Promise<void>;
}

async function startStack(): Promise<Stack> {
  const repo = await mkdtemp(join(tmpdir(), 'infergate-soak-'));
  await cp(join(DEMO_MODELS, 'iris'), join(repo, 'iris'), { recursive: true });
  const redis = await startRedis(undefined, { spawn: true });
  const env = gcPreloadEnv();
  const workers = await Promise.all([0, 1, 2].map(() => startWorker(undefined, repo, { env })));
  const config = join(repo, 'gateway.yaml');
  await writeFile(config, toYaml({
    health: { intervalMs: 200, timeoutMs: 1000, unhealthyThreshold: 2 },
    breaker: { volumeThreshold: 3, resetTimeoutMs: 1000 },
    timeouts: { requestMs: 2000 },
    redis: { decisionDeadlineMs: 200 },
    auth: { anonymous: { enabled: true, plan: 'roomy' } },
    throttle: { onStoreFailure: 'open', plans: { roomy: { ratePerSec: 1_000_000, burst: 1_000_000 } } },
    logLevel: 'warn',
  }));
  const gateway = await startGateway(undefined, workers.map((w) => w.url), { args: ['--config', config, '--redis', redis.url], env });
  const stack: Stack = {
    redis, gateway, workers, repo,
    async stop() {
      await Promise.all([gateway, ...stack.workers].map((p) => {
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGCONT'); // in case a freeze was under way
        return p.stop();
      }));
      await redis.stop();
      await rm(repo, { recursive: true, force: true });
    },
  };
  return stack;
}

/** The faults, in turn, one every `--fault-s`. Each resolves once the fault is over (or under way, for the burst). */
function faults(stack: Stack): Array<{ name: string; run(): Promise<void> }> {
  const iris = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] });
  return [
    {
      name: 'worker kill -9 + restart',
      async run() {
        const victim = stack.workers[2]!;
        const port = new URL(victim.url).port;
        victim.child.kill('SIGKILL');
        await victim.stop();
        stack.workers[2] = await startWorker(undefined, stack.repo, { args: ['--port', port], env: gcPreloadEnv() });
      },
    },
    {
      name: 'worker SIGSTOP 3 s',
      async run() {
        const frozen = stack.workers[1]!;
        frozen.child.kill('SIGSTOP');
        await sleep(3000);
        frozen.child.kill('SIGCONT');
      },
    },
    {
      name: 'Redis restart',
      async run() {
        await stack.redis.restart();
      },
    },
    {
      name: '50 client disconnects',
      async run() {
        await Promise.all(Array.from({ length: 50 }, async (_, i) => {
          const controller = new AbortController();
          const pending = fetch(`${stack.gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: iris, signal: controller.signal }).then((r) => r.text(), () => undefined);
          await sleep(i % 5);
          controller.abort();
          await pending;
        }));
      },
    },
  ];
}

async function figures(proc: RunningProcess, prefix: string): Promise<ProcessFigures> {
  const heap = await heapAfterGc(proc, prefix);
  const metrics = await scrapeMetrics(proc.url);
  const pid = proc.child.pid!;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return {
    rssMb: rssKb / 1024,
    heapMb: heap / 1048576,
    handles: metrics.sum(`${prefix}nodejs_active_handles_total`),
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

async function soak(stack: Stack, options: { minutes: number; sampleMs: number; faultMs: number; concurrency: number; json: string | undefined }): Promise<number> {
  const { gateway } = stack;
  const iris = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] });
  const load = startLoad(() => fetch(`${gateway.url}/v2/models/iris/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: iris, signal: AbortSignal.timeout(15_000) }), options.concurrency);
  const schedule = faults(stack);
  const started = performance.now();
  const endAt = started + options.minutes * 60_000;
  const samples: Sample[] = [];
  let faultsRun = 0;
  let lastFault = '';
  let faultChain = Promise.resolve();
  const faultTimer = setInterval(() => {
    const fault = schedule[faultsRun++ % schedule.length]!;
    lastFault = fault.name;
    faultChain = faultChain.then(() => fault.run()).catch((err: Error) => console.error(`fault '${fault.name}' failed: ${err.message}`));
  }, options.faultMs);

  console.log(`soak: ${options.minutes} min, ${options.concurrency} loops, a sample every ${options.sampleMs / 1000} s, a fault every ${options.faultMs / 1000} s`);
  console.log(header());
  let previous = load.progress();
  try {
    while (performance.now() < endAt) {
      await sleep(Math.min(options.sampleMs, Math.max(0, endAt - performance.now())));
      const now = load.progress();
      const requests = now.sent - previous.sent;
      const errors = now.failures.length - previous.failures.length;
      previous = now;
      const sample: Sample = {
        minute: (performance.now() - started) / 60_000,
        requests,
        errors,
        errorRate: requests === 0 ? 0 : errors / requests,
        fault: lastFault,
        gateway: await figures(gateway, 'infergate_gateway_'),
        worker: await figures(stack.workers[0]!, 'infergate_worker_'),
      };
      lastFault = '';
      samples.push(sample);
      console.log(row(sample));
    }
  } finally {
    clearInterval(faultTimer);
    await faultChain;
  }
  const result = await load.stop();
  const errorsByStatus = Object.entries(result.statuses).filter(([s]) => s !== '200').map(([s, n]) => `${s}: ${n}`).join(', ') || 'none';
  console.log(`\n${result.sent} requests, ${result.failures.length} failed (${(100 * result.failures.length / Math.max(1, result.sent)).toFixed(3)}%; by status ${errorsByStatus}), ${faultsRun} faults injected`);

  const verdict = flatness(samples);
  for (const line of verdict.lines) console.log(line);
  console.log(verdict.flat ? 'VERDICT: flat' : 'VERDICT: NOT flat');
  if (options.json !== undefined) writeFileSync(options.json, JSON.stringify({ samples, verdict, requests: result.sent, failures: result.failures.length, statuses: result.statuses }, null, 2));
  return verdict.flat ? 0 : 1;
}

function header(): string {
  return [
    '| min | requests | errors | error % | fault | gw RSS MB | gw heap MB | gw handles | gw fds | wk RSS MB | wk heap MB | wk handles | wk fds |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ].join('\n');
}

function row(s: Sample): string {
  const f = (p: ProcessFigures): string => `${p.rssMb.toFixed(1)} | ${p.heapMb.toFixed(2)} | ${p.handles} | ${p.fds}`;
  return `| ${s.minute.toFixed(2)} | ${s.requests} | ${s.errors} | ${(100 * s.errorRate).toFixed(2)} | ${s.fault || '-'} | ${f(s.gateway)} | ${f(s.worker)} |`;
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

/** Each figure's slope per minute over the second half of the run, against its threshold. */
function flatness(samples: Sample[]): { flat: boolean; lines: string[] } {
  const half = samples.slice(Math.floor(samples.length / 2));
  if (half.length < 3) return { flat: false, lines: ['too few samples in the second half to judge flatness: run longer'] };
  const lines = [`slopes per minute over the second half (${half.length} samples, minutes ${half[0]!.minute.toFixed(2)}–${half.at(-1)!.minute.toFixed(2)}):`];
  let flat = true;
  for (const proc of ['gateway', 'worker'] as const) {
    for (const key of Object.keys(THRESHOLDS) as Array<keyof ProcessFigures>) {
      const s = slope(half.map((x) => [x.minute, x[proc][key]]));
      const ok = s <= THRESHOLDS[key];
      flat &&= ok;
      lines.push(`  ${proc} ${key}: ${s >= 0 ? '+' : ''}${s.toFixed(3)}/min (limit +${THRESHOLDS[key]}) ${ok ? 'flat' : 'GROWING'}`);
    }
  }
  const errorSlope = slope(half.map((x) => [x.minute, 100 * x.errorRate]));
  lines.push(`  error rate: ${errorSlope >= 0 ? '+' : ''}${errorSlope.toFixed(3)} points/min (reported, not judged: it follows the fault schedule)`);
  return { flat, lines };
}

process.exitCode = await main();
