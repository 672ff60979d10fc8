/** A worker as operators see it (admin API, pool dashboard): its state and load figures, nothing secret. */
import type { Upstream } from '../upstreams/upstream.ts';

export interface WorkerView {
  id: string;
  url: string;
  source: string;
  ready: boolean;
  draining: boolean;
  breaker: string;
  inFlight: number;
  queueDepth: number;
  latencyMs: number;
  weight: number;
  lastCheckError: string | undefined;
  /** model → versions it serves */
  models: Record<string, string[]>;
}

export function workerView(u: Upstream): WorkerView {
  return {
    id: u.id,
    url: u.url.origin,
    source: u.source,
    ready: u.ready,
    draining: u.draining,
    breaker: u.breaker.state,
    inFlight: u.inFlight,
    queueDepth: u.queueDepth,
    latencyMs: Math.round(u.latencyMs * 100) / 100,
    weight: u.weight,
    lastCheckError: u.lastCheckError || undefined,
    models: Object.fromEntries([...u.models].map(([name, versions]) => [name, [...versions.keys()]])),
  };
}
