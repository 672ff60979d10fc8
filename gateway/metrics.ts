/**
 * The gateway's Prometheus metrics, on a registry of its own. The three recorded on every request
 * (requests by model/status/worker, total and upstream latency) count in plain fields bound once per
 * label set (PendingCount, PlainHistogram) and reach prom-client's registry when scraped: prom-client
 * hashes and validates labels on every call, a few µs per request on the gateway's hot path.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { flushInto, type PendingCount } from '../shared/metrics/pending-count.ts';
import { PlainHistogram } from '../shared/metrics/plain-histogram.ts';
import type { Pool } from './upstreams/pool.ts';

export interface GatewayMetrics {
  registry: Registry;
  /** One finished inference request; `model` must be one the pool knows (see `modelLabel`). */
  recordRequest(model: string, status: number, worker: string, seconds: number): void;
  /** How long a worker took to answer. */
  recordUpstream(worker: string, seconds: number): void;
  retries: Counter<'reason'>;
  breakerTransitions: Counter<'worker' | 'state'>;
  /** Rate-limit decisions the shared store could not make (decided locally, or refused). */
  rateLimitFallbacks: Counter;
  authFailures: Counter<'reason'>;
  /** Requests refused for want of an in-flight slot: queue_full, queue_timeout, no_worker. */
  admissionRefusals: Counter<'reason'>;
  /** Time spent in the wait queue, by how the wait ended (admitted, queue_full, queue_timeout, client_gone). */
  queueWait: Histogram<'outcome'>;
}

/** The model label of requests for a model no worker serves (the name itself is whatever the client sent). */
export const UNKNOWN_MODEL_LABEL = '(unknown)';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Queue waits are bounded by limits.queueWaitMs (tens of ms by default): finer buckets at the low end. */
const QUEUE_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const BREAKER_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

export function createGatewayMetrics(pool: Pool, strategyName: () => string): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'infergate_gateway_' });
  const registers = [registry];
  new Gauge({
    name: 'infergate_gateway_inflight_requests', help: 'Requests in flight to each worker from this process', labelNames: ['worker'] as const, registers,
    collect() {
      this.reset();
      for (const u of pool.list()) this.set({ worker: u.id }, u.inFlight);
    },
  });
  new Gauge({
    name: 'infergate_gateway_breaker_state', help: 'Breaker state per worker: 0 closed, 1 half-open, 2 open', labelNames: ['worker'] as const, registers,
    collect() {
      this.reset();
      for (const u of pool.list()) this.set({ worker: u.id }, BREAKER_VALUE[u.breaker.state]);
    },
  });
  new Gauge({
    name: 'infergate_gateway_worker_ready', help: 'Whether each worker is admitted by its readiness checks (1) or not (0)', labelNames: ['worker', 'url'] as const, registers,
    collect() {
      this.reset();
      for (const u of pool.list()) this.set({ worker: u.id, url: u.url.origin }, u.ready && !u.draining ? 1 : 0);
    },
  });
  new Gauge({
    name: 'infergate_gateway_admission_queue_length', help: 'Requests waiting for an in-flight slot (every candidate worker at its cap)', registers,
    collect() {
      this.set(pool.queued);
    },
  });
  new Gauge({
    name: 'infergate_gateway_strategy_info', help: 'The balancing strategy in force (value 1)', labelNames: ['strategy'] as const, registers,
    collect() {
      this.reset();
      this.set({ strategy: strategyName() }, 1);
    },
  });
  const requestCounts = new Map<string, PendingCount>();
  new Counter({
    name: 'infergate_gateway_requests_total', help: 'Inference requests by model, status and worker', labelNames: ['model', 'status', 'worker'] as const, registers,
    collect() {
      flushInto(this, requestCounts.values());
    },
  });
  const requestDuration = boundObservers(new PlainHistogram({ name: 'infergate_gateway_request_duration_seconds', help: 'Time from request arrival to the end of the response', buckets: BUCKETS, registers }), 'model');
  const upstreamDuration = boundObservers(new PlainHistogram({ name: 'infergate_gateway_upstream_duration_seconds', help: 'Time a worker took to answer, per worker', buckets: BUCKETS, registers }), 'worker');
  return {
    registry,
    recordRequest(model, status, worker, seconds) {
      const key = `${model}\u0000${status}\u0000${worker}`;
      let pending = requestCounts.get(key);
      if (pending === undefined) {
        pending = { labels: { model, status: String(status), worker }, count: 0 };
        requestCounts.set(key, pending);
      }
      pending.count++;
      requestDuration(model)(seconds);
    },
    recordUpstream(worker, seconds) {
      upstreamDuration(worker)(seconds);
    },
    retries: new Counter({ name: 'infergate_gateway_retries_total', help: 'Requests retried on another worker, by reason', labelNames: ['reason'] as const, registers }),
    breakerTransitions: new Counter({ name: 'infergate_gateway_breaker_transitions_total', help: 'Breaker state changes per worker', labelNames: ['worker', 'state'] as const, registers }),
    rateLimitFallbacks: new Counter({ name: 'infergate_gateway_ratelimit_store_fallbacks_total', help: 'Rate-limit decisions made without the shared store (fail open: local bucket; fail closed: refused)', registers }),
    authFailures: new Counter({ name: 'infergate_gateway_auth_failures_total', help: 'Requests refused by authentication or authorization, by status code', labelNames: ['reason'] as const, registers }),
    admissionRefusals: new Counter({ name: 'infergate_gateway_admission_refusals_total', help: 'Requests refused with 503 for want of an in-flight slot, by reason: queue_full, queue_timeout, no_worker', labelNames: ['reason'] as const, registers }),
    queueWait: new Histogram({ name: 'infergate_gateway_admission_queue_seconds', help: 'Time requests spent waiting for an in-flight slot, by outcome: admitted, queue_full, queue_timeout, client_gone', labelNames: ['outcome'] as const, buckets: QUEUE_BUCKETS, registers }),
  };
}

/** The observe function of a one-label histogram per label value, bound on first use. */
function boundObservers(histogram: PlainHistogram, label: string): (value: string) => (seconds: number) => void {
  const observers = new Map<string, (seconds: number) => void>();
  return (value) => {
    let observe = observers.get(value);
    if (observe === undefined) {
      observe = histogram.child({ [label]: value });
      observers.set(value, observe);
    }
    return observe;
  };
}
