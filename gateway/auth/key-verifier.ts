/**
 * API key → Principal, in front of a KeyStore.
 *
 * Order of checks: the key's shape and checksum first (no store lookup for a typo or a random
 * string), then the record (cached), then the secret's digest in constant time, and only then the
 * record's state — so someone who knows a key id but not its secret learns nothing about it
 * ('mismatch' whatever the state).
 *
 * Caching: a record, or its absence, is cached by id for `cacheTtlMs` (default 2 s), which bounds
 * how long a revocation can go unseen even if the store's invalidation message is lost; the store's
 * `onInvalidate` drops entries at once. Expiry and grace periods are judged against `now()` on every
 * call, so they are exact whatever the cache holds. Concurrent lookups of one id share one store
 * call. An entry invalidated while its lookup was in flight is not cached.
 *
 * The hot path: a cached key is decided synchronously by `verifyCached` (no promise), with the
 * record's digest kept as raw bytes and its principal built once per cache entry.
 *
 * Failure: when the store throws (Redis down) and the id is not freshly cached, `verify` throws
 * that error — the caller answers 503 (fail closed). Cached keys keep working until their TTL.
 *
 * @example
 *   const verifier = createApiKeyVerifier(store, { now: Date.now });
 *   const result = await verifier.verify(headerValue);
 *   if (!result.ok) reply401(result.message);   // result.reason for logs and metrics
 *   else use(result.principal);                 // { subject: 'key:<id>', kind: 'api-key', … }
 */
import { digestBytes, parseApiKey, secretMatches, type ParsedApiKey } from './api-key.ts';
import { keyStatus, type KeyRecord, type KeyStore } from './key-store.ts';
import type { Principal } from './principal.ts';

export type ApiKeyFailureReason = 'malformed' | 'unknown' | 'revoked' | 'expired' | 'mismatch';

export type ApiKeyVerification =
  | { ok: true; principal: Principal; keyId: string }
  | { ok: false; reason: ApiKeyFailureReason; /** Safe to send to the client. */ message: string };

export interface ApiKeyVerifierOptions {
  /** How long a record (or its absence) is trusted without asking the store. Default 2000 ms. */
  cacheTtlMs?: number;
  /** The same for unknown ids. Default: cacheTtlMs. */
  negativeCacheTtlMs?: number;
  /** Entries kept at most (least recently used dropped first). Default 10 000. */
  maxCacheEntries?: number;
  /** Wall clock, epoch ms (compared with expiresAt and graceUntil). Default Date.now. */
  now?: () => number;
  /** Record last-used times through store.touch. Default true. */
  touch?: boolean;
}

export interface ApiKeyVerifierStats {
  /** Lookups that went to the store. */
  storeLookups: number;
  cacheHits: number;
  /** Rejected by shape or checksum, without a lookup. */
  malformed: number;
}

export interface ApiKeyVerifier {
  /** Never throws for a bad key; throws the store's error when it cannot tell (fail closed). */
  verify(key: string): Promise<ApiKeyVerification>;
  /**
   * The same answer without a promise when no store lookup is needed (a malformed key, or its id
   * freshly cached); undefined when only `verify` can tell.
   */
  verifyCached(key: string): ApiKeyVerification | undefined;
  stats(): ApiKeyVerifierStats;
  /** Stops listening to the store's invalidations (the store itself is the caller's to close). */
  close(): void;
}

/** Client-facing messages: the same for every key, nothing about the store. */
const MESSAGES: Record<ApiKeyFailureReason, string> = {
  malformed: 'the API key is malformed',
  unknown: 'the API key is not valid',
  mismatch: 'the API key is not valid',
  revoked: 'the API key has been revoked',
  expired: 'the API key has expired',
};

interface Entry {
  record: KeyRecord | undefined;
  until: number;
  /** The record's digest as bytes, decoded once. */
  digest: Buffer | undefined;
  /** Built on first success, then shared by every request with this key. */
  principal: Principal | undefined;
}

