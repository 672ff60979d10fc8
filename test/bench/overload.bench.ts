/**
 * `npm run bench:overload`: the gateway offered 10× what its workers can serve (issue 7). Targets:
 * the excess is refused fast (503/429 p99 well under the deadline), admitted requests keep their
 * latency (p99 ≤ 2× the unloaded p99), the gateway's memory stays bounded, and latency is back to
 * normal within seconds after the overload ends.
 *
 * Capacity is fixed by construction: 2 simulated workers (`infergate worker --simulate-delay-ms 20
 * --simulate-concurrency 2`), 4 execution slots of 20 ms = 200 req/s. The gateway's own admission
 * controls do the refusing: limits.maxInFlightPerWorker = the worker's slots (so excess waits in the
 * gateway, not in a worker queue) and limits.queueWaitMs, then 503 GW_ERR_OVERLOADED; in the
 * "throttled" variant the API key also has a rate plan of the measured capacity, so most of the
 * excess gets 429 GW_ERR_RATE_LIMITED before it queues; "default-queue-wait" keeps the in-flight cap
 * but the default limits.queueWaitMs (50 ms), to show what a gateway configured only that way does.
 *
 * Phases per variant: unloaded (closed loop at half the slots) → capacity (closed loop at twice the
 * slots: 2xx/s) → overload (open loop, lib/load.ts openLoopLoad: 10 × capacity, requests evenly spaced, so
 * arrivals do not wait for answers) → recovery (unloaded load again, p99 per 250 ms bucket).
 * Gateway RSS is sampled every 200 ms. Results: stdout, bench/overload.raw.json.
 *
 * Knobs: BENCH_OVERLOAD_MS (15000), BENCH_UNLOADED_MS (5000), BENCH_RECOVERY_MS (6000),
 * BENCH_OVERLOAD_FACTOR (10), BENCH_OVERLOAD_VARIANTS (in-flight-cap,throttled,default-queue-wait; also fifo-queue-wait), BENCH_OUT.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../helpers/processes.ts';
import { cpuClockOf, rssBytes } from './lib/cpu.ts';
import { startGatewayProcess, type GatewayProcess } from './lib/gateway-process.ts';
import { httpLoad, openLoopLoad, type CellResult } from './lib/load.ts';
import { describeMachine, machineInfo, sourceState, probeMachine } from './lib/machine.ts';
import { backgroundLoad } from './lib/noise.ts';
import { SIMULATED_MODEL, SIMULATED_REQUEST, startSimulatedWorkers } from './lib/simulated-workers.ts';
import { buckets, percentile, ratioOf, recoveryMs, type Bucket, type Sample } from './lib/stats.ts';
import { ms, num, ratio, renderTable, renderTargets, verdict, type TargetRow } from './lib/table.ts';

const env = process.env;
const OVERLOAD_MS = Number(env.BENCH_OVERLOAD_MS ?? 15_000);
const UNLOADED_MS = Number(env.BENCH_UNLOADED_MS ?? 5000);
const RECOVERY_MS = Number(env.BENCH_RECOVERY_MS ?? 6000);
const FACTOR = Number(env.BENCH_OVERLOAD_FACTOR ?? 10);
const VARIANTS = (env.BENCH_OVERLOAD_VARIANTS ?? 'in-flight-cap,throttled,default-queue-wait').split(',').map((s) => s.trim());
const OUT = env.BENCH_OUT ?? join(REPO_ROOT, 'bench', 'overload.raw.json');
const WORKERS = 2;
const SLOTS = 2;
const DELAY_MS = 20;
const QUEUE_WAIT_MS = 10;
const DEADLINE_MS = 2000;
const OVERLOAD_CONNECTIONS = 256;
const BUCKET_MS = 250;
const RSS_EVERY_MS = 200;
/** Targets (issue 7): refusals within a tenth of the deadline, admitted p99 ≤ 2× unloaded, RSS ≤ 1.5× unloaded, recovery ≤ 5 s. */
const TARGET_REFUSAL_SHARE_OF_DEADLINE = 0.1;
const TARGET_ADMITTED_P99 = 2;
const TARGET_RSS = 1.5;
const TARGET_RECOVERY_MS = 5000;
/** Latency counts as recovered when a bucket's p99 is within this factor of the unloaded p99. */
const RECOVERED_WITHIN = 1.5;
const progress = (line: string): void => void process.stderr.write(`[bench:overload] ${line}\n`);

