/**
 * `npm run bench:gateway`: what the gateway costs in front of workers, in one run on one machine,
 * against the same upstreams every time.
 *
 *   1. proxy overhead   a tiny worker-shaped upstream (fixed small V2 JSON answer), two processes of
 *                       it; direct to one of them, through the gateway with each balancing strategy,
 *                       and through NGINX (round-robin, upstream keep-alive) as the reference proxy;
 *                       also the gateway without authentication, and a bare node:http + http-proxy
 *                       proxy (the floor of the gateway's stack); concurrency 1, 16, 64: req/s, p50,
 *                       p99, the proxy's CPU per request.
 *   2. heterogeneous    three upstreams, one 5x slower (2 ms vs 10 ms); through the gateway with each
 *                       strategy: p50/p99 and the share of requests each upstream got. Two upstream
 *                       models: worker-like (one execution slot, FIFO queue, queue depth reported)
 *                       and fixed delay (every request waits the same, any number in parallel).
 *   3. real model       a worker serving iris, binary tensor extension: direct vs through the gateway.
 *   4. auth             part 1's upstreams behind one gateway per way of authenticating: none, API key,
 *                       JWT HS256, JWT RS256, API key + Redis limiter (a redis-server started here);
 *                       concurrency 1, 16, 64, cells interleaved across the variants.
 *   5. equal rate       NGINX, the floor and the gateway (p2c) at the same fixed request rates (open
 *                       loop): CPU per request when every proxy does the same work per second, where
 *                       the closed-loop cells compare each proxy at its own maximum. Information only.
 *
 * Then the targets, with PASS/FAIL: gateway CPU per request <= 4.5x NGINX's without authentication
 * (balancing, breakers, metrics, access log), <= 5x with an API key and the Redis limiter; added p50 latency at
 * concurrency 1 <= 0.5 ms; heterogeneous (worker-like): p2c and peak-ewma p99 <= 0.5x round-robin's;
 * authentication and throttling cost <= 15% of throughput at the top concurrency against none.
 * Results also go to bench/gateway.raw.json (git-ignored). See docs/performance.md, "Gateway benchmark".
 *
 * Environment knobs (all optional; the default run is the one that counts):
 *   BENCH_WARMUP_MS / BENCH_DURATION_MS  unmeasured warm-up and measured window per cell (750 / 2500)
 *   BENCH_PREWARM_MS        unmeasured load on each freshly started proxy before its first cell (5000)
 *   BENCH_CONCURRENCY       proxy-overhead concurrencies (1,16,64)
 *   BENCH_HETERO_CONCURRENCY  heterogeneous scenario's concurrency (24)
 *   BENCH_HETERO_MS         fast,slow service times in ms (2,10)
 *   BENCH_STRATEGIES        subset of the strategies (all six)
 *   BENCH_PARTS             subset of overhead,hetero,model,auth,rate (all)
 *   BENCH_RATES             the equal-rate part's request rates, per second (1000,4000)
 *   BENCH_AUTH_CONCURRENCY  concurrencies of the auth part (1,16,64)
 *   BENCH_RETRIES           reruns of noisy cells allowed in all (8)
 *   BENCH_NGINX             nginx binary (/usr/sbin/nginx); the NGINX rows are skipped when it is missing
 *   BENCH_NGINX_KEEPALIVE   NGINX upstream `keepalive` (64)
 *   BENCH_KEY_ROWS / BENCH_FLOOR_ROWS  0 leaves out the "API key" gateway rows / the node:http+http-proxy floor rows
 *   BENCH_LOADGEN           wrk or autocannon (default: wrk when installed, else autocannon)
 *   BENCH_OUT               JSON output (bench/gateway.raw.json)
 *   BENCH_GATEWAY_PROF      directory: run every gateway (and the floor proxy) with --cpu-prof there and
 *                           record the measured windows; summarize with `tsx test/bench/profile-summary.ts <dir>`
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DEMO_MODELS, REPO_ROOT, startWorker, type RunningProcess } from '../helpers/processes.ts';
import { startBenchUpstream, type BenchUpstream } from './lib/bench-upstream.ts';
import { cpuClockOf, cpuClockOfAll, type CpuClock } from './lib/cpu.ts';
import { countLines, startGatewayProcess, type GatewayAuth, type GatewayProcess, type GatewayStartOptions } from './lib/gateway-process.ts';
import { startRedis, type RedisFixture } from '../helpers/redis.ts';
import { pidsNamed } from './lib/cpu.ts';
import { describeGenerator, httpLoad, openLoopLoad, preferredGenerator, type CellResult } from './lib/load.ts';
import { describeMachine, machineInfo, packageVersions, sourceState, probeMachine } from './lib/machine.ts';
import { nginxAvailable, nginxVersion, NGINX_BIN, startNginx, type NginxProcess } from './lib/nginx.ts';
import { backgroundLoad, isNoisy, quietest, type RetryPolicy } from './lib/noise.ts';
import { startProxyFloor, type ProxyFloor } from './lib/proxy-floor.ts';
import type { ProfileWindow } from './lib/profiled-worker.ts';
import { createRepository, type TempRepository } from './lib/repository.ts';
import { ms, num, ratio, renderTable, renderTargets, verdict, type TargetRow } from './lib/table.ts';
import { binaryRequest, checkOnce, seededFloats, type PreparedRequest } from './lib/v2-payload.ts';

// ---------------------------------------------------------------------------------------------
// Configuration

const env = process.env;
const list = (value: string | undefined, fallback: string): string[] => (value ?? fallback).split(',').map((s) => s.trim()).filter((s) => s !== '');
const STRATEGIES_ALL = ['round-robin', 'random', 'least-connections', 'p2c', 'peak-ewma', 'weighted-round-robin'] as const;
const STRATEGIES = STRATEGIES_ALL.filter((s) => list(env.BENCH_STRATEGIES, STRATEGIES_ALL.join(',')).includes(s));
const PARTS = list(env.BENCH_PARTS, 'overhead,hetero,model,auth,rate');
const RATES = list(env.BENCH_RATES, '1000,4000').map(Number);
/** Connections the open-loop client may open in the equal-rate part (a request due while all are busy waits). */
const RATE_CONNECTIONS = 64;
const WARMUP_MS = Number(env.BENCH_WARMUP_MS ?? 750);
const DURATION_MS = Number(env.BENCH_DURATION_MS ?? 2500);
const CONCURRENCY = list(env.BENCH_CONCURRENCY, '1,16,64').map(Number);
const HETERO_CONCURRENCY = Number(env.BENCH_HETERO_CONCURRENCY ?? 24);
const [FAST_MS = 2, SLOW_MS = 10] = list(env.BENCH_HETERO_MS, '2,10').map(Number);
/** The heterogeneous cells get a longer warm-up: queues and latency estimates must settle first. */
const HETERO_WARMUP_MS = Math.max(WARMUP_MS, 2000);
/** Unmeasured load on a freshly started proxy before its first cell, so its JIT has settled. */
const PREWARM_MS = Number(env.BENCH_PREWARM_MS ?? 5000);
const MODEL_CONCURRENCY = [1, 16];
/** The measured cells' load generator; wrk's windows are whole seconds (see lib/wrk.ts). */
const LOADGEN = preferredGenerator();
/**
 * Variant label of the proxy-overhead rows measured with an API key. The strategy rows run without
 * authentication (--allow-anonymous): issue 3's target is for balancing, breakers, metrics and the
 * access log; authentication has its own (5x, with the Redis limiter, from part 4).
 */
