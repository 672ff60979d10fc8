/**
 * One worker as the gateway sees it: where it is, whether it is admitted, what it serves, and the
 * load figures the balancers read (in-flight leases, peak-EWMA latency, reported queue depth).
 */
import { Agent as HttpAgent } from 'node:http';
import type { Socket } from 'node:net';
import { Agent as HttpsAgent } from 'node:https';
import { createHash } from 'node:crypto';
import type { Candidate } from '../balancing/strategy.ts';
import { PeakEwma } from './peak-ewma.ts';
import { createBreaker, type Breaker, type BreakerState } from './breaker.ts';
import { Lease } from './lease.ts';
import type { GatewayConfig } from '../config/schema.ts';

export type UpstreamSource = 'static' | 'admin' | 'registry' | 'dns';

/** A model version as a worker reported it: metadata cached from GET /v2/models/{m}/versions/{v}. */
export type ModelMetadata = Record<string, unknown>;

export interface UpstreamOptions {
  url: string;
  weight: number;
  source: UpstreamSource;
  config: GatewayConfig;
  ca: Buffer | undefined;
  now: () => number;
  onBreakerTransition: (upstream: Upstream, state: BreakerState) => void;
  onRelease: (upstream: Upstream) => void;
}

/** Stable opaque id from the URL, so every gateway replica names a worker the same way. */
export function upstreamId(url: string): string {
  return `w-${createHash('sha256').update(url).digest('hex').slice(0, 10)}`;
}

/** Normalises a worker URL to its origin: the pool dedupes by it. */
export function normaliseUrl(url: string): string {
  return new URL(url).origin;
}

/**
 * A worker's address as http-proxy wants its `target`: parsed once here, because a string target
 * is `url.parse`d again on every request. The fields `url.parse` would give (hostname without
 * IPv6 brackets; port '' for the protocol's default, which http-proxy fills in).
 */
export interface ProxyTarget {
  readonly protocol: string;
  readonly host: string;
  readonly hostname: string;
  readonly port: string;
}

export function proxyTargetOf(url: URL): ProxyTarget {
  return Object.freeze({ protocol: url.protocol, host: url.host, hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port });
}

export class Upstream implements Candidate {
  readonly id: string;
  readonly url: URL;
  /** `url` pre-parsed for http-proxy. */
  readonly proxyTarget: ProxyTarget;
  /** Who put it in the pool; the config file or an admin takes over a discovered entry (Pool.add). */
  source: UpstreamSource;
  /** Inference traffic only. */
  readonly agent: HttpAgent;
  /** Health checks, index refreshes and repository fan-out: never queued behind inference sockets. */
  readonly controlAgent: HttpAgent;
  readonly breaker: Breaker;
  weight: number;
  inFlight = 0;
  /** Slots handed to queued requests that have not resumed yet: counted against the cap like leases. */
  reserved = 0;
  queueDepth = 0;
  /** Admitted by active readiness checks. */
  ready = false;
  /** Drained by an operator (or a worker withdrawing): no new requests. */
  draining = false;
  consecutiveFailures = 0;
  consecutiveSuccesses = 0;
  lastCheckError = '';
  /** model → version → metadata (undefined until fetched). */
  models = new Map<string, Map<string, ModelMetadata | undefined>>();
  readonly #latency: PeakEwma;
  readonly #now: () => number;
  readonly #onRelease: (upstream: Upstream) => void;

  constructor(options: UpstreamOptions) {
    this.url = new URL(normaliseUrl(options.url));
    this.id = upstreamId(this.url.origin);
    this.proxyTarget = proxyTargetOf(this.url);
    this.source = options.source;
    this.weight = options.weight;
    this.#now = options.now;
    this.#onRelease = options.onRelease;
    this.#latency = new PeakEwma({ decayMs: options.config.balancing.ewmaDecayMs });
    // Keep-alive, with idle sockets closed well before the worker's own keep-alive timeout (65 s),
    // so a request never races a socket the worker is closing. The inference agent has no socket
    // cap of its own: the in-flight cap (leases, slots handed out by the pool's wait queue) is the
    // one admission bound, and an agent cap equal to it turned any overshoot into a hidden queue
    // that no deadline-aware code could see (under overload, requests sat there until 504).
    // Health checks get an agent of their own, so they never wait behind inference.
    const inference = { keepAlive: true, maxFreeSockets: 64, timeout: 30_000, scheduling: 'lifo' as const };
    const control = { keepAlive: true, maxSockets: 4, maxFreeSockets: 1, timeout: 30_000 };
    const tls = { ca: options.ca, rejectUnauthorized: options.config.upstreamTls.rejectUnauthorized };
    const https = this.url.protocol === 'https:';
    this.agent = https ? new HttpsAgent({ ...inference, ...tls }) : new HttpAgent(inference);
    this.controlAgent = https ? new HttpsAgent({ ...control, ...tls }) : new HttpAgent(control);
    this.breaker = createBreaker(options.config.breaker, (state) => options.onBreakerTransition(this, state));
  }

  get latencyMs(): number {
    return this.#latency.value(this.#now());
  }

  recordLatency(ms: number, now: number): void {
    this.#latency.observe(ms, now);
  }

  onRelease(): void {
    this.#onRelease(this);
  }

  lease(): Lease {
    return new Lease(this, this.#now());
  }

  serves(model: string, version: string | undefined): boolean {
    const versions = this.models.get(model);
    return versions !== undefined && (version === undefined || versions.has(version));
  }

  /**
   * Closes the worker's sockets. A request still connecting when this runs (a health check that was
   * under way) would hand its socket back to the closed agent's idle pool, where it would linger
   * until the idle timeout: such late sockets are destroyed as soon as they come free.
   */
  close(): void {
    this.breaker.shutdown();
    for (const agent of [this.agent, this.controlAgent]) {
      agent.on('free', destroySocket);
      agent.destroy();
    }
  }
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}
