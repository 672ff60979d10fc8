/**
 * Per-model-version scheduler: a bounded queue in front of the model's instances, with Triton-style
 * dynamic batching. When an instance is free, the oldest request and every queued request with the
 * same batch signature are merged up to `maxBatchSize`; the batch goes at once if it is full or of a
 * preferred size, else it waits up to `maxQueueDelayMs` from the oldest request's arrival for company.
 * Under load instances are busy, the queue fills, and batches form without any delay at all.
 * (Triton docs/user_guide/batcher.md, "Dynamic Batcher".)
 *
 * One bad request never fails its neighbours: a merged run that fails is retried request by request.
 * Every request settles by its deadline: 504 if the deadline passes, whether queued or running,
 * or if it waits in the queue longer than the model's queue timeout.
 */
import { InfergateError } from '../../shared/errors.ts';
import type { Tensor } from '../../shared/protocol/datatypes.ts';
import type { Runner } from '../repository/session-runner.ts';
import { batchSignature, concatBatch, splitBatch } from './merge.ts';

export interface SchedulerOptions {
  runners: readonly Runner[];
  /** 0: requests run as sent, never merged. */
  maxBatchSize: number;
  dynamicBatching?: { maxQueueDelayMs: number; preferredBatchSizes: readonly number[] } | undefined;
  maxQueueSize: number;
  /**
   * Runs handed to one instance at once (default 1). At 2 the next run already waits in the
   * session thread's inbox when the current one ends, so the thread never idles through a message
   * round trip (~75 µs measured here: longer than a small model's whole run). The cost: a request
   * in that second slot has left the queue, so it may wait up to one run beyond its queue timeout.
   */
  pipelineDepth?: number;
  /**
   * A deeper pipeline for a fast model, without dynamic batching: once an instance's runs are
   * measured to take less than `belowMs` each (a moving average of the time from when a run could
   * start to when it ended), up to `depth` runs are handed to it at once. A session thread that
   * finds its ring empty sleeps, and waking it costs the main thread a futex wake: 10–20 µs on some
   * VMs, a third of a small model's whole run. With more runs waiting in the ring it sleeps less
   * often. The bound on what this commits: (depth − pipelineDepth) runs beyond the queue, under
   * `belowMs` each; a slow model keeps pipelineDepth, so its queue limits and timeouts hold as before.
   */
  deepPipeline?: { depth: number; belowMs: number };
  now: () => number;
  observer?: SchedulerObserver;
}

export interface SchedulerObserver {
  queued?(depth: number): void;
  batch?(size: number, requests: number): void;
  queueTime?(ms: number): void;
  computeTime?(ms: number): void;
}

/**
 * What the scheduler needs to hear that a client went away. An AbortSignal fits; the HTTP layer
 * passes a lighter object (worker/http/disconnect.ts).
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface ScheduledRequest {
  inputs: Tensor[];
  outputNames: string[];
  /** Absolute time (in `now()` units) by which the request must be answered; Infinity for none. */
  deadline: number;
  /** Longest wait in the queue before a run starts (the model's queueTimeoutMs). */
  queueTimeoutMs: number;
  signal?: CancelSignal | undefined;
}

interface Entry {
  request: ScheduledRequest;
  rows: number;
  /** Which requests may share a run; only computed when dynamic batching is on. */
  signature: string;
  enqueuedAt: number;
  /** Still in the queue (not yet handed to a runner). */
  queued: boolean;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
  resolve(outputs: Tensor[]): void;
  reject(err: Error): void;
}

/** Weight of the newest run in the moving average of run times. */
const RUN_TIME_WEIGHT = 0.2;

export class Scheduler {
  readonly #options: SchedulerOptions;
  readonly #runners: Runner[];
  /** Runs handed to each runner (same index as #runners) and not yet ended. */
  readonly #handed: number[];
  /** When each runner's last run ended (`now()` units). */
  readonly #lastEnded: number[];
  /** Moving average of a run's time from when it could start (handed over, or its predecessor ended) to its end, ms. */
  #runMs = Number.NaN;
  readonly #batching: boolean;
  #queue: Entry[] = [];
  #delayTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #drainWaiters: Array<() => void> = [];

  constructor(options: SchedulerOptions) {
    if (options.runners.length === 0) throw new Error('a scheduler needs at least one runner');
    this.#options = options;
    this.#runners = [...options.runners];
    this.#handed = this.#runners.map(() => 0);
    this.#lastEnded = this.#runners.map(() => Number.NEGATIVE_INFINITY);
    this.#batching = options.maxBatchSize > 0 && options.dynamicBatching !== undefined;
  }