interface Outcome {
  variant: string;
  unloaded: CellResult;
  capacityPerSecond: number;
  offeredPerSecond: number;
  /** Answers per second that came back during the overload window, any status. */
  answeredPerSecond: number;
  admitted: { count: number; p50Ms: number; p99Ms: number };
  refused: { count: number; byStatus: Record<string, number>; p50Ms: number; p99Ms: number; maxMs: number };
  /** Answers that were neither 2xx nor a refusal (504, 502, transport errors), by status. */
  otherErrors: Record<string, number>;
  gatewayCpuCores: number;
  rss: { unloadedMiB: number; peakMiB: number; endMiB: number; afterRecoveryMiB: number };
  recovery: { ms: number; series: Bucket[] };
}

const MiB = 2 ** 20;

/** Samples a process's RSS every RSS_EVERY_MS until stopped; returns the samples in MiB. */
function sampleRss(pid: number): () => number[] {
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(rssBytes(pid) / MiB), RSS_EVERY_MS);
  return () => {
    clearInterval(timer);
    return samples.filter(Number.isFinite);
  };
}

/**
 * The gateway's admission limits per variant. "fifo-queue-wait" (not run by default: name it in
 * BENCH_OVERLOAD_VARIANTS) is "default-queue-wait" with adaptive LIFO off, to show what it buys.
 */
function limitsOf(variant: string): Record<string, number> {
  switch (variant) {
    case 'default-queue-wait':
      return { maxInFlightPerWorker: SLOTS };
    case 'fifo-queue-wait':
      return { maxInFlightPerWorker: SLOTS, adaptiveLifoMs: 0 };
    default:
      return { maxInFlightPerWorker: SLOTS, queueWaitMs: QUEUE_WAIT_MS };
  }
}