const WITH_KEY = 'API key';
const KEY_ROWS = env.BENCH_KEY_ROWS !== '0';
/** The bare node:http + http-proxy reference rows (BENCH_FLOOR_ROWS=0 leaves them out). */
const FLOOR_ROWS = env.BENCH_FLOOR_ROWS !== '0';
const OUT = env.BENCH_OUT ?? join(REPO_ROOT, 'bench', 'gateway.raw.json');
const PROFILE_DIR = env.BENCH_GATEWAY_PROF;
const PROFILE_ARGS = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, '--cpu-prof-interval=200'] : [];
const NOISY_CORES = 0.25;
/** NGINX `keepalive` (idle upstream connections cached per worker process). */
const NGINX_KEEPALIVE = Number(env.BENCH_NGINX_KEEPALIVE ?? 64);
const retryPolicy: RetryPolicy = {
  noisyCores: NOISY_CORES,
  perCell: 2,
  budget: { left: Number(env.BENCH_RETRIES ?? 8) },
  log: (line) => progress(line),
};

const TARGET_CPU_VS_NGINX = 4.5;
/** Issue 3's allowance once authentication and Redis throttling are on. */
const TARGET_CPU_VS_NGINX_WITH_AUTH = 5;
const TARGET_ADDED_P50_MS = 0.5;
const TARGET_P99_VS_RR = 0.5;
const JUDGED_STRATEGIES = ['p2c', 'peak-ewma'];

/** The proxy-overhead request: a batch-1 FP32 [1,4] V2 JSON body (the upstream ignores it). */
const TINY_REQUEST: PreparedRequest = {
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(JSON.stringify({ inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] })),
};

const progress = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);

// ---------------------------------------------------------------------------------------------
// Cells

type Part = 'overhead' | 'hetero' | 'model' | 'auth' | 'rate';

interface Cell {
  part: Part;
  /** 'direct', 'gateway', 'floor' (bare node:http + http-proxy), 'nginx'. */
  path: 'direct' | 'gateway' | 'floor' | 'nginx';
  /** Gateway strategy, or '' for direct / nginx. */
  strategy: string;
  /** Heterogeneous variant ('worker-like' or 'fixed-delay'), model name for the model part, '' otherwise. */
  variant: string;
  /** Closed loop: connections, one request each; 0 for an open-loop cell (see ratePerSecond). */
  concurrency: number;
  /** Open loop (the equal-rate part): requests leave at this rate whatever the answers do. */
  ratePerSecond?: number;
  result: CellResult;
  /** CPU of the proxy (gateway, or nginx master + worker) per completed request, µs; NaN for direct. */
  proxyCpuUs: number;
  /** CPU of the upstream processes (or the worker) per completed request, µs. */
  upstreamCpuUs: number;
  /** Access-log lines the proxy wrote in the window per completed request; NaN where not applicable. */
  logLinesPerRequest: number;
  /** Share of the window's inference requests each upstream answered, by upstream id. */
  shares?: Record<string, number>;
  /** TCP connections the upstreams accepted during the window (a proxy that reuses its connections opens none). */
  upstreamConnections?: number;
  /** CPU of a helper process on the request path (Redis for the throttled variant) per completed request, µs. */
  sideCpuUs?: number;
  /**
   * NGINX's CPU per request in a cell run right after this one, against the same upstreams at the
   * same concurrency: the denominator of this cell's "÷ NGINX" ratio. Pairing keeps a change in the
   * machine's speed between numerator and denominator as small as it can be (on a shared VM the
   * same cell varies by ±20% from one minute to the next).
   */
  nginxPairUs?: number;
  attempts: number;
}

const cells: Cell[] = [];
/** The NGINX cells measured as pairs (see Cell.nginxPairUs), for the JSON. */
const nginxPairs: Cell[] = [];
const profileWindows: ProfileWindow[] = [];
let background = Number.NaN;
let nginxSkipped = '';
let nginxConfText = '';

const label = (c: Pick<Cell, 'part' | 'path' | 'strategy' | 'variant' | 'concurrency' | 'ratePerSecond'>): string =>
  `${c.part} ${c.variant ? `${c.variant} ` : ''}${c.path}${c.strategy ? ` ${c.strategy}` : ''} ${c.ratePerSecond !== undefined ? `${c.ratePerSecond}/s` : `c=${c.concurrency}`}`;

function record(cell: Cell): void {
  cells.push(cell);
  const r = cell.result;
  const shares = cell.shares ? `, shares ${Object.values(cell.shares).map((s) => `${(s * 100).toFixed(0)}%`).join('/')}` : '';
  progress(
    `${label(cell)}: ${num(r.perSecond)}/s, p50 ${ms(r.latency.p50Ms)} ms, p99 ${ms(r.latency.p99Ms)} ms, proxy CPU ${num(cell.proxyCpuUs)} µs/req${cell.nginxPairUs !== undefined ? ` (NGINX pair ${num(cell.nginxPairUs)})` : ''}, other cores ${r.otherCores.toFixed(2)}, errors ${r.errors}${shares}${cell.attempts > 1 ? ` (${cell.attempts} attempts)` : ''}`,
  );
}

interface Target {
  /** URL of the inference endpoint. */
  url: string;
  request: PreparedRequest;
  /** The process whose CPU is the proxy's (undefined: direct, no proxy). */
  proxyCpu?: CpuClock;
  /** The processes behind (upstreams or the worker). With no proxy, the first one is the "server". */
  upstreamCpu: CpuClock;
  /** Access-log file and a way to count its lines in a byte range. */
  log?: { size(): number; count(from: number, to: number): number; truncate(): void };
  gateway?: GatewayProcess;
  /** A profiled proxy process whose measured windows go to <BENCH_GATEWAY_PROF>/windows.json. */
  profiled?: { pid: number; spawnedAt: number };
  upstreams?: BenchUpstream[];
  /** A helper process the proxy uses per request (Redis): its CPU is reported apart, not as noise. */
  sideCpu?: CpuClock;
}

async function measureCell(meta: Omit<Cell, 'result' | 'proxyCpuUs' | 'upstreamCpuUs' | 'logLinesPerRequest' | 'attempts' | 'shares' | 'sideCpuUs'>, target: Target, warmupMs = WARMUP_MS): Promise<Cell> {
  const run = async (): Promise<Cell> => {
    let logFrom = 0;
    let logTo = 0;
    let countsBefore: Array<{ infer: number; connections: number }> = [];
    let countsAfter: Array<{ infer: number; connections: number }> = [];
    let windowFrom = 0;
    let sideFrom = 0;
    let sideTo = 0;
    const side = target.sideCpu;
    target.log?.truncate();
    const window = {
      url: target.url,
      method: 'POST',
      headers: target.request.headers,
      body: target.request.body,
      warmupMs,
      durationMs: DURATION_MS,
      // The proxy is the "server" whose CPU is measured; with no proxy, the upstreams are.
      serverCpu: target.proxyCpu ?? target.upstreamCpu,
      ...(target.proxyCpu ? { accountedCpu: side ? () => target.upstreamCpu() + side() : target.upstreamCpu } : {}),
      beforeWindow: async () => {
        if (target.upstreams) countsBefore = await Promise.all(target.upstreams.map((u) => u.counts()));
        logFrom = target.log?.size() ?? 0;
        sideFrom = side?.() ?? 0;
        windowFrom = performance.now();
      },
      afterWindow: async () => {
        const windowTo = performance.now();
        sideTo = side?.() ?? 0;
        logTo = target.log?.size() ?? 0;
        if (target.upstreams) countsAfter = await Promise.all(target.upstreams.map((u) => u.counts()));
        const profiled = target.profiled ?? target.gateway;
        if (profiled && PROFILE_DIR) {
          profileWindows.push({ label: label(meta), pid: profiled.pid, fromMs: windowFrom - profiled.spawnedAt, toMs: windowTo - profiled.spawnedAt });
        }
      },
    };
    const result = meta.ratePerSecond === undefined
      ? await httpLoad({ ...window, connections: meta.concurrency, generator: LOADGEN })
      : await openLoopLoad({ ...window, ratePerSecond: meta.ratePerSecond, maxConnections: RATE_CONNECTIONS });
    const perOpUs = (cores: number): number => (result.completed > 0 ? (cores * result.seconds * 1e6) / result.completed : Number.NaN);
    const proxyCpuUs = target.proxyCpu ? result.serverCpuMsPerOp * 1000 : Number.NaN;
    const sideCpuUs = result.completed > 0 ? ((sideTo - sideFrom) * 1000) / result.completed : Number.NaN;
    const upstreamCpuUs = target.proxyCpu ? perOpUs(result.accountedCores) - (side ? sideCpuUs : 0) : result.serverCpuMsPerOp * 1000;
    const logLines = target.log ? target.log.count(logFrom, logTo) : Number.NaN;
    let shares: Record<string, number> | undefined;
    let upstreamConnections: number | undefined;
    if (target.upstreams && countsAfter.length > 0) {
      const deltas = countsAfter.map((a, i) => a.infer - (countsBefore[i]?.infer ?? 0));
      const total = deltas.reduce((a, b) => a + b, 0);
      shares = Object.fromEntries(target.upstreams.map((u, i) => [u.id, total > 0 ? deltas[i]! / total : Number.NaN]));
      upstreamConnections = countsAfter.reduce((sum, a, i) => sum + a.connections - (countsBefore[i]?.connections ?? 0), 0);
    }
    return {
      ...meta,
      result,
      proxyCpuUs,
      upstreamCpuUs,
      logLinesPerRequest: result.completed > 0 ? logLines / result.completed : Number.NaN,
      ...(shares ? { shares } : {}),
      ...(upstreamConnections !== undefined ? { upstreamConnections } : {}),
      ...(side ? { sideCpuUs } : {}),
      attempts: 1,
    };
  };
  return quietest(run, (c) => c.result, retryPolicy, label(meta));
}

