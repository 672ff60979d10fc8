/**
 * Load drivers that share one measurement discipline: load starts, runs `warmupMs` unmeasured, then
 * for `durationMs` every completion is counted and its latency recorded, and CPU clocks are read at
 * both ends of that window. Closed loop: `concurrency` requests are always outstanding, a new one
 * leaves as soon as one returns, so throughput is what the server sustains at that concurrency.
 *
 * - httpLoad: `connections` keep-alive connections, one request each; autocannon in this process, or
 *   wrk (a child process, see wrk.ts) when the caller asks for it.
 * - inProcessLoad: an async function (e.g. an onnxruntime `session.run`) called `concurrency` at a time.
 * - openLoopLoad: open loop — requests leave at a fixed rate whatever the answers do (below).
 */
import autocannon from 'autocannon';
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { exitedChildrenCpuMs, selfCpuMs, systemCpu, type CpuClock, type SystemCpu } from './cpu.ts';
import { LatencyRecorder, type LatencySummary } from './latency.ts';
import { runWrk, WRK_BIN, wrkAvailable } from './wrk.ts';

export interface WindowOptions {
  warmupMs: number;
  durationMs: number;
  /** Runs right before the measured window opens (e.g. start a probe, scrape metrics). */
  beforeWindow?: () => Promise<void> | void;
  /** Runs right after the measured window closes, before load stops. */
  afterWindow?: () => Promise<void> | void;
  /**
   * CPU clock of other processes that belong to the benchmark (e.g. the upstreams behind a proxy):
   * their CPU is reported as `accountedCores` and left out of `otherCores`.
   */
  accountedCpu?: CpuClock;
}

export interface CellResult {
  /** Requests completed successfully (2xx) inside the window. */
  completed: number;
  /** Transport errors and non-2xx answers inside the window. */
  errors: number;
  /** Actual window length. */
  seconds: number;
  /** completed / seconds. */
  perSecond: number;
  latency: LatencySummary;
  /** CPU of the process under test per completed request, ms (NaN if not measured). */
  serverCpuMsPerOp: number;
  /** CPU of this (load-generating) process per completed request, ms (NaN when it is the server too). */
  clientCpuMsPerOp: number;
  /** Cores kept busy by everything else on the machine during the window (other processes, the probe, the kernel). */
  otherCores: number;
  /** Cores used by the processes of `accountedCpu` during the window (0 when not given). */
  accountedCores: number;
  /** Cores' worth of hypervisor steal during the window. */
  stealCores: number;
}

interface Window {
  recording: boolean;
  latency: LatencyRecorder;
  completed: number;
  errors: number;
}

/** Counts an answer that came while the window is open: a 2xx as completed (with its latency), anything else as an error. */
function countAnswer(window: Window, status: number, latencyMs: number): void {
  if (!window.recording) return;
  if (status >= 200 && status < 300) {
    window.completed++;
    window.latency.recordMs(latencyMs);
  } else {
    window.errors++;
  }
}

/** The CPU clocks read at each end of a measured window (ms). */
interface Clocks {
  server: number;
  accounted: number;
  client: number;
  system: SystemCpu;
}

function readClocks(server: CpuClock | undefined, accounted: CpuClock | undefined, client: CpuClock): Clocks {
  return { server: server?.() ?? 0, accounted: accounted?.() ?? 0, client: client(), system: systemCpu() };
}

/**
 * A window's result from what it counted and the clocks at its ends. `server`: 'measured' when a
 * server clock was read; 'client' when the server is the load's own process (in-process load), so
 * its CPU is the client's; 'unknown' when neither.
 */
function windowResult(counted: { completed: number; errors: number; latency: LatencySummary }, seconds: number, from: Clocks, to: Clocks, server: 'measured' | 'client' | 'unknown'): CellResult {
  const n = counted.completed;
  const serverMs = to.server - from.server;
  const clientMs = to.client - from.client;
  const accountedMs = to.accounted - from.accounted;
  const perOp = (cpuMs: number): number => (n > 0 ? cpuMs / n : Number.NaN);
  return {
    completed: n,
    errors: counted.errors,
    seconds,
    perSecond: n / seconds,
    latency: counted.latency,
    serverCpuMsPerOp: server === 'measured' ? perOp(serverMs) : server === 'client' ? perOp(clientMs) : Number.NaN,
    clientCpuMsPerOp: server === 'client' ? Number.NaN : perOp(clientMs),
    otherCores: Math.max(0, to.system.busyMs - from.system.busyMs - serverMs - clientMs - accountedMs) / 1000 / seconds,
    accountedCores: accountedMs / 1000 / seconds,
    stealCores: (to.system.stealMs - from.system.stealMs) / 1000 / seconds,
  };
}

