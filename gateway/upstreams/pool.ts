/**
 * The worker pool: every known worker (static config, admin API, and later the Redis registry and
 * DNS), deduplicated by URL, each actively checked. It answers the one question the pipeline asks:
 * which workers may take a request for this model and version now — ready, not draining, breaker
 * admitting, under the in-flight cap, not already tried for this request. Strategies pick among them.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../../shared/logger.ts';
import type { GatewayConfig } from '../config/schema.ts';
import type { BreakerState } from './breaker.ts';
import { checkReadiness, refreshIndex } from './health.ts';
import { normaliseUrl, Upstream, type ModelMetadata, type UpstreamSource } from './upstream.ts';

export interface PoolEvents {
  breakerTransition?(upstream: Upstream, state: BreakerState): void;
  readinessChange?(upstream: Upstream, ready: boolean): void;
}

export type ModelKnowledge = 'unknown-model' | 'unknown-version' | 'known';

/** Something a request waits on, told when the client goes away or the request's deadline passes. */
export interface Waiter {
  clientGone(): void;
  deadlinePassed(): void;
}

/**
 * What waiting for a slot needs to know about the client: whether it has gone, and one slot to
 * hear when it goes (the request context; cheaper than an AbortSignal per request).
 */
export interface ClientPresence {
  readonly clientGone: boolean;
  waitOn(waiter: Waiter | undefined): void;
}

interface Timers {
  check: NodeJS.Timeout;
  index: NodeJS.Timeout;
}

export class Pool {
  readonly #config: GatewayConfig;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #events: PoolEvents;
  readonly #ca: Buffer | undefined;
  readonly #byUrl = new Map<string, Upstream>();
  readonly #timers = new Map<string, Timers>();
  readonly #firstChecks = new Map<string, Promise<void>>();
  #capacityWaiters = new Set<() => void>();
  #closed = false;

  constructor(config: GatewayConfig, deps: { logger: Logger; now: () => number; events?: PoolEvents }) {
    this.#config = config;
    this.#logger = deps.logger;
    this.#now = deps.now;
    this.#events = deps.events ?? {};
    this.#ca = config.upstreamTls.caFile === undefined ? undefined : readFileSync(config.upstreamTls.caFile);
  }