async function runVariant(variant: string): Promise<Outcome> {
  const workers = await startSimulatedWorkers(WORKERS, { delayMs: DELAY_MS, concurrency: SLOTS });
  const nominal = (WORKERS * SLOTS * 1000) / DELAY_MS;
  let gateway: GatewayProcess | undefined;
  try {
    gateway = await startGatewayProcess({
      workers: workers.map((w) => w.url),
      strategy: 'least-connections',
      config: {
        limits: limitsOf(variant),
        timeouts: { requestMs: DEADLINE_MS },
      },
      ...(variant === 'throttled' ? { keyRate: { perSecond: nominal, burst: Math.max(1, Math.round(nominal / 10)) } } : {}),
    });
    const url = `${gateway.url}/v2/models/${SIMULATED_MODEL}/infer`;
    const headers = { ...SIMULATED_REQUEST.headers, ...gateway.authHeaders };
    const load = { url, method: 'POST', headers, body: SIMULATED_REQUEST.body };
    const pid = gateway.pid;

    progress(`${variant}: unloaded, c=${(WORKERS * SLOTS) / 2}`);
    const stopBaseline = sampleRss(pid);
    const unloaded = await httpLoad({ ...load, connections: (WORKERS * SLOTS) / 2, warmupMs: 1000, durationMs: UNLOADED_MS });
    const baselineRss = stopBaseline();

    progress(`${variant}: capacity, c=${WORKERS * SLOTS * 2}`);
    const capacity = await httpLoad({ ...load, connections: WORKERS * SLOTS * 2, warmupMs: 500, durationMs: Math.min(3000, UNLOADED_MS) });
    const capacityPerSecond = capacity.perSecond;
    const offered = Math.round(FACTOR * capacityPerSecond);

    progress(`${variant}: overload, ${offered} req/s offered (${FACTOR}x ${num(capacityPerSecond)}/s) for ${OVERLOAD_MS} ms`);
    const admittedMs: number[] = [];
    const refusedMs: number[] = [];
    const byStatus: Record<string, number> = {};
    const other: Record<string, number> = {};
    let answered = 0;
    let windowFrom = Number.POSITIVE_INFINITY;
    let windowTo = Number.POSITIVE_INFINITY;
    const stopRss = sampleRss(pid);
    const overload = await openLoopLoad({
      ...load,
      maxConnections: OVERLOAD_CONNECTIONS,
      ratePerSecond: offered,
      warmupMs: 1000,
      durationMs: OVERLOAD_MS - 1000,
      serverCpu: cpuClockOf(pid),
      beforeWindow: () => void (windowFrom = performance.now()),
      afterWindow: () => void (windowTo = performance.now()),
      onResponse: (status, latencyMs, atMs) => {
        if (atMs < windowFrom || atMs > windowTo) return;
        answered++;
        if (status >= 200 && status < 300) admittedMs.push(latencyMs);
        else if (status === 503 || status === 429) {
          refusedMs.push(latencyMs);
          byStatus[status] = (byStatus[status] ?? 0) + 1;
        } else {
          const key = status === 0 ? 'transport error' : String(status);
          other[key] = (other[key] ?? 0) + 1;
        }
      },
    });
    const overloadRss = stopRss();

    progress(`${variant}: recovery`);
    const samples: Sample[] = [];
    const recoveryFrom = performance.now();
    await httpLoad({
      ...load,
      connections: (WORKERS * SLOTS) / 2,
      warmupMs: 0,
      durationMs: RECOVERY_MS,
      onResponse: (status, latencyMs, atMs) => {
        if (status >= 200 && status < 300) samples.push({ atMs, latencyMs });
      },
    });
    const series = buckets(samples, recoveryFrom, recoveryFrom + RECOVERY_MS, BUCKET_MS);
    const afterRecovery = rssBytes(pid) / MiB;

    const summary = (xs: number[]): { count: number; p50Ms: number; p99Ms: number; maxMs: number } => ({
      count: xs.length,
      p50Ms: percentile(xs, 50),
      p99Ms: percentile(xs, 99),
      maxMs: xs.length > 0 ? Math.max(...xs) : Number.NaN,
    });
    const seconds = overload.seconds;
    const outcome: Outcome = {
      variant,
      unloaded,
      capacityPerSecond,
      offeredPerSecond: offered,
      answeredPerSecond: answered / seconds,
      admitted: summary(admittedMs),
      refused: { ...summary(refusedMs), byStatus },
      otherErrors: other,
      gatewayCpuCores: (overload.serverCpuMsPerOp * overload.completed) / 1000 / seconds,
      rss: {
        unloadedMiB: Math.max(...baselineRss),
        peakMiB: Math.max(...overloadRss),
        endMiB: overloadRss[overloadRss.length - 1] ?? Number.NaN,
        afterRecoveryMiB: afterRecovery,
      },
      recovery: { ms: recoveryMs(series, RECOVERED_WITHIN * unloaded.latency.p99Ms, BUCKET_MS), series },
    };
    progress(
      `${variant}: admitted ${outcome.admitted.count} (p99 ${ms(outcome.admitted.p99Ms)} ms vs unloaded ${ms(unloaded.latency.p99Ms)} ms), refused ${outcome.refused.count} (p99 ${ms(outcome.refused.p99Ms)} ms), RSS ${num(outcome.rss.unloadedMiB)} → ${num(outcome.rss.peakMiB)} MiB, recovered in ${num(outcome.recovery.ms)} ms`,
    );
    return outcome;
  } finally {
    await gateway?.stop();
    await Promise.all(workers.map((w) => w.stop()));
  }
}

