/**
 * DNS discovery: a hostname resolved every `intervalMs` gives a set of workers — typically a
 * Kubernetes headless Service, whose name resolves to one A/AAAA record per ready pod. Each address
 * becomes a pool entry `http://<ip>:<port>` with source 'dns'; with `srv: true` the name is an SRV
 * name (`_http._tcp.workers.ns.svc.cluster.local`) and each target's addresses and port are used.
 *
 * Answers are read with node:dns/promises (c-ares): real DNS queries, no /etc/hosts, no search
 * domains (give a fully qualified name, e.g. `workers.infergate.svc.cluster.local`), and no cache
 * of Node's own — every refresh asks the resolver (CoreDNS caches for its own TTL, 5-30 s).
 *
 * What counts as an answer:
 * - addresses, or an authoritative "no such name / no such record" (ENOTFOUND, ENODATA): the set
 *   is now exactly those addresses (possibly none: a Service scaled to zero);
 * - any other failure (timeout, SERVFAIL, refused, no resolver): not an answer — the current set
 *   stays, and the next refresh tries again.
 * An address missing from `removeAfterMisses` answers in a row (default 2) is removed: one odd
 * answer (a resolver returning a subset, a transient NXDOMAIN during a rollout) never empties the
 * pool, and a dead worker is anyway out of rotation by then through the pool's readiness checks.
 *
 * @example
 *   const dns = new DnsDiscovery({ pool: gateway.pool, name: 'workers.infergate.svc.cluster.local', port: 9001, logger });
 *   await dns.start(); // first resolution done (or failed and logged)
 *   await dns.stop();
 */
import { isIP } from 'node:net';
import { Resolver } from 'node:dns/promises';
import type { Logger } from '../../../shared/logger.ts';
import { DiscoveryMembership, type DiscoveryPool } from './membership.ts';

/** The resolver calls used; node:dns/promises' Resolver satisfies it, tests pass fakes. */
export interface DnsResolver {
  resolve4(hostname: string): Promise<string[]>;
  resolve6(hostname: string): Promise<string[]>;
  resolveSrv(hostname: string): Promise<Array<{ name: string; port: number }>>;
}

export const DEFAULT_DNS_INTERVAL_MS = 5000;

export interface DnsDiscoveryOptions {
  /** The name to resolve, fully qualified (no search domains are applied). */
  name: string;
  /** Port of every address (A/AAAA mode); ignored with `srv` (the records carry ports). */
  port?: number;
  /** Resolve `name` as SRV records, then each target's addresses. Default false. */
  srv?: boolean;
  /** Address families: 4 (A), 6 (AAAA) or 'any' (both). Default 'any'. */
  family?: 4 | 6 | 'any';
  /** Scheme of the worker URLs; default 'http'. */
  scheme?: 'http' | 'https';
  /** Default 5000 ms. */
  intervalMs?: number;
  /** Consecutive answers without an address before its worker is removed; default 2. */
  removeAfterMisses?: number;
  /** DNS servers ('10.96.0.10', '127.0.0.1:5353'); default the system's (/etc/resolv.conf). */
  servers?: readonly string[];
  /** Per-query timeout of the default resolver; default 2000 ms (2 tries). */
  timeoutMs?: number;
  /** Replaces the default node:dns/promises Resolver (tests). */
  resolver?: DnsResolver;
  /** Pool weight of each discovered worker; default 1. */
  weight?: number;
  pool: DiscoveryPool;
  /** Shared with registry discovery so a URL both see stays while either does; default: a private one. */
  membership?: DiscoveryMembership;
  logger: Logger;
}

/** Errors that are an answer ("nothing there"), not a failure to get one. */
const EMPTY_ANSWER = new Set(['ENOTFOUND', 'ENODATA']);

export class DnsDiscovery {
  readonly #options: DnsDiscoveryOptions;
  readonly #resolver: DnsResolver;
  readonly #membership: DiscoveryMembership;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #removeAfterMisses: number;
  /** url → answers in a row it was missing from (0 = in the last one). */
  readonly #misses = new Map<string, number>();
  #failing = false;
  #running: Promise<boolean> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #stopped = false;

