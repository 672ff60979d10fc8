/**
 * Rolling per-worker and gateway-wide request figures for the pool dashboard: requests and errors
 * (5xx) per second, p50 and p99 latency, over the last `windowSeconds` complete seconds.
 *
 * Each series is a ring of one-second buckets (the window plus the second being filled), each with
 * a count, an error count and a fixed-size latency histogram. Recording a request, on the inference
 * path, finds the bucket by `second % ring length` and increments three numbers: O(1) and no
 * allocation (a bucket reused for a new second is zeroed in place, once per second). Reading sums
 * the buckets of the window, about once a second per dashboard, off the request path.
 * The second being filled is left out, so figures do not sag at the start of every second.
 *
 * @example
 *   const stats = new PoolStats({ now: () => performance.now() });
 *   stats.record('w-1a2b', 200, ctx.startedAt);   // from the pipeline's completion hook
 *   stats.worker('w-1a2b');                        // { reqPerSec, errorsPerSec, p50Ms, p99Ms }
 */
import { LatencyHistogram } from './latency-histogram.ts';

export interface RollingFigures {
  reqPerSec: number;
  /** Answers with a 5xx status (the gateway's or a worker's) per second. */
  errorsPerSec: number;
  /** null when the window holds no request. */
  p50Ms: number | null;
  p99Ms: number | null;
}

class SecondBucket {
  second = -1;
  count = 0;
  errors = 0;
  readonly latency = new LatencyHistogram();
}

/** One ring of one-second buckets. */
class RollingSeries {
  readonly #ring: SecondBucket[];
  /** The last second anything was recorded in: a series idle for a whole window can be dropped. */
  lastSecond = -1;

  constructor(windowSeconds: number) {
    this.#ring = Array.from({ length: windowSeconds + 1 }, () => new SecondBucket());
  }

  record(second: number, ms: number, error: boolean): void {
    const bucket = this.#ring[second % this.#ring.length]!;
    if (bucket.second !== second) {
      bucket.second = second;
      bucket.count = 0;
      bucket.errors = 0;
      if (bucket.latency.total > 0) bucket.latency.clear();
    }
    bucket.count++;
    if (error) bucket.errors++;
    bucket.latency.record(ms);
    this.lastSecond = second;
  }

  /** Figures over the complete seconds [current − span, current − 1]; `scratch` is overwritten. */
  figures(current: number, span: number, scratch: LatencyHistogram): RollingFigures {
    scratch.clear();
    let count = 0;
    let errors = 0;
    for (const bucket of this.#ring) {
      if (bucket.second < current - span || bucket.second >= current) continue;
      count += bucket.count;
      errors += bucket.errors;
      scratch.add(bucket.latency);
    }
    return {
      reqPerSec: span > 0 ? count / span : 0,
      errorsPerSec: span > 0 ? errors / span : 0,
      p50Ms: round(scratch.percentile(0.5)),
      p99Ms: round(scratch.percentile(0.99)),
    };
  }
}

export interface PoolStatsOptions {
  /** Monotonic milliseconds (the gateway's `now`). */
  now: () => number;
  /** Complete seconds the figures cover (default 10). */
  windowSeconds?: number;
}

export class PoolStats {
  readonly windowSeconds: number;
  readonly #now: () => number;
  readonly #startSecond: number;
  readonly #total: RollingSeries;
  readonly #workers = new Map<string, RollingSeries>();
  readonly #scratch = new LatencyHistogram();

  constructor(options: PoolStatsOptions) {
    this.windowSeconds = options.windowSeconds ?? 10;
    if (!Number.isInteger(this.windowSeconds) || this.windowSeconds < 1) throw new Error('pool stats: windowSeconds must be a positive integer');
    this.#now = options.now;
    this.#startSecond = this.#second();
    this.#total = new RollingSeries(this.windowSeconds);
  }

  /**
   * One finished request: the worker that served it (none when refused before forwarding), its
   * status, and when it arrived on the `now` clock (the clock is read once, here).
   */
  record(workerId: string | undefined, status: number, startedAt: number): void {
    const now = this.#now();
    const second = Math.floor(now / 1000);
    const durationMs = now - startedAt;
    const error = status >= 500;
    this.#total.record(second, durationMs, error);
    if (workerId === undefined) return;
    let series = this.#workers.get(workerId);
    if (series === undefined) {
      this.#dropIdle(second);
      series = new RollingSeries(this.windowSeconds);
      this.#workers.set(workerId, series);
    }
    series.record(second, durationMs, error);
  }

  /** Every request the gateway finished, whether or not a worker served it. */
  totals(): RollingFigures {
    const current = this.#second();
    return this.#total.figures(current, this.#span(current), this.#scratch);
  }

  worker(workerId: string): RollingFigures {
    const current = this.#second();
    const series = this.#workers.get(workerId);
    if (series === undefined) return { reqPerSec: 0, errorsPerSec: 0, p50Ms: null, p99Ms: null };
    return series.figures(current, this.#span(current), this.#scratch);
  }

  /** Series kept in memory (for tests: idle workers' series are dropped). */
  get trackedWorkers(): number {
    return this.#workers.size;
  }

  #second(): number {
    return Math.floor(this.#now() / 1000);
  }

  /** Seconds of history the window really has: fewer than the window just after start. */
  #span(current: number): number {
    return Math.min(this.windowSeconds, current - this.#startSecond);
  }

  /** Workers removed from the pool stop recording; their series go once a whole window has passed. */
  #dropIdle(second: number): void {
    for (const [id, series] of this.#workers) if (series.lastSecond < second - this.windowSeconds) this.#workers.delete(id);
  }
}

function round(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.round(ms * 1000) / 1000;
}