function targets(outcomes: readonly Outcome[]): TargetRow[] {
  const rows: TargetRow[] = [];
  const judged = (name: string, detail: string, value: string, limit: string, pass: boolean | undefined): TargetRow =>
    ({ name, detail, value, limit, result: pass === undefined ? 'n/a' : verdict(pass), ...(pass !== undefined ? { pass } : {}) });
  const finite = (v: number, ok: (v: number) => boolean): boolean | undefined => (Number.isFinite(v) ? ok(v) : undefined);
  for (const o of outcomes) {
    const refusedShare = o.refused.count / (o.admitted.count + o.refused.count + Object.values(o.otherErrors).reduce((a, b) => a + b, 0));
    rows.push({ name: 'share of requests refused (503/429)', detail: o.variant, value: `${(refusedShare * 100).toFixed(1)}%`, limit: '', result: 'info' });
    const refusalLimit = TARGET_REFUSAL_SHARE_OF_DEADLINE * DEADLINE_MS;
    rows.push(judged('refusal p99 (503/429)', `${o.variant}, deadline ${DEADLINE_MS} ms`, `${ms(o.refused.p99Ms)} ms`, `<= ${refusalLimit} ms`, finite(o.refused.p99Ms, (v) => v <= refusalLimit)));
    const admitted = ratioOf(o.admitted.p99Ms, o.unloaded.latency.p99Ms);
    rows.push(judged('admitted p99 ÷ unloaded p99', `${o.variant}: ${ms(o.admitted.p99Ms)} / ${ms(o.unloaded.latency.p99Ms)} ms`, ratio(admitted), `<= ${TARGET_ADMITTED_P99}x`, finite(admitted, (v) => v <= TARGET_ADMITTED_P99)));
    const rss = ratioOf(o.rss.peakMiB, o.rss.unloadedMiB);
    rows.push(judged('gateway peak RSS ÷ unloaded RSS', `${o.variant}: ${num(o.rss.peakMiB)} / ${num(o.rss.unloadedMiB)} MiB`, ratio(rss), `<= ${TARGET_RSS}x`, finite(rss, (v) => v <= TARGET_RSS)));
    rows.push(judged('recovery to unloaded p99', `${o.variant}, p99 per ${BUCKET_MS} ms <= ${RECOVERED_WITHIN}x unloaded`, Number.isFinite(o.recovery.ms) ? `${num(o.recovery.ms)} ms` : 'never', `<= ${TARGET_RECOVERY_MS} ms`, Number.isFinite(o.recovery.ms) ? o.recovery.ms <= TARGET_RECOVERY_MS : false));
  }
  return rows;
}

function method(): string[] {
  return [
    `Workers: ${WORKERS} simulated (infergate worker --simulate-delay-ms ${DELAY_MS} --simulate-concurrency ${SLOTS}): ${WORKERS * SLOTS} slots of ${DELAY_MS} ms = ${(WORKERS * SLOTS * 1000) / DELAY_MS} req/s nominal.`,
    `Gateway: API-key authentication, least-connections, limits.maxInFlightPerWorker ${SLOTS}, limits.queueWaitMs ${QUEUE_WAIT_MS}, timeouts.requestMs ${DEADLINE_MS};`,
    '    "throttled": the key also has a rate plan of the nominal capacity (burst a tenth of it);',
    '    "default-queue-wait": the in-flight cap only, limits.queueWaitMs at its default (50 ms). All variants: limits.adaptiveLifoMs at its default (100 ms);',
    '    "fifo-queue-wait" (only when named in BENCH_OVERLOAD_VARIANTS): as default-queue-wait with limits.adaptiveLifoMs 0 (oldest first always).',
    `Unloaded: closed loop, c=${(WORKERS * SLOTS) / 2}, 1 s warm-up + ${UNLOADED_MS} ms. Capacity: closed loop, c=${WORKERS * SLOTS * 2}, 2xx/s.`,
    `Overload: open loop (evenly spaced arrivals, node:http, at most ${OVERLOAD_CONNECTIONS} keep-alive connections) at ${FACTOR} x capacity for ${OVERLOAD_MS} ms (first 1 s not counted);`,
    '    latency per answer, split by status: 2xx admitted, 503/429 refused, anything else an error.',
    `Recovery: the unloaded load again for ${RECOVERY_MS} ms right after; p99 per ${BUCKET_MS} ms bucket; recovered = from the end of the first`,
    `    bucket after which every bucket's p99 is within ${RECOVERED_WITHIN}x the unloaded p99. RSS: VmRSS of the gateway every ${RSS_EVERY_MS} ms.`,
    'Caveat: load generator, gateway and workers share this machine; the gateway\'s CPU under overload is reported.',
  ];
}