  constructor(options: DnsDiscoveryOptions) {
    if (options.name === '') throw new Error('dns discovery needs a name');
    if (options.srv !== true && (options.port === undefined || !Number.isInteger(options.port) || options.port < 1 || options.port > 65_535)) {
      throw new Error(`dns discovery of '${options.name}' needs a port (1-65535), or srv: true`);
    }
    this.#options = options;
    this.#intervalMs = options.intervalMs ?? DEFAULT_DNS_INTERVAL_MS;
    this.#removeAfterMisses = options.removeAfterMisses ?? 2;
    if (!(this.#intervalMs >= 50)) throw new Error('intervalMs must be at least 50');
    if (!Number.isInteger(this.#removeAfterMisses) || this.#removeAfterMisses < 1) throw new Error('removeAfterMisses must be a positive integer');
    this.#logger = options.logger.child({ component: 'dns-discovery', name: options.name });
    this.#membership = options.membership ?? new DiscoveryMembership(options.pool, this.#logger);
    this.#resolver = options.resolver ?? defaultResolver(options);
  }

  /** Resolves once (failures are logged, never thrown) and starts the periodic refresh. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.refresh();
    this.#schedule();
  }

  /** Stops refreshing; the pool keeps the workers it has. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** The worker URLs this discovery currently provides. */
  urls(): string[] {
    return [...this.#misses.keys()].sort();
  }

  /**
   * Resolves now and applies the answer; concurrent calls share one run. Resolves false when no
   * answer came (the current set is kept).
   */
  refresh(): Promise<boolean> {
    if (this.#stopped) return Promise.resolve(false);
    this.#running ??= this.#refresh().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #refresh(): Promise<boolean> {
    let found: Set<string>;
    try {
      found = await this.#resolve();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!this.#failing) this.#logger.warn({ code, err: (err as Error).message }, 'DNS discovery got no answer; keeping the current workers and retrying');
      this.#failing = true;
      return false;
    }
    if (this.#stopped) return false;
    if (this.#failing) this.#logger.info({ workers: found.size }, 'DNS discovery answering again');
    this.#failing = false;
    for (const url of found) this.#misses.set(url, 0);
    for (const [url, misses] of this.#misses) {
      if (found.has(url)) continue;
      if (misses + 1 >= this.#removeAfterMisses) this.#misses.delete(url);
      else this.#misses.set(url, misses + 1);
    }
    const wanted = new Map([...this.#misses.keys()].map((url) => [url, this.#options.weight ?? 1]));
    const { added, removed } = this.#membership.reconcile('dns', wanted);
    if (added.length > 0 || removed.length > 0) this.#logger.info({ added, removed, resolved: found.size }, 'DNS workers changed');
    return true;
  }

  async #resolve(): Promise<Set<string>> {
    const { name, srv, scheme = 'http' } = this.#options;
    const targets: Array<{ host: string; port: number }> = srv === true
      ? (await emptyIfNone(this.#resolver.resolveSrv(name))).map((r) => ({ host: r.name, port: r.port }))
      : [{ host: name, port: this.#options.port! }];
    const urls = new Set<string>();
    await Promise.all(targets.map(async ({ host, port }) => {
      for (const address of await this.#addresses(host)) urls.add(`${scheme}://${isIP(address) === 6 ? `[${address}]` : address}:${port}`);
    }));
    return urls;
  }

  async #addresses(host: string): Promise<string[]> {
    if (isIP(host) !== 0) return [host];
    const family = this.#options.family ?? 'any';
    const [v4, v6] = await Promise.all([
      family === 6 ? [] : emptyIfNone(this.#resolver.resolve4(host)),
      family === 4 ? [] : emptyIfNone(this.#resolver.resolve6(host)),
    ]);
    return [...v4, ...v6];
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.refresh().finally(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }
}

async function emptyIfNone<T>(answer: Promise<T[]>): Promise<T[]> {
  try {
    return await answer;
  } catch (err) {
    if (EMPTY_ANSWER.has((err as NodeJS.ErrnoException).code ?? '')) return [];
    throw err;
  }
}

function defaultResolver(options: DnsDiscoveryOptions): DnsResolver {
  const resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: 2 });
  if (options.servers !== undefined && options.servers.length > 0) resolver.setServers([...options.servers]);
  return resolver;
}