export function createApiKeyVerifier(store: KeyStore, options: ApiKeyVerifierOptions = {}): ApiKeyVerifier {
  const cacheTtlMs = options.cacheTtlMs ?? 2000;
  const negativeTtlMs = options.negativeCacheTtlMs ?? cacheTtlMs;
  const maxEntries = options.maxCacheEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const touch = options.touch ?? true;
  if (!(cacheTtlMs >= 0 && negativeTtlMs >= 0)) throw new TypeError('cache TTLs must be ≥ 0');
  if (!(Number.isInteger(maxEntries) && maxEntries >= 1)) throw new TypeError('maxCacheEntries must be a whole number ≥ 1');

  // A Map iterates in insertion order: re-inserting on a hit keeps the least recently used first.
  const cache = new Map<string, Entry>();
  const inFlight = new Map<string, Promise<KeyRecord | undefined>>();
  /** Ids invalidated while their lookup was in flight: the answer may predate the change. */
  const stale = new Set<string>();
  const stats: ApiKeyVerifierStats = { storeLookups: 0, cacheHits: 0, malformed: 0 };

  const unsubscribe = store.onInvalidate((id) => {
    if (id === undefined) {
      cache.clear();
      for (const pending of inFlight.keys()) stale.add(pending);
    } else {
      cache.delete(id);
      if (inFlight.has(id)) stale.add(id);
    }
  });

  const remember = (id: string, record: KeyRecord | undefined, at: number): void => {
    cache.delete(id);
    cache.set(id, entryOf(record, at + (record === undefined ? negativeTtlMs : cacheTtlMs)));
    if (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
  };

  /** The fresh cache entry for `id`, moved to the most recently used end; undefined on a miss. */
  const cached = (id: string, at: number): Entry | undefined => {
    const entry = cache.get(id);
    if (entry === undefined || entry.until <= at) return undefined;
    stats.cacheHits++;
    cache.delete(id);
    cache.set(id, entry);
    return entry;
  };

  const lookup = (id: string, at: number): Promise<Entry> => {
    let pending = inFlight.get(id);
    if (pending === undefined) {
      stats.storeLookups++;
      pending = store.get(id).then((record) => {
        if (!stale.has(id)) remember(id, record, now());
        return record;
      }).finally(() => {
        inFlight.delete(id);
        stale.delete(id);
      });
      inFlight.set(id, pending);
    }
    // Concurrent callers share the store call; each judges against an entry of its own when the
    // answer was not cached (invalidated while in flight).
    return pending.then((record) => cache.get(id) ?? entryOf(record, at));
  };

  const fail = (reason: ApiKeyFailureReason): ApiKeyVerification => ({ ok: false, reason, message: MESSAGES[reason] });

  const judge = (parsed: ParsedApiKey, entry: Entry): ApiKeyVerification => {
    const record = entry.record;
    if (record === undefined) return fail('unknown');
    if (!secretMatches(parsed.secret, entry.digest)) return fail('mismatch');
    const at = now();
    const status = keyStatus(record, at);
    if (status !== undefined) return fail(status);
    if (touch) store.touch(record.id, at);
    entry.principal ??= principalOf(record);
    return { ok: true, principal: entry.principal, keyId: record.id };
  };

  const parse = (text: string): ParsedApiKey | undefined => {
    const parsed = parseApiKey(text);
    if (parsed === undefined) stats.malformed++;
    return parsed;
  };

  return {
    verifyCached(text) {
      const parsed = parse(text);
      if (parsed === undefined) return fail('malformed');
      const entry = cached(parsed.id, now());
      return entry === undefined ? undefined : judge(parsed, entry);
    },
    async verify(text) {
      const parsed = parse(text);
      if (parsed === undefined) return fail('malformed');
      const at = now();
      return judge(parsed, cached(parsed.id, at) ?? await lookup(parsed.id, at));
    },
    stats: () => ({ ...stats }),
    close: unsubscribe,
  };
}

function entryOf(record: KeyRecord | undefined, until: number): Entry {
  return { record, until, digest: record === undefined ? undefined : digestBytes(record.digest), principal: undefined };
}

/** The principal an API key stands for: its own rate and burst when set, else its named plan. */
export function principalOf(record: KeyRecord): Principal {
  const plan = record.ratePerSec !== undefined
    ? { ratePerSec: record.ratePerSec, burst: record.burst ?? Math.max(1, Math.ceil(record.ratePerSec)) }
    : record.plan;
  return { subject: `key:${record.id}`, kind: 'api-key', models: record.models, plan };
}
