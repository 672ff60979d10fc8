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
import type { ClientPresence } from './presence.ts';
import { WaitQueue } from './wait-queue.ts';
import { normaliseUrl, Upstream, type ModelMetadata, type UpstreamSource } from './upstream.ts';

/** How a wait for a slot ended, for metrics. */
export type AdmissionOutcome = 'admitted' | 'queue_full' | 'queue_timeout' | 'client_gone';

export interface PoolEvents {
  breakerTransition?(upstream: Upstream, state: BreakerState): void;
  readinessChange?(upstream: Upstream, ready: boolean): void;
  /** A request that found every candidate at its cap left the wait queue after `waitedMs`. */
  admissionWait?(outcome: AdmissionOutcome, waitedMs: number): void;
}

export type ModelKnowledge = 'unknown-model' | 'unknown-version' | 'known';

export type { ClientPresence, Waiter } from './presence.ts';

/** What a request waiting for a slot asks for. */
export interface SlotRequest {
  model: string;
  version: string | undefined;
  /** Workers this request must not go to (tried already). */
  exclude: ReadonlySet<string> | undefined;
  /** Absolute `now()` after which it stops waiting (queue wait bounded by its deadline). */
  waitUntil: number;
  client: ClientPresence;
}

/** Why a request got no slot: the queue was full, its wait ran out, or no worker can serve it any more. */
export type Refusal = 'queue_full' | 'queue_timeout' | 'no_worker';

