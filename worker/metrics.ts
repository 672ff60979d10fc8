/** The worker's Prometheus metrics, on a registry of its own (never prom-client's global one). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SchedulerObserver } from './scheduler/scheduler.ts';

export interface WorkerMetrics {
  registry: Registry;
  requests: Counter<'model' | 'version' | 'outcome'>;
  /** The success counter of one model version, bound once: label lookup off the hot path. */
  succeeded(model: string, version: string): Counter.Internal;
  inflight: Gauge;
  observerFor(model: string, version: string): SchedulerObserver;
}

const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createWorkerMetrics(queueDepthByModel: () => Array<{ model: string; version: string; depth: number }>): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'infergate_worker_' });
  const requests = new Counter({
    name: 'infergate_worker_requests_total',
    help: 'Inference requests by model, version and outcome (ok or the error code)',
    labelNames: ['model', 'version', 'outcome'] as const,
    registers: [registry],
  });
  const queueTime = new Histogram({
    name: 'infergate_worker_queue_duration_seconds',
    help: 'Time a request waited in its model queue before its batch started',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const computeTime = new Histogram({
    name: 'infergate_worker_compute_duration_seconds',
    help: 'Wall time of one session run (one batch), thread hand-off included',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const batchSize = new Histogram({
    name: 'infergate_worker_batch_size',
    help: 'Rows (first-dimension size) per session run',
    labelNames: ['model', 'version'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const sessionRuns = new Counter({
    name: 'infergate_worker_session_runs_total',
    help: 'Session runs; fewer than requests when dynamic batching merges them',
    labelNames: ['model', 'version'] as const,
    registers: [registry],
  });
  const batchedRequests = new Counter({
    name: 'infergate_worker_batched_requests_total',
    help: 'Requests that went through a session run (alone or merged)',
    labelNames: ['model', 'version'] as const,
    registers: [registry],
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

  const bound = new Map<string, Counter.Internal>();
  return {
    registry,
    requests,
    succeeded(model, version) {
      const key = `${model}\u0000${version}`;
      let child = bound.get(key);
      if (child === undefined) {
        child = requests.labels({ model, version, outcome: 'ok' });
        bound.set(key, child);
      }
      return child;
    },
    inflight,
    observerFor(model, version) {
      const labels = { model, version };
      return {
        batch(size, count) {
          batchSize.observe(labels, size);
          sessionRuns.inc(labels);
          batchedRequests.inc(labels, count);
        },
        queueTime: (ms) => queueTime.observe(labels, ms / 1000),
        computeTime: (ms) => computeTime.observe(labels, ms / 1000),
      };
    },
  };
}
