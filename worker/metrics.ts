/**
 * The worker's Prometheus metrics, on a registry of its own (never prom-client's global one).
 * The per-request ones (successes, and the scheduler's per-run figures) are counted in plain fields
 * bound once per model version and handed to prom-client when scraped: its own label handling costs
 * ≈ 0.3–0.8 µs per call, six calls per request (docs/performance-worker.md).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { PlainHistogram } from '../shared/metrics/plain-histogram.ts';
import { flushInto, type PendingCount } from '../shared/metrics/pending-count.ts';
import type { SchedulerObserver } from './scheduler/scheduler.ts';

export interface WorkerMetrics {
  registry: Registry;
  requests: Counter<'model' | 'version' | 'outcome'>;
  /** The success counter of one model version, bound once: label lookup off the hot path. */
  succeeded(model: string, version: string): { inc(): void };
  inflight: Gauge;
  observerFor(model: string, version: string): SchedulerObserver;
}

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createWorkerMetrics(queueDepthByModel: () => Array<{ model: string; version: string; depth: number }>): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'infergate_worker_' });
  const okCounts = new Map<string, PendingCount>();
  const runCounts: PendingCount[] = [];
  const batchedCounts: PendingCount[] = [];
  const requests = new Counter({
    name: 'infergate_worker_requests_total',
    help: 'Inference requests by model, version and outcome (ok or the error code)',
    labelNames: ['model', 'version', 'outcome'] as const,
    registers: [registry],
    collect() {
      flushInto(this, okCounts.values());
    },
  });
  const queueTime = new PlainHistogram({
    name: 'infergate_worker_queue_duration_seconds',
    help: 'Time a request waited in its model queue before its batch started',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const computeTime = new PlainHistogram({
    name: 'infergate_worker_compute_duration_seconds',
    help: 'Wall time of one session run (one batch), thread hand-off included',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const batchSize = new PlainHistogram({
    name: 'infergate_worker_batch_size',
    help: 'Rows (first-dimension size) per session run',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  new Counter({
    name: 'infergate_worker_session_runs_total',
    help: 'Session runs; fewer than requests when dynamic batching merges them',
    labelNames: ['model', 'version'] as const,
    registers: [registry],
    collect() {
      flushInto(this, runCounts);
    },
  });
  new Counter({
    name: 'infergate_worker_batched_requests_total',
    help: 'Requests that went through a session run (alone or merged)',
    labelNames: ['model', 'version'] as const,
    registers: [registry],
    collect() {
      flushInto(this, batchedCounts);
    },
  });
  new Gauge({
    name: 'infergate_worker_queue_depth',
    help: 'Requests waiting in each model queue',
    labelNames: ['model', 'version'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const { model, version, depth } of queueDepthByModel()) this.set({ model, version }, depth);
    },
  });
  const inflight = new Gauge({ name: 'infergate_worker_inflight_requests', help: 'Inference requests being handled', registers: [registry] });

  return {
    registry,
    requests,
    succeeded(model, version) {
      const key = `${model}\u0000${version}`;
      let pending = okCounts.get(key);
      if (pending === undefined) {
        pending = { labels: { model, version, outcome: 'ok' }, count: 0 };
        okCounts.set(key, pending);
      }
      const counted = pending;
      return {
        inc() {
          counted.count++;
        },
      };
    },
    inflight,
    observerFor(model, version) {
      const labels = { model, version };
      const runs: PendingCount = { labels, count: 0 };
      const batched: PendingCount = { labels, count: 0 };
      runCounts.push(runs);
      batchedCounts.push(batched);
      const observeBatch = batchSize.child(labels);
      const observeQueue = queueTime.child(labels);
      const observeCompute = computeTime.child(labels);
      return {
        batch(size, count) {
          observeBatch(size);
          runs.count++;
          batched.count += count;
        },
        queueTime: (ms) => observeQueue(ms / 1000),
        computeTime: (ms) => observeCompute(ms / 1000),
      };
    },
  };
}