/** Drives the warm-up / window / teardown sequence; `load` is already running. */
/** `serverCpu` undefined: the server is this process (in-process load), so its CPU is the client's. */
async function measure(options: WindowOptions, window: Window, serverCpu: CpuClock | undefined): Promise<CellResult> {
  await sleep(options.warmupMs);
  await options.beforeWindow?.();
  const from = readClocks(serverCpu, options.accountedCpu, selfCpuMs);
  const t0 = performance.now();
  window.recording = true;
  await sleep(options.durationMs);
  window.recording = false;
  const seconds = (performance.now() - t0) / 1000;
  const to = readClocks(serverCpu, options.accountedCpu, selfCpuMs);
  await options.afterWindow?.();
  return windowResult({ completed: window.completed, errors: window.errors, latency: window.latency.summary() }, seconds, from, to, serverCpu ? 'measured' : 'client');
}

export interface HttpLoadOptions extends WindowOptions {
  url: string;
  connections: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** CPU clock of the server process (see cpu.ts cpuClockOf). */
  serverCpu?: CpuClock;
  /** Every answer, measured or not: status (0 for a transport error), latency, and when it arrived (performance.now()). Autocannon only. */
  onResponse?: (status: number, latencyMs: number, atMs: number) => void;
  /** Default autocannon. */
  generator?: LoadGenerator;
}

export type LoadGenerator = 'autocannon' | 'wrk';

/** BENCH_LOADGEN when set, else wrk when it is installed, else autocannon. */
export function preferredGenerator(): LoadGenerator {
  const asked = process.env.BENCH_LOADGEN;
  if (asked === 'wrk' || asked === 'autocannon') return asked;
  if (asked !== undefined && asked !== '') throw new Error(`BENCH_LOADGEN must be wrk or autocannon, not ${JSON.stringify(asked)}`);
  return wrkAvailable() ? 'wrk' : 'autocannon';
}

/** For a report's method: which load generator ran, and why autocannon when wrk was not asked away. */
export function describeGenerator(generator: LoadGenerator): string {
  if (generator === 'wrk') return `wrk (${WRK_BIN}, one thread; windows in whole seconds)`;
  const why = process.env.BENCH_LOADGEN === 'autocannon' ? '' : ' (wrk is not installed; Debian: apt-get install -y wrk)';
  return `autocannon in the bench process${why}`;
}

export async function httpLoad(options: HttpLoadOptions): Promise<CellResult> {
  if (options.generator === 'wrk') {
    if (options.onResponse !== undefined) throw new Error('httpLoad: onResponse needs autocannon');
    return wrkLoad(options);
  }
  const window: Window = { recording: false, latency: new LatencyRecorder(), completed: 0, errors: 0 };
  const instance = autocannon({
    url: options.url,
    connections: options.connections,
    // Stopped explicitly once the window closes; autocannon checks its stop flag once a second.
    duration: Math.ceil((options.warmupMs + options.durationMs) / 1000) + 30,
    timeout: 30,
    method: options.method ?? 'GET',
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
  const onResponse = options.onResponse;
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
    onResponse?.(statusCode, responseTimeMs, performance.now());
    countAnswer(window, statusCode, responseTimeMs);
  });
  instance.on('reqError', () => {
    onResponse?.(0, Number.NaN, performance.now());
    if (window.recording) window.errors++;
  });
  const finished = Promise.resolve(instance);
  try {
    return await measure(options, window, options.serverCpu);
  } finally {
    instance.stop();
    await finished;
  }
}

/**
 * The same window discipline with wrk: an unmeasured run for the warm-up, then a measured run whose
 * length is the window (both in whole seconds), CPU clocks read around it. Its own CPU (the client's)
 * is read from this process's exited-children time once wrk has been waited for.
 */
