/**
 * Fakes for discovery unit tests: a pool that records every add and remove (deduping by origin, first
 * source wins, as gateway/upstreams/pool.ts does), a registry feed driven by the test, and a DNS
 * resolver whose answers the test sets.
 */
import type { UpstreamSource } from '../../../../gateway/upstreams/upstream.ts';
import type { DiscoveryPool } from '../../../../gateway/upstreams/discovery/membership.ts';
import type { RegistryFeed, RegistryFeedHandlers } from '../../../../gateway/upstreams/discovery/redis-registry-feed.ts';
import type { DnsResolver } from '../../../../gateway/upstreams/discovery/dns-discovery.ts';
import type { RegistryMessage, WorkerRecord } from '../../../../shared/registry/record.ts';

export class FakePool implements DiscoveryPool {
  readonly entries = new Map<string, { source: UpstreamSource; weight: number }>();
  /** '+<url> <source>' and '-<url>' in order. */
  readonly log: string[] = [];

  add(url: string, options: { weight?: number; source: UpstreamSource }): { source: UpstreamSource } {
    const key = new URL(url).origin;
    const existing = this.entries.get(key);
    if (existing !== undefined) return existing;
    const entry = { source: options.source, weight: options.weight ?? 1 };
    this.entries.set(key, entry);
    this.log.push(`+${key} ${options.source}`);
    return entry;
  }

  remove(idOrUrl: string): boolean {
    const key = new URL(idOrUrl).origin;
    if (!this.entries.delete(key)) return false;
    this.log.push(`-${key}`);
    return true;
  }

  get(idOrUrl: string): { source: UpstreamSource } | undefined {
    try {
      return this.entries.get(new URL(idOrUrl).origin);
    } catch {
      return undefined;
    }
  }

  urls(): string[] {
    return [...this.entries.keys()].sort();
  }
}

/** A registry whose contents, availability and messages the test controls. */
export class FakeFeed implements RegistryFeed {
  records = new Map<string, WorkerRecord>();
  down = false;
  snapshots = 0;
  handlers: RegistryFeedHandlers | undefined;
  /** When set, the next snapshot waits for it: lets a test deliver messages mid-snapshot. */
  gate: Promise<void> | undefined;
  closed = false;

  async snapshot(): Promise<WorkerRecord[]> {
    this.snapshots++;
    if (this.down) throw new Error('connect ECONNREFUSED');
    const taken = [...this.records.values()];
    if (this.gate !== undefined) {
      const gate = this.gate;
      this.gate = undefined;
      await gate;
    }
    return taken;
  }

  subscribe(handlers: RegistryFeedHandlers): void {
    this.handlers = handlers;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** A worker registers: its record appears and a join is published. */
  join(record: WorkerRecord, publish = true): void {
    this.records.set(record.id, record);
    if (publish) this.send({ type: 'join', record });
  }

  /** A worker withdraws: its record is deleted and a leave is published. */
  leave(id: string, publish = true): void {
    const record = this.records.get(id);
    this.records.delete(id);
    if (publish && record !== undefined) this.send({ type: 'leave', id, url: record.url });
  }

  send(message: RegistryMessage): void {
    this.handlers?.message(message);
  }
}

export function record(id: string, url: string, extra: Partial<WorkerRecord> = {}): WorkerRecord {
  return { id, url, models: { echo: ['1'] }, capacity: 4, startedAt: 1, version: '0.1.0', ...extra };
}

type Answer = string[] | NodeJS.ErrnoException;

/** DNS answers keyed by `<type> <name>`; a missing key answers ENOTFOUND. */
export class FakeResolver implements DnsResolver {
  readonly answers = new Map<string, Answer | Array<{ name: string; port: number }>>();
  queries: string[] = [];

  set(type: 'A' | 'AAAA' | 'SRV', name: string, answer: Answer | Array<{ name: string; port: number }>): void {
    this.answers.set(`${type} ${name}`, answer);
  }

  resolve4(name: string): Promise<string[]> {
    return this.#answer('A', name) as Promise<string[]>;
  }

  resolve6(name: string): Promise<string[]> {
    return this.#answer('AAAA', name) as Promise<string[]>;
  }

  resolveSrv(name: string): Promise<Array<{ name: string; port: number }>> {
    return this.#answer('SRV', name) as Promise<Array<{ name: string; port: number }>>;
  }

  async #answer(type: string, name: string): Promise<unknown> {
    this.queries.push(`${type} ${name}`);
    const answer = this.answers.get(`${type} ${name}`);
    if (answer === undefined) throw dnsError('ENOTFOUND', name);
    if (answer instanceof Error) throw answer;
    return answer;
  }
}

export function dnsError(code: string, name = 'x'): NodeJS.ErrnoException {
  const err = new Error(`query ${code} ${name}`) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}