  /** Runs one instance may have at once now: the deep pipeline's depth for a fast model, else pipelineDepth. */
  get pipelineDepth(): number {
    const deep = this.#options.deepPipeline;
    const base = this.#options.pipelineDepth ?? 1;
    return deep !== undefined && !this.#batching && this.#runMs < deep.belowMs ? Math.max(base, deep.depth) : base;
  }

  /** The runner with the fewest runs handed to it, if it has room for one more; else -1. */
  #freeRunner(): number {
    const depth = this.pipelineDepth;
    let best = -1;
    for (let i = 0; i < this.#handed.length; i++) {
      if (this.#handed[i]! < depth && (best < 0 || this.#handed[i]! < this.#handed[best]!)) best = i;
    }
    return best;
  }

  get queueDepth(): number {
    return this.#queue.length;
  }

  get running(): number {
    let running = 0;
    for (const handed of this.#handed) running += handed;
    return running;
  }

  submit(request: ScheduledRequest): Promise<Tensor[]> {
    if (this.#closed) return Promise.reject(new InfergateError('WK_ERR_MODEL_NOT_READY', 'the model version is unloading', { 'Retry-After': '1' }));
    if (this.#queue.length >= this.#options.maxQueueSize) {
      return Promise.reject(new InfergateError('WK_ERR_QUEUE_FULL', `the model's queue is full (${this.#options.maxQueueSize} requests)`, { 'Retry-After': '1' }));
    }
    const now = this.#options.now();
    if (request.deadline <= now) return Promise.reject(deadlineError());
    if (request.signal?.aborted) return Promise.reject(new InfergateError('WK_ERR_DEADLINE_EXCEEDED', 'the client went away'));
    return new Promise<Tensor[]>((resolve, reject) => {
      const entry: Entry = {
        request,
        rows: this.#options.maxBatchSize > 0 ? request.inputs[0]?.shape[0] ?? 1 : 1,
        signature: this.#batching ? batchSignature(request.inputs, request.outputNames) : '',
        enqueuedAt: now,
        queued: true,
        settled: false,
        timer: undefined,
        onAbort: undefined,
        resolve,
        reject,
      };
      entry.timer = setTimeout(() => this.#expire(entry), Math.min(request.deadline - now, request.queueTimeoutMs, MAX_TIMER_MS));
      if (request.signal !== undefined) {
        entry.onAbort = () => this.#settle(entry, new InfergateError('WK_ERR_DEADLINE_EXCEEDED', 'the client went away'));
        request.signal.addEventListener('abort', entry.onAbort);
      }
      this.#queue.push(entry);
      this.#options.observer?.queued?.(this.#queue.length);
      this.#pump();
    });
  }

  /** Stops taking requests and resolves once everything queued or running has settled. */
  drain(): Promise<void> {
    this.#closed = true;
    if (this.#queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Queue timeout or deadline: a queued request fails now; a running one at its deadline. */
  #expire(entry: Entry): void {
    const remaining = entry.request.deadline - this.#options.now();
    if (entry.queued || remaining <= 0) {
      this.#settle(entry, deadlineError());
    } else if (Number.isFinite(remaining)) {
      entry.timer = remaining <= MAX_TIMER_MS
        ? setTimeout(() => this.#settle(entry, deadlineError()), remaining)
        : setTimeout(() => this.#expire(entry), MAX_TIMER_MS);
    }
  }

  #settle(entry: Entry, outcome: Tensor[] | Error): void {
    if (entry.settled) return;
    entry.settled = true;
    clearTimeout(entry.timer);
    if (entry.onAbort !== undefined) entry.request.signal?.removeEventListener('abort', entry.onAbort);
    if (entry.queued) {
      entry.queued = false;
      this.#queue.splice(this.#queue.indexOf(entry), 1);
    }
    if (outcome instanceof Error) entry.reject(outcome);
    else entry.resolve(outcome);
    this.#maybeDrained();
  }

  #maybeDrained(): void {
    if (this.#closed && this.#queue.length === 0 && this.running === 0) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    }
  }

  #pump(): void {
    clearTimeout(this.#delayTimer);
    this.#delayTimer = undefined;
    while (this.#queue.length > 0) {
      const runner = this.#freeRunner();
      if (runner < 0) return;
      const batch = this.#formBatch();
      if (batch === undefined) return; // waiting for company; a timer will call us again
      this.#handed[runner]!++;
      void this.#dispatch(runner, batch);
    }
  }

  /** Picks the next batch, or undefined (with a timer set) when it should wait for more requests. */
  #formBatch(): Entry[] | undefined {
    const { maxBatchSize, dynamicBatching, now } = this.#options;
    const head = this.#queue[0]!;
    if (maxBatchSize === 0 || dynamicBatching === undefined) {
      this.#queue.shift();
      head.queued = false;
      return [head];
    }
    const batch: Entry[] = [];
    let rows = 0;
    for (const entry of this.#queue) {
      if (entry.signature !== head.signature || rows + entry.rows > maxBatchSize) continue;
      batch.push(entry);
      rows += entry.rows;
      if (rows === maxBatchSize) break;
    }
    const waited = now() - head.enqueuedAt;
    const ready = rows === maxBatchSize
      || dynamicBatching.preferredBatchSizes.includes(rows)
      || waited >= dynamicBatching.maxQueueDelayMs;
    if (!ready) {
      this.#delayTimer = setTimeout(() => this.#pump(), Math.max(0, dynamicBatching.maxQueueDelayMs - waited));
      return undefined;
    }
    for (const entry of batch) entry.queued = false;
    this.#queue = this.#queue.filter((e) => e.queued);
    return batch;
  }

  async #dispatch(index: number, batch: Entry[]): Promise<void> {
    const runner = this.#runners[index]!;
    const started = this.#options.now();
    for (const entry of batch) this.#options.observer?.queueTime?.(started - entry.enqueuedAt);
    const live = batch.filter((e) => !e.settled);
    try {
      if (live.length === 1) await this.#runAlone(runner, live[0]!);
      else if (live.length > 1) await this.#runMerged(runner, live);
    } finally {
      const ended = this.#options.now();
      this.#options.observer?.computeTime?.(ended - started);
      // A batch whose requests had all gone ran nothing: it says nothing about the model's speed.
      if (live.length > 0) this.#recordRun(index, started, ended);
      this.#handed[index]!--;
      this.#maybeDrained();
      if (this.#queue.length > 0) this.#pump();
    }
  }

  /**
   * Runs of one runner end in the order they were handed over: one handed over while another was
   * still going could only start when that one ended, so that is when its own time begins.
   */
  #recordRun(index: number, handedAt: number, ended: number): void {
    const ran = ended - Math.max(handedAt, this.#lastEnded[index]!);
    this.#lastEnded[index] = ended;
    this.#runMs = Number.isNaN(this.#runMs) ? ran : this.#runMs + RUN_TIME_WEIGHT * (ran - this.#runMs);
  }

  /** The common case without dynamic batching: one request, one run, nothing to merge or split. */
  async #runAlone(runner: Runner, entry: Entry): Promise<void> {
    this.#options.observer?.batch?.(entry.rows, 1);
    let outputs: Tensor[];
    try {
      outputs = await runner.run(entry.request.inputs, entry.request.outputNames);
    } catch (err) {
      this.#settle(entry, new InfergateError('WK_ERR_INFERENCE_FAILED', `inference failed: ${(err as Error).message}`));
      return;
    }
    this.#settle(entry, outputs);
  }

  async #runMerged(runner: Runner, batch: Entry[]): Promise<void> {
    if (batch.length === 1) return this.#runAlone(runner, batch[0]!);
    const rows = batch.map((e) => e.rows);
    this.#options.observer?.batch?.(rows.reduce((a, b) => a + b, 0), batch.length);
    const head = batch[0]!.request;
    try {
      const inputs = head.inputs.map((_, i) => concatBatch(batch.map((e) => e.request.inputs[i]!)));
      const outputs = await runner.run(inputs, head.outputNames);
      const pieces = outputs.map((t) => splitBatch(t, rows));
      batch.forEach((entry, i) => this.#settle(entry, pieces.map((p) => p[i]!)));
    } catch {
      for (const entry of batch) {
        if (!entry.settled) await this.#runAlone(runner, entry); // isolate the request that broke the batch
      }
    }
  }
}

/** setTimeout fires after 1 ms for anything longer (Node clamps it): longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function deadlineError(): InfergateError {
  return new InfergateError('WK_ERR_DEADLINE_EXCEEDED', 'the request\'s deadline passed before inference finished');
}
