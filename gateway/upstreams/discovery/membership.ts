/**
 * Which pool entries the discovery sources (registry, DNS) put there, and may therefore take away.
 *
 * The pool dedupes by URL and keeps the source of whoever added a URL first. A discovery source
 * *claims* the URLs it currently sees and *releases* those it no longer sees; an entry leaves the
 * pool only when no source of this membership claims it any more AND the pool entry came from one
 * of this membership's sources. So:
 * - a URL also listed statically or added through the admin API is never removed by discovery
 *   (its pool entry's source is 'static' or 'admin'), and discovery adding it is a no-op;
 * - with one membership shared by the registry and DNS, a worker both of them see stays while
 *   either still sees it, whichever added it first;
 * - an entry discovery claims but that is missing from the pool (an admin removed it, or a
 *   source outside this membership removed its own entry) is added again at the next `reconcile`:
 *   to take a discovered worker away for good, stop or drain it at its source.
 *
 * Without a shared membership each discovery makes its own, and removes only entries whose source is
 * its own: two sources seeing the same URL then hand it over at the next reconcile of the other.
 *
 * @example
 *   const membership = new DiscoveryMembership(gateway.pool, logger);
 *   membership.reconcile('dns', new Map([['http://10.0.0.7:9001', 1]])); // adds it
 *   membership.reconcile('dns', new Map());                               // removes it
 */
import type { Logger } from '../../../shared/logger.ts';
import { normaliseUrl, type UpstreamSource } from '../upstream.ts';

export type DiscoverySource = Extract<UpstreamSource, 'registry' | 'dns'>;

/** The part of the Pool discovery uses (gateway/upstreams/pool.ts satisfies it); tests pass fakes. */
export interface DiscoveryPool {
  add(url: string, options: { weight?: number; source: UpstreamSource }): { readonly source: UpstreamSource };
  remove(idOrUrl: string): boolean;
  get(idOrUrl: string): { readonly source: UpstreamSource } | undefined;
}

export interface ReconcileResult {
  added: string[];
  removed: string[];
}

export class DiscoveryMembership {
  readonly #pool: DiscoveryPool;
  readonly #logger: Logger | undefined;
  /** url → sources claiming it. */
  readonly #claims = new Map<string, Set<DiscoverySource>>();
  /** Sources that have used this membership: the only pool sources it removes. */
  readonly #sources = new Set<DiscoverySource>();

  constructor(pool: DiscoveryPool, logger?: Logger) {
    this.#pool = pool;
    this.#logger = logger;
  }

  /**
   * Claims `url` for `source` and adds it to the pool unless the pool knows it already.
   * Returns true when the pool gained an entry.
   */
  claim(source: DiscoverySource, url: string, weight = 1): boolean {
    const key = normaliseUrl(url);
    this.#sources.add(source);
    const claimers = this.#claims.get(key) ?? new Set<DiscoverySource>();
    claimers.add(source);
    this.#claims.set(key, claimers);
    if (this.#pool.get(key) !== undefined) return false;
    this.#pool.add(key, { weight, source });
    return true;
  }

  /**
   * Drops `source`'s claim on `url`; removes the pool entry when nothing here claims it any more and
   * the entry came from one of this membership's sources. Returns true when the pool lost an entry.
   */
  release(source: DiscoverySource, url: string): boolean {
    const key = normaliseUrl(url);
    const claimers = this.#claims.get(key);
    if (claimers === undefined || !claimers.delete(source)) return false;
    if (claimers.size > 0) return false;
    this.#claims.delete(key);
    const entry = this.#pool.get(key);
    if (entry === undefined) return false;
    if (!this.#sources.has(entry.source as DiscoverySource)) {
      this.#logger?.debug({ url: key, source, owner: entry.source }, 'discovery no longer sees a worker another source provides; it stays');
      return false;
    }
    return this.#pool.remove(key);
  }

  /** Makes `source`'s claims exactly `wanted` (url → weight): claims the new, releases the gone. */
  reconcile(source: DiscoverySource, wanted: ReadonlyMap<string, number>): ReconcileResult {
    const result: ReconcileResult = { added: [], removed: [] };
    const want = new Map<string, number>();
    for (const [url, weight] of wanted) want.set(normaliseUrl(url), weight);
    for (const url of this.claimed(source)) {
      if (!want.has(url) && this.release(source, url)) result.removed.push(url);
    }
    for (const [url, weight] of want) if (this.claim(source, url, weight)) result.added.push(url);
    return result;
  }

  /** The URLs `source` claims now. */
  claimed(source: DiscoverySource): string[] {
    const out: string[] = [];
    for (const [url, claimers] of this.#claims) if (claimers.has(source)) out.push(url);
    return out;
  }

  /** Releases everything `source` claims (its discovery stopped). */
  releaseAll(source: DiscoverySource): string[] {
    return this.claimed(source).filter((url) => this.release(source, url));
  }
}