function report(outcomes: readonly Outcome[], background: number): string {
  const out: string[] = ['infergate overload benchmark', '', ...describeMachine(machineInfo())];
  out.push(`source:           ${sourceState()}`, `background:       ${background.toFixed(2)} cores busy before the run started`, '', 'method:', ...method().map((l) => `  ${l}`), '');
  out.push(
    renderTable(
      [
        { title: 'variant', align: 'left' },
        { title: 'unloaded p50/p99 ms' },
        { title: 'capacity req/s' },
        { title: 'offered req/s' },
        { title: 'answered req/s' },
        { title: 'admitted' },
        { title: 'admitted p50/p99 ms' },
        { title: 'refused 503/429' },
        { title: 'refused p50/p99/max ms' },
        { title: 'other errors' },
        { title: 'gateway CPU cores' },
        { title: 'RSS MiB unloaded/peak/after' },
        { title: 'recovery ms' },
      ],
      outcomes.map((o) => [
        o.variant,
        `${ms(o.unloaded.latency.p50Ms)} / ${ms(o.unloaded.latency.p99Ms)}`,
        num(o.capacityPerSecond),
        num(o.offeredPerSecond),
        num(o.answeredPerSecond),
        String(o.admitted.count),
        `${ms(o.admitted.p50Ms)} / ${ms(o.admitted.p99Ms)}`,
        `${o.refused.byStatus['503'] ?? 0} / ${o.refused.byStatus['429'] ?? 0}`,
        `${ms(o.refused.p50Ms)} / ${ms(o.refused.p99Ms)} / ${ms(o.refused.maxMs)}`,
        Object.entries(o.otherErrors).map(([k, v]) => `${k}: ${v}`).join(', ') || '0',
        o.gatewayCpuCores.toFixed(2),
        `${num(o.rss.unloadedMiB)} / ${num(o.rss.peakMiB)} / ${num(o.rss.afterRecoveryMiB)}`,
        Number.isFinite(o.recovery.ms) ? num(o.recovery.ms) : 'never',
      ]),
    ),
    '',
    'targets:',
    renderTargets(targets(outcomes)),
  );
  return out.join('\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  await probeMachine();
  const background = await backgroundLoad();
  progress(`${VARIANTS.length} variant(s), about ${Math.round((VARIANTS.length * (UNLOADED_MS + OVERLOAD_MS + RECOVERY_MS + 9000)) / 1000)} s; background ${background.toFixed(2)} cores`);
  const outcomes: Outcome[] = [];
  for (const variant of VARIANTS) outcomes.push(await runVariant(variant));
  process.stdout.write(`${report(outcomes, background)}\n`);
  await mkdir(dirname(OUT), { recursive: true });
  const settings = { overloadMs: OVERLOAD_MS, unloadedMs: UNLOADED_MS, recoveryMs: RECOVERY_MS, factor: FACTOR, workers: WORKERS, slots: SLOTS, delayMs: DELAY_MS, queueWaitMs: QUEUE_WAIT_MS, deadlineMs: DEADLINE_MS };
  await writeFile(OUT, `${JSON.stringify({ benchmark: 'overload', date: new Date().toISOString(), machine: machineInfo(), source: sourceState(), backgroundCores: background, settings, method: method(), outcomes, targets: targets(outcomes) }, null, 2)}\n`);
  progress(`results written to ${OUT}; done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

await main();