/** The request as a client of this gateway sends it: with its credential. */
const authed = (gateway: GatewayProcess, request: PreparedRequest): PreparedRequest => ({ headers: { ...request.headers, ...gateway.authHeaders }, body: request.body });

/** Loads a freshly started proxy for PREWARM_MS at concurrency 16, unmeasured. */
async function prewarm(target: Target): Promise<void> {
  if (PREWARM_MS <= 0) return;
  await httpLoad({ url: target.url, connections: 16, method: 'POST', headers: target.request.headers, body: target.request.body, warmupMs: PREWARM_MS, durationMs: 1 });
}

function gatewayTarget(gateway: GatewayProcess, path: string, request: PreparedRequest, upstreamCpu: CpuClock, upstreams?: BenchUpstream[]): Target {
  return {
    url: `${gateway.url}${path}`,
    request: authed(gateway, request),
    proxyCpu: cpuClockOf(gateway.pid),
    upstreamCpu,
    log: {
      size: () => gateway.logSize(),
      count: (from, to) => gateway.countLogLines(from, to).accessLines,
      truncate: () => gateway.truncateLog(),
    },
    gateway,
    ...(upstreams ? { upstreams } : {}),
  };
}

async function startGateway(workers: string[], strategy: string, auth: GatewayAuth = 'api-key', extra: Pick<GatewayStartOptions, 'config' | 'redisUrl'> = {}): Promise<GatewayProcess> {
  if (PROFILE_DIR) await mkdir(PROFILE_DIR, { recursive: true });
  return startGatewayProcess({
    workers,
    strategy,
    auth,
    ...extra,
    ...(PROFILE_DIR ? { nodeArgs: PROFILE_ARGS } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// NGINX, the reference proxy

interface NginxReference {
  target: Target;
  stop(): Promise<void>;
}

/** NGINX in front of `upstreams`, checked once and prewarmed; undefined (with a note) when it is missing or fails. */
async function startNginxReference(upstreams: BenchUpstream[], path: string, upstreamCpu: CpuClock): Promise<NginxReference | undefined> {
  if (!nginxAvailable()) {
    nginxSkipped = `${NGINX_BIN} not found: NGINX rows skipped (Debian: apt-get install -y nginx)`;
    progress(nginxSkipped);
    return undefined;
  }
  let nginx: NginxProcess | undefined;
  try {
    nginx = await startNginx({ upstreams: upstreams.map((u) => `127.0.0.1:${u.port}`), keepalive: NGINX_KEEPALIVE, accessLog: true });
    nginxConfText = nginx.config;
    await checkOnce(`${nginx.url}${path}`, TINY_REQUEST, false);
    const proxy = nginx;
    const pids = proxy.pids();
    const target: Target = {
      url: `${proxy.url}${path}`,
      request: TINY_REQUEST,
      proxyCpu: cpuClockOfAll(() => pids),
      upstreamCpu,
      log: { size: () => proxy.logSize(), count: (from, to) => countLines(proxy.accessLogFile, from, to).lines, truncate: () => proxy.truncateLog() },
      upstreams,
    };
    await prewarm(target);
    return { target, stop: () => proxy.stop() };
  } catch (err) {
    nginxSkipped = `NGINX failed: ${(err as Error).message.split('\n')[0]}`;
    progress(nginxSkipped);
    await nginx?.stop();
    return undefined;
  }
}

/** Measures an NGINX cell right after `cell` (same part and concurrency) and records both. */
async function recordPaired(cell: Cell, nginx: NginxReference | undefined): Promise<void> {
  if (nginx !== undefined) {
    const pair = await measureCell({ part: cell.part, path: 'nginx', strategy: 'round-robin', variant: `pair of ${label(cell)}`, concurrency: cell.concurrency }, nginx.target);
    nginxPairs.push(pair);
    cell.nginxPairUs = pair.proxyCpuUs;
  }
  record(cell);
}

// ---------------------------------------------------------------------------------------------
// 1. Proxy overhead

async function benchOverhead(): Promise<void> {
  const upstreams = [await startBenchUpstream({ id: 'tiny-a' }), await startBenchUpstream({ id: 'tiny-b' })];
  const upstreamCpu = cpuClockOfAll(() => upstreams.map((u) => u.pid));
  const path = '/v2/models/echo/infer';
  let nginx: NginxReference | undefined;
  try {
    answerBytes = await checkOnce(`${upstreams[0]!.url}${path}`, TINY_REQUEST, false);
    // Direct: to one upstream (its CPU is the "upstream" figure).
    const direct: Target = { url: `${upstreams[0]!.url}${path}`, request: TINY_REQUEST, upstreamCpu, upstreams };
    for (const c of CONCURRENCY) record(await measureCell({ part: 'overhead', path: 'direct', strategy: '', variant: '', concurrency: c }, direct));

    // NGINX runs from here on: each gateway and floor cell is followed by an NGINX cell (its pair).
    nginx = await startNginxReference(upstreams, path, upstreamCpu);

    // The gateway: one process, the strategy switched through the admin API between cells.
    progress('starting the gateway in front of 2 tiny upstreams');
    const gateway = await startGateway(upstreams.map((u) => u.url), STRATEGIES[0] ?? 'p2c', 'anonymous');
    try {
      await checkOnce(`${gateway.url}${path}`, authed(gateway, TINY_REQUEST), false);
      const target = gatewayTarget(gateway, path, TINY_REQUEST, upstreamCpu, upstreams);
      await prewarm(target);
      for (const strategy of STRATEGIES) {
        await gateway.setStrategy(strategy);
        for (const c of CONCURRENCY) await recordPaired(await measureCell({ part: 'overhead', path: 'gateway', strategy, variant: '', concurrency: c }, target), nginx);
      }
    } finally {
      await gateway.stop(PROFILE_DIR ? 30_000 : 5000);
    }
    // The same with an API key (Authorization: Bearer), p2c: what the key check costs.
    if (STRATEGIES.includes('p2c') && KEY_ROWS) {
      const keyed = await startGateway(upstreams.map((u) => u.url), 'p2c', 'api-key');
      try {
        await checkOnce(`${keyed.url}${path}`, authed(keyed, TINY_REQUEST), false);
        const target = gatewayTarget(keyed, path, TINY_REQUEST, upstreamCpu, upstreams);
        await prewarm(target);
        for (const c of CONCURRENCY) await recordPaired(await measureCell({ part: 'overhead', path: 'gateway', strategy: 'p2c', variant: WITH_KEY, concurrency: c }, target), nginx);
      } finally {
        await keyed.stop(PROFILE_DIR ? 30_000 : 5000);
      }
    }

    // The floor: node:http + http-proxy and nothing else, same upstreams.
    if (FLOOR_ROWS) {
      let floor: ProxyFloor | undefined;
      try {
        floor = await startProxyFloor(upstreams.map((u) => u.url), PROFILE_DIR ? PROFILE_ARGS : []);
        await checkOnce(`${floor.url}${path}`, TINY_REQUEST, false);
        const target: Target = { url: `${floor.url}${path}`, request: TINY_REQUEST, proxyCpu: cpuClockOf(floor.pid), upstreamCpu, upstreams, profiled: floor };
        await prewarm(target);
        for (const c of CONCURRENCY) await recordPaired(await measureCell({ part: 'overhead', path: 'floor', strategy: 'round-robin', variant: '', concurrency: c }, target), nginx);
      } finally {
        await floor?.stop();
      }
    }

    // NGINX's own rows (its added latency at c=1 is a reference row).
    if (nginx !== undefined) {
      for (const c of CONCURRENCY) record(await measureCell({ part: 'overhead', path: 'nginx', strategy: 'round-robin', variant: '', concurrency: c }, nginx.target));
    }
  } finally {
    await nginx?.stop();
    await Promise.all(upstreams.map((u) => u.stop()));
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Heterogeneous upstreams

const HETERO_VARIANTS = [
  { name: 'worker-like', slots: 1, judged: true },
  { name: 'fixed-delay', slots: 0, judged: false },
] as const;

async function benchHetero(): Promise<void> {
  for (const variant of HETERO_VARIANTS) {
    const upstreams = [
      await startBenchUpstream({ id: `fast-1 (${FAST_MS} ms)`, serviceMs: FAST_MS, slots: variant.slots }),
      await startBenchUpstream({ id: `fast-2 (${FAST_MS} ms)`, serviceMs: FAST_MS, slots: variant.slots }),
      await startBenchUpstream({ id: `slow (${SLOW_MS} ms)`, serviceMs: SLOW_MS, slots: variant.slots }),
    ];
    const upstreamCpu = cpuClockOfAll(() => upstreams.map((u) => u.pid));
    try {
      // A fresh gateway per strategy: latency estimates and turns from the previous cell would otherwise carry over.
      for (const strategy of STRATEGIES) {
        const gateway = await startGateway(upstreams.map((u) => u.url), strategy);
        try {
          const target = gatewayTarget(gateway, '/v2/models/echo/infer', TINY_REQUEST, upstreamCpu, upstreams);
          record(await measureCell({ part: 'hetero', path: 'gateway', strategy, variant: variant.name, concurrency: HETERO_CONCURRENCY }, target, HETERO_WARMUP_MS));
        } finally {
          await gateway.stop(PROFILE_DIR ? 30_000 : 5000);
        }
      }
    } finally {
      await Promise.all(upstreams.map((u) => u.stop()));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 3. A real model

async function benchModel(): Promise<void> {
  const modelPath = join(DEMO_MODELS, 'iris', '1', 'model.onnx');
  if (!existsSync(modelPath)) {
    progress(`missing ${modelPath}: run \`npm run models\` first; the real-model part is skipped`);
    return;
  }
  const config = JSON.parse(await readFile(join(DEMO_MODELS, 'iris', 'config.json'), 'utf8')) as Record<string, unknown>;
  let repo: TempRepository | undefined;
  let worker: RunningProcess | undefined;
  let gateway: GatewayProcess | undefined;
  try {
    repo = await createRepository(DEMO_MODELS, [{ name: 'iris', config }], 'gateway');
    progress('starting an iris worker');
    worker = await startWorker(undefined, repo.dir);
    const workerPid = worker.child.pid;
    if (workerPid === undefined) throw new Error('worker has no pid');
    const request = binaryRequest([{ name: 'features', shape: [1, 4], data: seededFloats(4) }]);
    const path = '/v2/models/iris/infer';
    await checkOnce(`${worker.url}${path}`, request, true);
    const workerCpu = cpuClockOf(workerPid);
    const direct: Target = { url: `${worker.url}${path}`, request, upstreamCpu: workerCpu };
    progress('starting the gateway in front of the iris worker');
    gateway = await startGateway([worker.url], 'p2c');
    await checkOnce(`${gateway.url}${path}`, authed(gateway, request), true);
    const through = gatewayTarget(gateway, path, request, workerCpu);
    await prewarm(through);
    for (const c of MODEL_CONCURRENCY) {
      record(await measureCell({ part: 'model', path: 'direct', strategy: '', variant: 'iris binary', concurrency: c }, direct));
      record(await measureCell({ part: 'model', path: 'gateway', strategy: 'p2c', variant: 'iris binary', concurrency: c }, through));
    }
  } finally {
    await gateway?.stop(PROFILE_DIR ? 30_000 : 5000);
    await worker?.stop();
    await repo?.remove();
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Authentication and throttling

/**
 * The same two tiny upstreams behind one gateway per way of authenticating (p2c). "none" is
 * --allow-anonymous with throttling off; the API key without a rate of its own is authentication
 * only; the Redis variant keeps the key in Redis and gives it a rate no benchmark reaches, so every
 * request pays the EVALSHA round trip of the token bucket and none is refused.
 */
const REDIS_VARIANT = 'API key + Redis limiter';
const AUTH_VARIANTS: ReadonlyArray<{ name: string; auth: GatewayAuth; config?: Record<string, unknown> }> = [
  { name: 'none', auth: 'anonymous', config: { throttle: { enabled: false } } },
  { name: 'API key', auth: 'api-key' },
  { name: 'JWT HS256', auth: 'jwt-hs256' },
  { name: 'JWT RS256', auth: 'jwt-rs256' },
  { name: REDIS_VARIANT, auth: 'api-key+redis' },
];
const AUTH_CONCURRENCY = list(env.BENCH_AUTH_CONCURRENCY, '1,16,64').map(Number);
/** Issue 4: authentication and throttling together cost at most this share of throughput at the top concurrency. */
const TARGET_AUTH_COST = 0.15;

async function benchAuth(): Promise<void> {
  const upstreams = [await startBenchUpstream({ id: 'tiny-a' }), await startBenchUpstream({ id: 'tiny-b' })];
  const upstreamCpu = cpuClockOfAll(() => upstreams.map((u) => u.pid));
  const path = '/v2/models/echo/infer';
  let redis: RedisFixture | undefined;
  let nginx: NginxReference | undefined;
  const gateways: GatewayProcess[] = [];
  try {
    answerBytes = await checkOnce(`${upstreams[0]!.url}${path}`, TINY_REQUEST, false);
    redis = await startRedis(undefined, { spawn: true });
    redisVersion = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).match(/v=(\S+)/)?.[1] ?? 'unknown';
    const redisPids = pidsNamed(process.pid, 'redis-server');
    // Every variant's gateway runs the whole time and the cells go round the variants at each
    // concurrency, so a change in the machine's load hits them alike rather than one variant.
    const targets: Array<{ name: string; target: Target }> = [];
    for (const variant of AUTH_VARIANTS) {
      progress(`starting a gateway with authentication: ${variant.name}`);
      const gateway = await startGateway(upstreams.map((u) => u.url), 'p2c', variant.auth, { ...(variant.config ? { config: variant.config } : {}), redisUrl: redis.url });
      gateways.push(gateway);
      await checkOnce(`${gateway.url}${path}`, authed(gateway, TINY_REQUEST), false);
      const target = gatewayTarget(gateway, path, TINY_REQUEST, upstreamCpu, upstreams);
      if (variant.auth === 'api-key+redis') target.sideCpu = cpuClockOfAll(() => redisPids);
      await prewarm(target);
      targets.push({ name: variant.name, target });
    }
    // The judged variant (API key + Redis limiter) gets its NGINX pair, like part 1's cells.
    nginx = await startNginxReference(upstreams, path, upstreamCpu);
    for (const c of AUTH_CONCURRENCY) {
      for (const { name, target } of targets) {
        const cell = await measureCell({ part: 'auth', path: 'gateway', strategy: 'p2c', variant: name, concurrency: c }, target);
        if (name === REDIS_VARIANT) await recordPaired(cell, nginx);
        else record(cell);
      }
    }
  } finally {
    await nginx?.stop();
    for (const gateway of gateways) await gateway.stop(PROFILE_DIR ? 30_000 : 5000);
    await redis?.stop();
    await Promise.all(upstreams.map((u) => u.stop()));
  }
}

let redisVersion = '';

/** Throughput cost of a variant against "none" at the same concurrency: 1 − variant req/s ÷ none req/s. */
function authCost(variant: string, concurrency: number): number {
  const none = find('auth', 'gateway', 'p2c', concurrency, 'none')?.result.perSecond ?? Number.NaN;
  return 1 - (find('auth', 'gateway', 'p2c', concurrency, variant)?.result.perSecond ?? Number.NaN) / none;
}

// ---------------------------------------------------------------------------------------------
// 5. Equal rate

/**
 * NGINX, the floor and the gateway at the same request rates, open loop. The closed-loop cells let
 * each proxy run flat out, so NGINX is measured at five times the gateway's rate: its peers are
 * busy, each epoll wake-up finds several requests, and a write seldom has to wake a sleeping
 * process. At one rate every proxy meets the same arrivals and the same sleeping peers.
 */
async function benchRate(): Promise<void> {
  const upstreams = [await startBenchUpstream({ id: 'tiny-a' }), await startBenchUpstream({ id: 'tiny-b' })];
  const upstreamCpu = cpuClockOfAll(() => upstreams.map((u) => u.pid));
  const urls = upstreams.map((u) => u.url);
  const path = '/v2/models/echo/infer';
  let nginx: NginxReference | undefined;
  let gateway: GatewayProcess | undefined;
  let floor: ProxyFloor | undefined;
  try {
    nginx = await startNginxReference(upstreams, path, upstreamCpu);
    progress('starting a gateway (p2c) and the floor for the equal-rate cells');
    gateway = await startGateway(urls, 'p2c', 'anonymous');
    floor = await startProxyFloor(urls);
    const proxies: Array<[Cell['path'], string, Target]> = [
      ['floor', 'round-robin', { url: `${floor.url}${path}`, request: TINY_REQUEST, proxyCpu: cpuClockOf(floor.pid), upstreamCpu, upstreams }],
      ['gateway', 'p2c', gatewayTarget(gateway, path, TINY_REQUEST, upstreamCpu, upstreams)],
    ];
    if (nginx !== undefined) proxies.unshift(['nginx', 'round-robin', nginx.target]);
    for (const [, , target] of proxies.slice(nginx === undefined ? 0 : 1)) await prewarm(target);
    for (const rate of RATES) {
      for (const [path, strategy, target] of proxies) record(await measureCell({ part: 'rate', path, strategy, variant: '', concurrency: 0, ratePerSecond: rate }, target));
    }
  } finally {
    await gateway?.stop();
    await floor?.stop();
    await nginx?.stop();
    await Promise.all(upstreams.map((u) => u.stop()));
  }
}

// ---------------------------------------------------------------------------------------------
// Targets


const find = (part: Part, path: Cell['path'], strategy: string, concurrency: number, variant = ''): Cell | undefined =>
  cells.find((c) => c.part === part && c.path === path && c.strategy === strategy && c.concurrency === concurrency && c.variant === variant);

const findAtRate = (path: Cell['path'], rate: number): Cell | undefined => cells.find((c) => c.part === 'rate' && c.path === path && c.ratePerSecond === rate);
/** CPU per request of `path` ÷ NGINX's at the same fixed rate (part 5). */
const vsNginxAtRate = (path: Cell['path'], rate: number): number => (findAtRate(path, rate)?.proxyCpuUs ?? Number.NaN) / (findAtRate('nginx', rate)?.proxyCpuUs ?? Number.NaN);

function targetRows(): TargetRow[] {
  const rows: TargetRow[] = [];
  // CPU per request vs NGINX, per strategy, all concurrencies in one row.
  // Each cell against its own NGINX pair; part 1's NGINX row when it has none (an older raw file).
  const nginxAt = (c: number): number => find('overhead', 'nginx', 'round-robin', c)?.proxyCpuUs ?? Number.NaN;
  const vsNginx = (cell: Cell | undefined, c: number): number => (cell?.proxyCpuUs ?? Number.NaN) / (cell?.nginxPairUs ?? nginxAt(c));
  for (const strategy of STRATEGIES) {
    const values = CONCURRENCY.map((c) => vsNginx(find('overhead', 'gateway', strategy, c), c));
    const judged = values.filter(Number.isFinite);
    const pass = judged.length === 0 ? undefined : judged.every((v) => v <= TARGET_CPU_VS_NGINX);
    rows.push({
      name: 'gateway CPU/req ÷ NGINX CPU/req',
      detail: `${strategy}, c=${CONCURRENCY.join('/')}`,
      value: values.map(ratio).join(' / '),
      limit: `<= ${TARGET_CPU_VS_NGINX}x`,
      result: judged.length === 0 ? 'n/a' : values.map((v) => (Number.isFinite(v) ? verdict(v <= TARGET_CPU_VS_NGINX) : '-')).join('/'),
      ...(pass !== undefined ? { pass } : {}),
    });
  }
  const keyed = CONCURRENCY.map((c) => vsNginx(find('overhead', 'gateway', 'p2c', c, WITH_KEY), c));
  if (keyed.some(Number.isFinite)) {
    rows.push({ name: 'gateway CPU/req ÷ NGINX CPU/req', detail: `p2c ${WITH_KEY}, c=${CONCURRENCY.join('/')}`, value: keyed.map(ratio).join(' / '), limit: '', result: 'info' });
  }
  // With authentication and Redis throttling (part 4's gateway), against its NGINX pair.
  const limited = AUTH_CONCURRENCY.map((c) => vsNginx(find('auth', 'gateway', 'p2c', c, REDIS_VARIANT), c));
  const limitedJudged = limited.filter(Number.isFinite);
  if (limitedJudged.length > 0) {
    rows.push({
      name: 'gateway CPU/req ÷ NGINX CPU/req',
      detail: `p2c ${REDIS_VARIANT}, c=${AUTH_CONCURRENCY.join('/')}`,
      value: limited.map(ratio).join(' / '),
      limit: `<= ${TARGET_CPU_VS_NGINX_WITH_AUTH}x`,
      result: limited.map((v) => (Number.isFinite(v) ? verdict(v <= TARGET_CPU_VS_NGINX_WITH_AUTH) : '-')).join('/'),
      pass: limitedJudged.every((v) => v <= TARGET_CPU_VS_NGINX_WITH_AUTH),
    });
  }
  const floor = CONCURRENCY.map((c) => vsNginx(find('overhead', 'floor', 'round-robin', c), c));
  if (floor.some(Number.isFinite)) {
    rows.push({ name: 'floor CPU/req ÷ NGINX CPU/req', detail: `node:http+http-proxy, c=${CONCURRENCY.join('/')}`, value: floor.map(ratio).join(' / '), limit: '', result: 'info' });
    const above = CONCURRENCY.map((c) => (find('overhead', 'gateway', 'p2c', c)?.proxyCpuUs ?? Number.NaN) - (find('overhead', 'floor', 'round-robin', c)?.proxyCpuUs ?? Number.NaN));
    rows.push({ name: 'gateway CPU/req − floor CPU/req', detail: `p2c, c=${CONCURRENCY.join('/')}`, value: above.map((v) => `${us(v)} µs`).join(' / '), limit: '', result: 'info' });
  }
  // The same ratios at equal request rates (part 5): information, the targets are the closed-loop cells.
  for (const [path, detail] of [['gateway', 'p2c'], ['floor', 'node:http+http-proxy']] as const) {
    const values = RATES.map((rate) => vsNginxAtRate(path, rate));
    if (values.some(Number.isFinite)) rows.push({ name: `${path} CPU/req ÷ NGINX, equal rate`, detail: `${detail}, ${RATES.join('/')} req/s`, value: values.map(ratio).join(' / '), limit: '', result: 'info' });
  }
  // Added p50 latency at concurrency 1.
  const directP50 = find('overhead', 'direct', '', 1)?.result.latency.p50Ms ?? Number.NaN;
  for (const strategy of STRATEGIES) {
    const added = (find('overhead', 'gateway', strategy, 1)?.result.latency.p50Ms ?? Number.NaN) - directP50;
    rows.push(addedRow(`tiny upstream, ${strategy}`, added));
  }
  const keyedAdded = (find('overhead', 'gateway', 'p2c', 1, WITH_KEY)?.result.latency.p50Ms ?? Number.NaN) - directP50;
  if (Number.isFinite(keyedAdded)) rows.push({ name: 'added p50 latency at c=1', detail: `tiny upstream, p2c ${WITH_KEY}`, value: `${ms(keyedAdded)} ms`, limit: '', result: 'info' });
  const nginxAdded = (find('overhead', 'nginx', 'round-robin', 1)?.result.latency.p50Ms ?? Number.NaN) - directP50;
  if (Number.isFinite(nginxAdded)) rows.push({ name: 'added p50 at c=1 (reference)', detail: 'tiny upstream, NGINX', value: `${ms(nginxAdded)} ms`, limit: '', result: 'info' });
  const modelAdded = (find('model', 'gateway', 'p2c', 1, 'iris binary')?.result.latency.p50Ms ?? Number.NaN) - (find('model', 'direct', '', 1, 'iris binary')?.result.latency.p50Ms ?? Number.NaN);
  if (Number.isFinite(modelAdded)) rows.push(addedRow('iris binary worker, p2c', modelAdded));
  const modelTput = (find('model', 'gateway', 'p2c', 16, 'iris binary')?.result.perSecond ?? Number.NaN) / (find('model', 'direct', '', 16, 'iris binary')?.result.perSecond ?? Number.NaN);
  if (Number.isFinite(modelTput)) rows.push({ name: 'inf/s through gateway ÷ direct', detail: 'iris binary worker, c=16', value: ratio(modelTput), limit: '', result: 'info' });
  // Heterogeneous: p99 vs round-robin.
  for (const variant of HETERO_VARIANTS) {
    const rr = find('hetero', 'gateway', 'round-robin', HETERO_CONCURRENCY, variant.name)?.result.latency.p99Ms ?? Number.NaN;
    for (const strategy of JUDGED_STRATEGIES) {
      const value = (find('hetero', 'gateway', strategy, HETERO_CONCURRENCY, variant.name)?.result.latency.p99Ms ?? Number.NaN) / rr;
      const judged = variant.judged && Number.isFinite(value);
      rows.push({
        name: `p99 ÷ round-robin p99 (${variant.name})`,
        detail: `${strategy}, c=${HETERO_CONCURRENCY}`,
        value: ratio(value),
        limit: variant.judged ? `<= ${TARGET_P99_VS_RR}x` : '',
        result: judged ? verdict(value <= TARGET_P99_VS_RR) : Number.isFinite(value) ? 'info' : 'n/a',
        ...(judged ? { pass: value <= TARGET_P99_VS_RR } : {}),
      });
    }
  }
  // Authentication and throttling against none, at the top concurrency.
  const top = Math.max(...AUTH_CONCURRENCY);
  for (const variant of AUTH_VARIANTS.slice(1)) {
    const cost = authCost(variant.name, top);
    if (!Number.isFinite(cost)) continue;
    rows.push({
      name: 'throughput cost vs no auth/limit',
      detail: `${variant.name}, c=${top}`,
      value: `${(cost * 100).toFixed(1)}%`,
      limit: `<= ${TARGET_AUTH_COST * 100}%`,
      result: verdict(cost <= TARGET_AUTH_COST),
      pass: cost <= TARGET_AUTH_COST,
    });
    // The same cost read from CPU per request: what throughput would lose where the gateway's CPU is
    // the bottleneck, and far less sensitive to other processes on a shared machine than req/s.
    const none = find('auth', 'gateway', 'p2c', top, 'none')?.proxyCpuUs ?? Number.NaN;
    const cpuCost = 1 - none / (find('auth', 'gateway', 'p2c', top, variant.name)?.proxyCpuUs ?? Number.NaN);
    if (Number.isFinite(cpuCost)) rows.push({ name: 'CPU-derived cost (1 − CPU none ÷ CPU)', detail: `${variant.name}, c=${top}`, value: `${(cpuCost * 100).toFixed(1)}%`, limit: '', result: 'info' });
  }
  // Rows of parts that did not run (BENCH_PARTS) have no figure at all: leave them out.
  return rows.filter((r) => r.value.replace(/[-/\s]|ms|µs/g, '') !== '');
}

function addedRow(detail: string, added: number): TargetRow {
  const judged = Number.isFinite(added);
  return {
    name: 'added p50 latency at c=1',
    detail,
    value: `${ms(added)} ms`,
    limit: `<= ${TARGET_ADDED_P50_MS} ms`,
    result: judged ? verdict(added <= TARGET_ADDED_P50_MS) : 'n/a',
    ...(judged ? { pass: added <= TARGET_ADDED_P50_MS } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Report

const SOURCE = sourceState();

const VERSIONS = packageVersions(['express', 'http-proxy', 'opossum', 'prom-client', 'pino', 'tsx', 'autocannon', 'onnxruntime-node']);

function method(): string[] {
  return [
    `Closed loop (load from ${describeGenerator(LOADGEN)}; c keep-alive connections, one request each):`,
    `    ${WARMUP_MS} ms warm-up (${HETERO_WARMUP_MS} ms for the heterogeneous cells), then a ${DURATION_MS} ms measured window per cell;`,
    `    every proxy process gets ${PREWARM_MS} ms of unmeasured load at c=16 (autocannon) after it starts (JIT warm-up).`,
    'Upstreams: test/bench/lib/bench-upstream-server.ts, one node:http process each: reads the body, answers POST',
    `    /v2/models/echo/infer with a fixed ${answerBytes} B V2 JSON body, and answers the gateway's readiness, index and metadata calls.`,
    `1. Proxy overhead: 2 upstreams answering at once; request ${TINY_REQUEST.body.length} B JSON. "direct" goes to one upstream;`,
    '    the gateway (shared/cli/bin.js gateway, one process, strategy switched with PUT /admin/strategy between cells)',
    '    and NGINX balance over both; "floor" is a bare node:http + http-proxy proxy with the gateway\'s agent settings',
    '    (lib/proxy-floor-server.ts). Proxy CPU: utime+stime of the proxy from /proc/<pid>/stat over the window',
    '    (NGINX: master + worker) divided by the requests completed in it.',
    `2. Heterogeneous: 3 upstreams, two answering in ${FAST_MS} ms and one in ${SLOW_MS} ms; a fresh gateway per strategy, c=${HETERO_CONCURRENCY}.`,
    '    worker-like: one execution slot per upstream, others wait in a FIFO queue whose length goes out in',
    '    X-Infergate-Queue-Depth (a worker with one session); fixed-delay: every request waits the same, any number',
    '    at once (the fault upstream\'s delay mode). Share: inference requests each upstream answered in the window.',
    '3. Real model: a worker (shared/cli/bin.js worker) serving iris with its shipped config, binary tensor',
    '    extension in and out; direct, and through a gateway with that one worker (p2c).',
    `4. Authentication and throttling: part 1's request and upstreams, one gateway (p2c) per variant, all running, cells`,
    '    taken round the variants at each concurrency: none (--allow-anonymous, throttling off); API key (file key store,',
    '    key without a rate); JWT HS256; JWT RS256 (2048-bit key pair made at run time; tokens carry no plan); API key +',
    '    Redis limiter (redis-server on a free port, --save "" --appendonly no; key in Redis with a rate of 1e9/s, so every',
    '    request pays one EVALSHA and none is refused). Cost = 1 − req/s ÷ req/s of none at the same concurrency.',
    `5. Equal rate: part 1's request and upstreams; NGINX, the floor and a gateway (p2c, as part 1) each at ${RATES.join(' and ')} req/s,`,
    '    open loop (lib/load.ts openLoopLoad: node:http client in the bench process, requests leave on a 1 ms clock',
    '    whatever the answers do). Every proxy then handles the same arrivals; the closed-loop cells run each one flat out.',
    'The gateway runs with its defaults otherwise, under node --max-semi-space-size=64 like every deployed gateway',
    '    (shared/cli/node-flags.ts; the floor gets the same flags): part 1 without authentication (--allow-anonymous,',
    '    throttling on, the anonymous principal names no plan); part 1\'s "API key" rows and parts 2-3 with a key in a',
    '    throw-away key file sent as Authorization: Bearer (part 4: as its variants say), breakers,',
    '    metrics, retry budget, health checks, and its default log level (info: one access line per request), stdout to a file;',
    '    "log lines/req" counts the access lines written in the window. NGINX logs one line per request too.',
    'new upstream conns: TCP connections the upstreams accepted in the window (0 = the proxy reuses its keep-alive connections).',
    `NGINX: worker_processes 1, round-robin, upstream keepalive ${NGINX_KEEPALIVE}, proxy_http_version 1.1, Connection "" (config below).`,
    'Ratios to NGINX are paired: every gateway and floor cell of part 1, and every "API key + Redis limiter" cell of',
    '    part 4, is followed at once by an NGINX cell at the same concurrency in front of the same upstreams (NGINX runs',
    '    throughout; "NGINX pair" column), and the ratio divides by that pair. On a shared VM the same cell drifts by',
    '    ±20% over minutes, so a denominator measured minutes apart would move the ratio by as much.',
    `other cores: CPU busy machine-wide minus proxy, upstreams and bench process; a cell above ${NOISY_CORES} is rerun`,
    `    (at most twice, ${Number(env.BENCH_RETRIES ?? 8)} reruns per run), the quietest attempt kept.`,
    'Caveat: load generator, proxy and upstreams share this machine\'s cores, so req/s is what the whole set',
    '    sustains together; CPU per request is the comparable figure.',
  ];
}

/** Size of the tiny upstream's answer, from the first check. */
let answerBytes = Number.NaN;
const us = (v: number): string => (Number.isFinite(v) ? num(v, 3) : '-');

function printReport(): void {
  const out: string[] = [];
  const info = machineInfo();
  out.push('infergate gateway benchmark', '');
  out.push(...describeMachine(info));
  out.push(`packages:         ${Object.entries(VERSIONS).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push(`source:           ${SOURCE}`);
  out.push(`nginx:            ${nginxAvailable() ? `${nginxVersion()} (${NGINX_BIN})` : 'not installed'}`);
  out.push(`background:       ${background.toFixed(2)} cores busy before the run started`, '');
  const noisy = cells.filter((c) => isNoisy(c.result, NOISY_CORES));
  if (background > NOISY_CORES) out.push(`WARNING: the machine was busy before the run (${background.toFixed(2)} cores): other processes compete for the cores.`);
  if (noisy.length > 0) {
    out.push(
      `WARNING: ${noisy.length} of ${cells.length} cells ran with more than ${NOISY_CORES} cores busy outside the benchmark even after reruns`,
      `         (${noisy.map(label).join('; ')}): rerun on a quiet machine before trusting them.`,
    );
  }
  if (background > NOISY_CORES || noisy.length > 0) out.push('');
  out.push('method:', ...method().map((l) => `  ${l}`), '');

  const overhead = cells.filter((c) => c.part === 'overhead');
  if (overhead.length > 0) {
    out.push('1. proxy overhead (tiny upstream x2)');
    if (nginxSkipped) out.push(`   note: ${nginxSkipped}`);
    const order = (c: Cell): number =>
      c.path === 'direct' ? 0 : c.path === 'gateway' ? (c.variant === WITH_KEY ? 50 : 1 + STRATEGIES.indexOf(c.strategy as (typeof STRATEGIES)[number])) : c.path === 'floor' ? 60 : 99;
    const rows = [...overhead]
      .sort((a, b) => a.concurrency - b.concurrency || order(a) - order(b))
      .map((c) => [
        String(c.concurrency),
        c.path === 'gateway'
          ? `gateway ${c.strategy}${c.variant ? ` (${c.variant})` : ''}`
          : c.path === 'nginx' ? 'nginx round-robin' : c.path === 'floor' ? 'node:http+http-proxy floor' : 'direct',
        num(c.result.perSecond),
        ms(c.result.latency.p50Ms),
        ms(c.result.latency.p99Ms),
        us(c.proxyCpuUs),
        us(c.nginxPairUs ?? Number.NaN),
        us(c.upstreamCpuUs),
        us(c.result.clientCpuMsPerOp * 1000),
        c.result.otherCores.toFixed(2),
        Number.isFinite(c.logLinesPerRequest) ? c.logLinesPerRequest.toFixed(2) : '-',
        c.upstreamConnections !== undefined ? String(c.upstreamConnections) : '-',
        String(c.result.errors),
      ]);
    out.push(
      renderTable(
        [
          { title: 'conc' },
          { title: 'path', align: 'left' },
          { title: 'req/s' },
          { title: 'p50 ms' },
          { title: 'p99 ms' },
          { title: 'proxy CPU µs/req' },
          { title: 'NGINX pair µs/req' },
          { title: 'upstreams CPU µs/req' },
          { title: 'client CPU µs/req' },
          { title: 'other cores' },
          { title: 'log lines/req' },
          { title: 'new upstream conns' },
          { title: 'errors' },
        ],
        rows,
      ),
      '',
    );
  }

  const hetero = cells.filter((c) => c.part === 'hetero');
  if (hetero.length > 0) {
    out.push(`2. heterogeneous upstreams (fast-1, fast-2: ${FAST_MS} ms; slow: ${SLOW_MS} ms), through the gateway, c=${HETERO_CONCURRENCY}`);
    const rows = hetero.map((c) => {
      const shares = Object.values(c.shares ?? {});
      return [
        c.variant,
        c.strategy,
        num(c.result.perSecond),
        ms(c.result.latency.p50Ms),
        ms(c.result.latency.p99Ms),
        shares.map((s) => `${(s * 100).toFixed(1)}%`).join(' / '),
        us(c.proxyCpuUs),
        c.result.otherCores.toFixed(2),
        String(c.result.errors),
      ];
    });
    out.push(
      renderTable(
        [
          { title: 'upstreams', align: 'left' },
          { title: 'strategy', align: 'left' },
          { title: 'req/s' },
          { title: 'p50 ms' },
          { title: 'p99 ms' },
          { title: 'share fast-1 / fast-2 / slow' },
          { title: 'gateway CPU µs/req' },
          { title: 'other cores' },
          { title: 'errors' },
        ],
        rows,
      ),
      '',
    );
  }

  const model = cells.filter((c) => c.part === 'model');
  if (model.length > 0) {
    out.push('3. real model (iris, binary tensor extension, one worker)');
    out.push(
      renderTable(
        [
          { title: 'conc' },
          { title: 'path', align: 'left' },
          { title: 'inf/s' },
          { title: 'p50 ms' },
          { title: 'p99 ms' },
          { title: 'gateway CPU µs/inf' },
          { title: 'worker CPU µs/inf' },
          { title: 'client CPU µs/inf' },
          { title: 'other cores' },
          { title: 'errors' },
        ],
        model.map((c) => [
          String(c.concurrency),
          c.path === 'gateway' ? `gateway ${c.strategy}` : 'direct',
          num(c.result.perSecond),
          ms(c.result.latency.p50Ms),
          ms(c.result.latency.p99Ms),
          us(c.proxyCpuUs),
          us(c.upstreamCpuUs),
          us(c.result.clientCpuMsPerOp * 1000),
          c.result.otherCores.toFixed(2),
          String(c.result.errors),
        ]),
      ),
      '',
    );
  }

  const auth = cells.filter((c) => c.part === 'auth');
  if (auth.length > 0) {
    out.push(`4. authentication and throttling (tiny upstream x2, gateway p2c; Redis ${redisVersion || 'n/a'} on this machine)`);
    const none = (c: Cell): Cell | undefined => find('auth', 'gateway', 'p2c', c.concurrency, 'none');
    out.push(
      renderTable(
        [
          { title: 'conc' },
          { title: 'authentication', align: 'left' },
          { title: 'req/s' },
          { title: 'vs none' },
          { title: 'p50 ms' },
          { title: 'p99 ms' },
          { title: 'gateway CPU µs/req' },
          { title: 'CPU vs none µs/req' },
          { title: 'NGINX pair µs/req' },
          { title: 'redis CPU µs/req' },
          { title: 'other cores' },
          { title: 'errors' },
        ],
        [...auth].sort((a, b) => a.concurrency - b.concurrency).map((c) => [
          String(c.concurrency),
          c.variant,
          num(c.result.perSecond),
          ratio(c.result.perSecond / (none(c)?.result.perSecond ?? Number.NaN)),
          ms(c.result.latency.p50Ms),
          ms(c.result.latency.p99Ms),
          us(c.proxyCpuUs),
          c.variant === 'none' ? '-' : `${c.proxyCpuUs >= (none(c)?.proxyCpuUs ?? Number.NaN) ? '+' : ''}${us(c.proxyCpuUs - (none(c)?.proxyCpuUs ?? Number.NaN))}`,
          us(c.nginxPairUs ?? Number.NaN),
          us(c.sideCpuUs ?? Number.NaN),
          c.result.otherCores.toFixed(2),
          String(c.result.errors),
        ]),
      ),
      '',
    );
  }

  const rate = cells.filter((c) => c.part === 'rate');
  if (rate.length > 0) {
    out.push(`5. equal rate (tiny upstream x2, open loop, at most ${RATE_CONNECTIONS} connections; latency from when a request was due)`);
    out.push(
      renderTable(
        [
          { title: 'req/s offered' },
          { title: 'path', align: 'left' },
          { title: 'req/s' },
          { title: 'p50 ms' },
          { title: 'p99 ms' },
          { title: 'proxy CPU µs/req' },
          { title: '÷ NGINX' },
          { title: 'upstreams CPU µs/req' },
          { title: 'other cores' },
          { title: 'errors' },
        ],
        rate.map((c) => [
          num(c.ratePerSecond ?? Number.NaN),
          c.path === 'gateway' ? `gateway ${c.strategy}` : c.path === 'floor' ? 'node:http+http-proxy floor' : 'nginx round-robin',
          num(c.result.perSecond),
          ms(c.result.latency.p50Ms),
          ms(c.result.latency.p99Ms),
          us(c.proxyCpuUs),
          c.path === 'nginx' ? '-' : ratio(vsNginxAtRate(c.path, c.ratePerSecond ?? Number.NaN)),
          us(c.upstreamCpuUs),
          c.result.otherCores.toFixed(2),
          String(c.result.errors),
        ]),
      ),
      '',
    );
  }

  out.push('targets:');
  out.push(renderTargets(targetRows()));
  if (nginxConfText) out.push('', 'nginx.conf used (temp paths shortened):', ...nginxConfText.replace(/\/tmp\/infergate-bench-nginx-[^/]+\//g, '<tmp>/').trimEnd().split('\n').map((l) => `  ${l}`));
  process.stdout.write(`${out.join('\n')}\n`);
}

async function writeJson(): Promise<void> {
  await mkdir(dirname(OUT), { recursive: true });
  const report = {
    benchmark: 'gateway',
    date: new Date().toISOString(),
    machine: machineInfo(),
    packages: VERSIONS,
    source: SOURCE,
    nginx: nginxAvailable() ? nginxVersion() : null,
    redis: redisVersion || null,
    nginxConfig: nginxConfText || null,
    method: method(),
    backgroundCores: background,
    settings: { loadGenerator: LOADGEN, rates: RATES, warmupMs: WARMUP_MS, heteroWarmupMs: HETERO_WARMUP_MS, prewarmMs: PREWARM_MS, durationMs: DURATION_MS, concurrency: CONCURRENCY, heteroConcurrency: HETERO_CONCURRENCY, fastMs: FAST_MS, slowMs: SLOW_MS, strategies: STRATEGIES, authConcurrency: AUTH_CONCURRENCY, parts: PARTS },
    cells,
    nginxPairs,
    targets: targetRows(),
  };
  await writeFile(OUT, `${JSON.stringify(report, null, 2)}\n`);
  progress(`results written to ${OUT}`);
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const started = performance.now();
  const cellCount =
    (PARTS.includes('overhead') ? CONCURRENCY.length * (2 + 2 * (STRATEGIES.length + (KEY_ROWS && STRATEGIES.includes('p2c') ? 1 : 0) + (FLOOR_ROWS ? 1 : 0))) : 0) +
    (PARTS.includes('hetero') ? HETERO_VARIANTS.length * STRATEGIES.length : 0) +
    (PARTS.includes('model') ? 2 * MODEL_CONCURRENCY.length : 0) +
    (PARTS.includes('auth') ? (AUTH_VARIANTS.length + 1) * AUTH_CONCURRENCY.length : 0) +
    (PARTS.includes('rate') ? 3 * RATES.length : 0);
  progress(`${cellCount} cells, about ${Math.round((cellCount * (WARMUP_MS + DURATION_MS + 1000)) / 1000) + 20} s`);
  await probeMachine();
  background = await backgroundLoad();
  progress(`background load before start: ${background.toFixed(2)} cores busy`);
  if (PARTS.includes('overhead')) await benchOverhead();
  if (PARTS.includes('hetero')) await benchHetero();
  if (PARTS.includes('model')) await benchModel();
  if (PARTS.includes('auth')) await benchAuth();
  if (PARTS.includes('rate')) await benchRate();
  if (PROFILE_DIR) await writeFile(join(PROFILE_DIR, 'windows.json'), `${JSON.stringify(profileWindows, null, 2)}\n`);
  printReport();
  await writeJson();
  progress(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

await main();