async function wrkLoad(options: HttpLoadOptions): Promise<CellResult> {
  const request = { url: options.url, connections: options.connections, method: options.method ?? 'GET', headers: options.headers ?? {}, ...(options.body !== undefined ? { body: options.body } : {}) };
  if (options.warmupMs > 0) await runWrk(request, Math.ceil(options.warmupMs / 1000));
  await options.beforeWindow?.();
  const from = readClocks(options.serverCpu, options.accountedCpu, exitedChildrenCpuMs);
  const run = await runWrk(request, options.durationMs / 1000);
  const to = readClocks(options.serverCpu, options.accountedCpu, exitedChildrenCpuMs);
  await options.afterWindow?.();
  const completed = run.responses - run.statusErrors;
  const latency = { count: completed, p50Ms: run.p50Ms, p99Ms: run.p99Ms, maxMs: run.maxMs, meanMs: run.meanMs };
  return windowResult({ completed, errors: run.statusErrors + run.transportErrors, latency }, run.seconds, from, to, options.serverCpu ? 'measured' : 'unknown');
}

export interface InProcessLoadOptions extends WindowOptions {
  concurrency: number;
  /** One operation; latency is measured from call to settlement. */
  op: () => Promise<unknown>;
}

/** Closed loop over an in-process async operation. Server and client are this process: CPU goes in serverCpuMsPerOp. */
export async function inProcessLoad(options: InProcessLoadOptions): Promise<CellResult> {
  const window: Window = { recording: false, latency: new LatencyRecorder(), completed: 0, errors: 0 };
  let stopped = false;
  const lane = async (): Promise<void> => {
    while (!stopped) {
      const started = performance.now();
      try {
        await options.op();
        if (window.recording) {
          window.completed++;
          window.latency.recordMs(performance.now() - started);
        }
      } catch {
        if (window.recording) window.errors++;
      }
    }
  };
  const lanes = Array.from({ length: options.concurrency }, lane);
  try {
    return await measure(options, window, undefined);
  } finally {
    stopped = true;
    await Promise.all(lanes);
  }
}

export interface OpenLoopLoadOptions extends WindowOptions {
  url: string;
  ratePerSecond: number;
  /** Keep-alive connections at most; a request due while all are busy waits for one (and its latency shows it). */
  maxConnections: number;
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  serverCpu?: CpuClock;
  /** Every answer, measured or not: status (0 for a transport error), latency, and when it arrived (performance.now()). */
  onResponse?: (status: number, latencyMs: number, atMs: number) => void;
}

/** How often the arrival clock ticks; requests due since the last tick leave together. */
const TICK_MS = 1;

/**
 * Open loop: request i is due at start + i / rate, and leaves then (to within a tick) whether or
 * not earlier ones were answered — the arrival process of many independent clients, which is what
 * an overload test needs. autocannon's `overallRate` is not that: it lets each connection send its
 * share of a second back to back and then pause, so a second's worth of load arrives as one burst.
 * Latency is measured from the moment a request was due, so time spent waiting for a free
 * connection counts (no coordinated omission). node:http with a keep-alive agent; the window
 * counts 2xx as completed and everything else as errors, like the closed-loop drivers.
 */
export async function openLoopLoad(options: OpenLoopLoadOptions): Promise<CellResult> {
  const window: Window = { recording: false, latency: new LatencyRecorder(), completed: 0, errors: 0 };
  const url = new URL(options.url);
  const agent = new Agent({ keepAlive: true, maxSockets: options.maxConnections, scheduling: 'fifo' });
  const headers = { ...options.headers, ...(options.body ? { 'content-length': String(options.body.length) } : {}) };
  const onResponse = options.onResponse;
  const finish = (status: number, dueAt: number): void => {
    const at = performance.now();
    const latencyMs = at - dueAt;
    onResponse?.(status, status === 0 ? Number.NaN : latencyMs, at);
    countAnswer(window, status, latencyMs);
  };
  const send = (dueAt: number): void => {
    const req = request({ agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: options.method ?? 'GET', headers }, (res) => {
      res.on('end', () => finish(res.statusCode ?? 0, dueAt));
      res.on('error', () => finish(0, dueAt));
      res.resume();
    });
    req.on('error', () => finish(0, dueAt));
    req.end(options.body);
  };
  const start = performance.now();
  const interval = 1000 / options.ratePerSecond;
  let sent = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    for (let dueAt = start + sent * interval; dueAt <= now; dueAt = start + sent * interval) {
      sent++;
      send(dueAt);
    }
  }, TICK_MS);
  try {
    return await measure(options, window, options.serverCpu);
  } finally {
    clearInterval(ticker);
    agent.destroy();
  }
}