  /** Adds a worker (or returns the one already known at that URL) and starts checking it. */
  add(url: string, options: { weight?: number; source: UpstreamSource }): Upstream {
    const key = normaliseUrl(url);
    const existing = this.#byUrl.get(key);
    if (existing !== undefined) return existing;
    const upstream = new Upstream({
      url: key,
      weight: options.weight ?? 1,
      source: options.source,
      config: this.#config,
      ca: this.#ca,
      now: this.#now,
      onBreakerTransition: (u, state) => {
        this.#logger.warn({ worker: u.id, url: u.url.origin, breaker: state }, 'breaker transition');
        this.#events.breakerTransition?.(u, state);
        if (state !== 'open') this.#wakeCapacityWaiters();
      },
      onRelease: () => this.#wakeCapacityWaiters(),
    });
    this.#byUrl.set(key, upstream);
    this.#logger.info({ worker: upstream.id, url: key, source: options.source }, 'worker added');
    if (!this.#closed) this.#watch(upstream);
    return upstream;
  }

  /** Forgets a worker: no new requests; those in flight finish on their own sockets. */
  remove(idOrUrl: string): boolean {
    const upstream = this.get(idOrUrl);
    if (upstream === undefined) return false;
    this.#byUrl.delete(upstream.url.origin);
    this.#unwatch(upstream);
    upstream.ready = false;
    const closeWhenIdle = (): void => {
      if (upstream.inFlight === 0) upstream.close();
      else setTimeout(closeWhenIdle, 100).unref();
    };
    closeWhenIdle();
    this.#logger.info({ worker: upstream.id, url: upstream.url.origin }, 'worker removed');
    return true;
  }

  get(idOrUrl: string): Upstream | undefined {
    for (const upstream of this.#byUrl.values()) if (upstream.id === idOrUrl) return upstream;
    try {
      return this.#byUrl.get(normaliseUrl(idOrUrl));
    } catch {
      return undefined;
    }
  }

  list(): Upstream[] {
    return [...this.#byUrl.values()];
  }

  /** Whether any worker in the pool, ready or not, reports the model (and version). */
  knowledgeOf(model: string, version: string | undefined): ModelKnowledge {
    let modelSeen = false;
    for (const upstream of this.#byUrl.values()) {
      const versions = upstream.models.get(model);
      if (versions === undefined) continue;
      modelSeen = true;
      if (version === undefined || versions.has(version)) return 'known';
    }
    return modelSeen ? 'unknown-version' : 'unknown-model';
  }

  /** Workers that may take a request for the model now. */
  candidates(model: string, version: string | undefined, exclude?: ReadonlySet<string>): Upstream[] {
    const cap = this.#config.limits.maxInFlightPerWorker;
    const out: Upstream[] = [];
    for (const u of this.#byUrl.values()) {
      if (u.ready && !u.draining && u.inFlight < cap && exclude?.has(u.id) !== true && u.serves(model, version) && u.breaker.admits) out.push(u);
    }
    return out;
  }

  /** Workers that serve the model and are up, ignoring the in-flight cap: is waiting worth it? */
  hasCapacityLater(model: string, version: string | undefined, exclude?: ReadonlySet<string>): boolean {
    for (const u of this.#byUrl.values()) {
      if (u.ready && !u.draining && exclude?.has(u.id) !== true && u.serves(model, version) && u.breaker.state !== 'open') return true;
    }
    return false;
  }

  /** Resolves true when a lease is released or a breaker closes, false after `waitMs` or when the client goes. */
  waitForCapacity(waitMs: number, client: ClientPresence): Promise<boolean> {
    if (waitMs <= 0 || client.clientGone) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (value: boolean): void => {
        clearTimeout(timer);
        client.waitOn(undefined);
        this.#capacityWaiters.delete(wake);
        resolve(value);
      };
      const wake = (): void => done(true);
      const timer = setTimeout(() => done(false), waitMs);
      // The wait ends by `waitMs`, which the caller bounds by the deadline: the timer says so.
      client.waitOn({ clientGone: () => done(false), deadlinePassed: () => undefined });
      this.#capacityWaiters.add(wake);
    });
  }

  /** Metadata of a model version as some ready worker reported it, and every version known. */
  metadata(model: string, version: string | undefined): { metadata: ModelMetadata | undefined; versions: string[] } {
    const versions = new Set<string>();
    let metadata: ModelMetadata | undefined;
    let best = -1;
    for (const u of this.#byUrl.values()) {
      const known = u.models.get(model);
      if (known === undefined) continue;
      for (const [v, meta] of known) {
        versions.add(v);
        const wanted = version === undefined ? Number(v) > best : v === version;
        if (wanted && meta !== undefined && (u.ready || metadata === undefined)) {
          metadata = meta;
          best = Number(v);
        }
      }
    }
    return { metadata, versions: [...versions].sort((a, b) => Number(a) - Number(b)) };
  }

  /** Every model name served by a ready worker. */
  readyModels(): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const u of this.#byUrl.values()) {
      if (!u.ready || u.draining) continue;
      for (const [name, versions] of u.models) {
        const set = out.get(name) ?? new Set<string>();
        for (const v of versions.keys()) set.add(v);
        out.set(name, set);
      }
    }
    return out;
  }

  /** Refreshes every worker's model index now (after a repository load/unload fan-out). */
  async refreshAll(): Promise<void> {
    await Promise.all(this.list().map((u) => refreshIndex(u, this.#config.health.timeoutMs, this.#logger)));
  }

  /** Resolves when every worker has had its first readiness check: startup waits for it. */
  async checkAll(): Promise<void> {
    await Promise.all(this.list().map((u) => this.#firstChecks.get(u.id)));
  }

  close(): void {
    this.#closed = true;
    for (const upstream of this.#byUrl.values()) {
      this.#unwatch(upstream);
      upstream.close();
    }
    for (const wake of this.#capacityWaiters) wake();
  }

  #wakeCapacityWaiters(): void {
    if (this.#capacityWaiters.size === 0) return;
    const waiters = this.#capacityWaiters;
    this.#capacityWaiters = new Set();
    for (const wake of waiters) wake();
  }

  async #check(upstream: Upstream): Promise<void> {
    const change = await checkReadiness(upstream, this.#config.health, this.#logger);
    if (change !== undefined) {
      this.#events.readinessChange?.(upstream, change === 'admitted');
      if (change === 'admitted') this.#wakeCapacityWaiters();
    }
  }

  #watch(upstream: Upstream): void {
    const { intervalMs, indexRefreshMs, timeoutMs } = this.#config.health;
    // Each timer re-arms itself after its check completes, so a slow worker never has checks piling up.
    const loop = (fn: () => Promise<void>, every: number, key: keyof Timers): void => {
      const timers = this.#timers.get(upstream.id);
      if (timers === undefined) return;
      timers[key] = setTimeout(() => {
        void fn().finally(() => loop(fn, every, key));
      }, every);
      timers[key].unref();
    };
    const start = setTimeout(() => undefined, 0);
    this.#timers.set(upstream.id, { check: start, index: start });
    const first = this.#check(upstream).finally(() => {
      this.#firstChecks.delete(upstream.id);
      loop(() => this.#check(upstream), intervalMs, 'check');
    });
    this.#firstChecks.set(upstream.id, first);
    loop(() => (upstream.ready ? refreshIndex(upstream, timeoutMs, this.#logger) : Promise.resolve()), indexRefreshMs, 'index');
  }

  #unwatch(upstream: Upstream): void {
    const timers = this.#timers.get(upstream.id);
    if (timers === undefined) return;
    clearTimeout(timers.check);
    clearTimeout(timers.index);
    this.#timers.delete(upstream.id);
  }
}