/** A slot handed over, or why none was. */
export type SlotOutcome = Upstream | Refusal | 'client_gone';

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
  readonly #queue: WaitQueue<Upstream>;
  #closed = false;

  constructor(config: GatewayConfig, deps: { logger: Logger; now: () => number; events?: PoolEvents }) {
    this.#config = config;
    this.#logger = deps.logger;
    this.#now = deps.now;
    this.#events = deps.events ?? {};
    this.#ca = config.upstreamTls.caFile === undefined ? undefined : readFileSync(config.upstreamTls.caFile);
    this.#queue = new WaitQueue({ maxQueued: config.limits.maxQueued, lifoAfterMs: config.limits.adaptiveLifoMs, now: deps.now });
  }

  /** Requests waiting for an in-flight slot now. */
  get queued(): number {
    return this.#queue.size;
  }

  /**
   * Adds a worker (or returns the one already known at that URL) and starts checking it. The
   * config file or an admin adding a URL that discovery put there takes it over: discovery may then
   * no longer remove it (docs/discovery.md, "Who may remove what").
   */
  add(url: string, options: { weight?: number; source: UpstreamSource }): Upstream {
    const key = normaliseUrl(url);
    const existing = this.#byUrl.get(key);
    if (existing !== undefined) {
      if (DISCOVERED.has(existing.source) && !DISCOVERED.has(options.source)) {
        this.#logger.info({ worker: existing.id, url: key, from: existing.source, to: options.source }, 'worker now listed by config or admin; discovery will not remove it');
        existing.source = options.source;
        if (options.weight !== undefined) existing.weight = options.weight;
      }
      return existing;
    }
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
        if (state !== 'open') this.#offerSlots(u);
      },
      onRelease: (u) => this.#offerSlots(u),
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

  /**
   * Drains a worker (it takes no new requests; those in flight finish) or undoes a drain. An
   * undrained worker's free slots go to requests already waiting, as a released slot would.
   */
  setDraining(upstream: Upstream, draining: boolean): void {
    upstream.draining = draining;
    if (!draining) this.#offerSlots(upstream);
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
    const out: Upstream[] = [];
    for (const u of this.#byUrl.values()) {
      if (this.#canTake(u, model, version, exclude)) out.push(u);
    }
    return out;
  }

  /** Workers that serve the model and are up, ignoring the in-flight cap: is waiting worth it? */
  hasCapacityLater(model: string, version: string | undefined, exclude?: ReadonlySet<string>): boolean {
    return this.#anyUp(model, version, exclude, (u) => u.breaker.state !== 'open');
  }

  /**
   * Whether some worker that serves the model, up and not excluded, has a breaker that admits
   * requests now (busy or not): after a wait that got no slot, tells "all busy" from "none would take it".
   */
  anyAdmitting(model: string, version: string | undefined, exclude: ReadonlySet<string> | undefined): boolean {
    return this.#anyUp(model, version, exclude, (u) => u.breaker.admits);
  }

  /** Whether some worker that serves the model, is ready, not draining and not excluded, passes `test`. */
  #anyUp(model: string, version: string | undefined, exclude: ReadonlySet<string> | undefined, test: (u: Upstream) => boolean): boolean {
    for (const u of this.#byUrl.values()) {
      if (u.ready && !u.draining && exclude?.has(u.id) !== true && u.serves(model, version) && test(u)) return true;
    }
    return false;
  }

  /**
   * Waits in the bounded FIFO for a slot on a worker that can serve the request (every candidate
   * was at its in-flight cap). A slot freed by a release, a closing breaker or a worker admitted is
   * handed to exactly one waiter, reserved for it until it resumes, so a newcomer cannot take it.
   */
  async waitForSlot(request: SlotRequest): Promise<SlotOutcome> {
    const { model, version, exclude, client } = request;
    const key = queueKey(model, version);
    const accepts = exclude === undefined ? undefined : (u: Upstream): boolean => !exclude.has(u.id);
    const startedAt = this.#now();
    let seq: number | undefined;
    for (;;) {
      const outcome = await this.#queue.wait(key, { waitMs: request.waitUntil - this.#now(), client, ...(accepts && { accepts }), ...(seq !== undefined && { seq }) });
      if (outcome.kind !== 'woken') {
        const refusal = outcome.kind === 'full' ? 'queue_full' : outcome.kind === 'gone' ? 'client_gone' : 'queue_timeout';
        this.#events.admissionWait?.(refusal, this.#now() - startedAt);
        return refusal;
      }
      const upstream = outcome.slot;
      upstream.reserved--;
      if (client.clientGone) {
        this.#offerSlots(upstream); // the slot goes to the next in line
        this.#events.admissionWait?.('client_gone', this.#now() - startedAt);
        return 'client_gone';
      }
      if (this.#canTake(upstream, model, version, exclude)) {
        this.#events.admissionWait?.('admitted', this.#now() - startedAt);
        return upstream;
      }
      // Its breaker opened or it left since the slot was offered: wait again, keeping this place.
      this.#offerSlots(upstream);
      if (!this.hasCapacityLater(model, version, exclude)) return 'no_worker';
      seq = outcome.seq;
    }
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
    await Promise.all(this.list().map((u) => this.#refreshIndex(u, false)));
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
    this.#queue.close();
  }

  /** Whether `u` may take a request for the model now: a slot handed to a waiter counts as taken. */
  #canTake(u: Upstream, model: string, version: string | undefined, exclude: ReadonlySet<string> | undefined): boolean {
    return u.ready && !u.draining && u.inFlight + u.reserved < this.#config.limits.maxInFlightPerWorker && exclude?.has(u.id) !== true && u.serves(model, version) && u.breaker.admits;
  }

  /** Hands each free slot of `u` to the oldest waiter that can use it, one waiter per slot. */
  #offerSlots(u: Upstream): void {
    if (this.#queue.size === 0) return;
    const cap = this.#config.limits.maxInFlightPerWorker;
    // A half-open breaker lets one trial through: one slot, not a slot per free place.
    while (u.ready && !u.draining && u.inFlight + u.reserved < cap && u.breaker.admits && (u.breaker.state !== 'half-open' || u.reserved === 0) && this.#queue.size > 0) {
      u.reserved++;
      if (!this.#queue.wakeOne(queueKeysOf(u), u)) {
        u.reserved--;
        return;
      }
    }
  }

  async #check(upstream: Upstream): Promise<void> {
    const change = await checkReadiness(upstream, this.#config.health, this.#logger);
    if (this.#byUrl.get(upstream.url.origin) !== upstream) {
      upstream.ready = false; // removed while its check was under way: it takes nothing more
      return;
    }
    if (change !== undefined) {
      this.#events.readinessChange?.(upstream, change === 'admitted');
      if (change === 'admitted') this.#offerSlots(upstream);
    }
  }

  #watch(upstream: Upstream): void {
    const { intervalMs, indexRefreshMs } = this.#config.health;
    // Each timer re-arms itself after its check completes, so a slow worker never has checks piling up.
    const start = setTimeout(() => undefined, 0);
    const timers: Timers = { check: start, index: start };
    const loop = (fn: () => Promise<void>, every: number, key: keyof Timers): void => {
      // Unwatched, or the worker was removed and added again (same id, a new entry with its own
      // timers): a check that was under way then must not re-arm, or the loops would multiply.
      if (this.#timers.get(upstream.id) !== timers) return;
      timers[key] = setTimeout(() => {
        void fn().finally(() => loop(fn, every, key));
      }, every);
      timers[key].unref();
    };
    this.#timers.set(upstream.id, timers);
    const first = this.#check(upstream).finally(() => {
      this.#firstChecks.delete(upstream.id);
      loop(() => this.#check(upstream), intervalMs, 'check');
    });
    this.#firstChecks.set(upstream.id, first);
    loop(() => (upstream.ready ? this.#refreshIndex(upstream, true) : Promise.resolve()), indexRefreshMs, 'index');
  }

  /** Re-reads a worker's index; a model it newly serves may be what requests are waiting for. */
  async #refreshIndex(upstream: Upstream, periodic: boolean): Promise<void> {
    await refreshIndex(upstream, this.#config.health.timeoutMs, this.#logger, periodic);
    if (this.#byUrl.get(upstream.url.origin) === upstream) this.#offerSlots(upstream);
  }

  #unwatch(upstream: Upstream): void {
    const timers = this.#timers.get(upstream.id);
    if (timers === undefined) return;
    clearTimeout(timers.check);
    clearTimeout(timers.index);
    this.#timers.delete(upstream.id);
  }
}

/** Sources that may take away what they added. */
const DISCOVERED: ReadonlySet<UpstreamSource> = new Set(['registry', 'dns']);

/** The wait-queue line of a request: its model, and its version when it asked for one. */
function queueKey(model: string, version: string | undefined): string {
  return version === undefined ? model : `${model}\u0000${version}`;
}

/** Every line a worker's slot can serve: each model it has, any version or each one it has. */
function* queueKeysOf(u: Upstream): Generator<string> {
  for (const [model, versions] of u.models) {
    yield model;
    for (const version of versions.keys()) yield queueKey(model, version);
  }
}
