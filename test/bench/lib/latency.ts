/** Latency samples with microsecond resolution (autocannon's own histogram rounds to whole ms). */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export class LatencyRecorder {
  readonly #histogram: RecordableHistogram = createHistogram();

  recordMs(ms: number): void {
    this.#histogram.record(Math.max(1, Math.round(ms * 1000)));
  }

  summary(): LatencySummary {
    const h = this.#histogram;
    const count = h.count;
    if (count === 0) return { count: 0, p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN, meanMs: Number.NaN };
    return { count, p50Ms: h.percentile(50) / 1000, p99Ms: h.percentile(99) / 1000, maxMs: h.max / 1000, meanMs: h.mean / 1000 };
  }
}

/** Summary of a plain array of millisecond samples. */
export function summarize(samplesMs: readonly number[]): LatencySummary {
  const recorder = new LatencyRecorder();
  for (const ms of samplesMs) recorder.recordMs(ms);
  return recorder.summary();
}
