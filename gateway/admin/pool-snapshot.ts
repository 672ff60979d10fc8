/**
 * The pool dashboard's view, once: the strategy in force and the available ones, gateway-wide
 * rolling figures, and every worker's state (worker-view.ts) with its own rolling figures
 * (pool-stats.ts). `GET /admin/pool` answers it; `GET /admin/pool/stream` sends it every second.
 */
import { STRATEGY_NAMES } from '../balancing/registry.ts';
import type { Pool } from '../upstreams/pool.ts';
import type { PoolStats, RollingFigures } from './pool-stats.ts';
import { workerView, type WorkerView } from './worker-view.ts';

export interface PoolSnapshot {
  /** Wall-clock epoch milliseconds. */
  time: number;
  strategy: string;
  strategies: readonly string[];
  totals: RollingFigures & { inFlight: number };
  workers: Array<WorkerView & RollingFigures>;
}

export interface PoolSnapshotDeps {
  pool: Pool;
  stats: PoolStats;
  strategy(): string;
  wallClock: () => number;
}

export function poolSnapshot(deps: PoolSnapshotDeps): PoolSnapshot {
  const upstreams = deps.pool.list();
  let inFlight = 0;
  for (const u of upstreams) inFlight += u.inFlight;
  return {
    time: deps.wallClock(),
    strategy: deps.strategy(),
    strategies: STRATEGY_NAMES,
    totals: { ...deps.stats.totals(), inFlight },
    workers: upstreams.map((u) => ({ ...workerView(u), ...deps.stats.worker(u.id) })),
  };
}
