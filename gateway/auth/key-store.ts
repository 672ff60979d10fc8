/**
 * Where API-key records live. Two implementations share this interface and one conformance suite
 * (test/integration/auth/key-store.test.ts): file-key-store.ts (one machine, no Redis) and
 * redis-key-store.ts (every gateway replica). A store keeps only the SHA-256 digest of a key's
 * secret; the full key is returned once, by `create` and `rotate`, and never again.
 *
 * Failures: a store that cannot reach its backend throws KeyStoreUnavailableError; the caller
 * decides what that means (the gateway fails closed: no new keys are accepted). "No such key" is a
 * value (`undefined`), not an exception.
 *
 * @example
 *   const { record, key } = await store.create({ name: 'ci', models: ['iris'], ratePerSec: 5, burst: 10 });
 *   console.log(key);               // shown once
 *   await store.revoke(record.id);  // every replica's cache is told through onInvalidate
 */
import { digest, displayPrefix, generateApiKey } from './api-key.ts';

/** Everything the store knows about a key. Times are epoch milliseconds. */
export interface KeyRecord {
  id: string;
  /** Operator's label, e.g. "ci-pipeline". */
  name: string;
  /** SHA-256 of the secret, hex. Never the secret itself. */
  digest: string;
  /** `igk_<id>_` plus the first 4 characters of the secret, for lists and logs. */
  displayPrefix: string;
  /** Models the key may use; '*' for all. */
  models: readonly string[] | '*';
  /** The key's own rate plan; when absent, `plan` or the config default applies. */
  ratePerSec?: number;
  burst?: number;
  /** A named rate plan from the gateway config. */
  plan?: string;
  createdAt: number;
  /** Approximate: touches are batched (see KeyStoreOptions.touchFlushMs). */
  lastUsedAt?: number;
  expiresAt?: number;
  revokedAt?: number;
  /** A rotated-out key stays valid until then. */
  graceUntil?: number;
  /** The id of the key that replaced this one (rotation). */
  replacedBy?: string;
  /** The id of the key this one replaced (rotation). */
  rotatedFrom?: string;
}

export interface CreateKeyInput {
  name: string;
  models: readonly string[] | '*';
  ratePerSec?: number;
  burst?: number;
  plan?: string;
  expiresAt?: number;
}

export interface CreatedKey {
  record: KeyRecord;
  /** The full key: returned once, never stored. */
  key: string;
}

/** Called with the id whose record changed, or undefined when anything may have changed. */
export type InvalidationListener = (id: string | undefined) => void;

export interface KeyStore {
  /** Makes a new key. */
  create(input: CreateKeyInput): Promise<CreatedKey>;
  get(id: string): Promise<KeyRecord | undefined>;
  /** Every record, revoked and expired ones included, oldest first. */
  list(): Promise<KeyRecord[]>;
  /** Marks the key revoked (idempotent: a second revoke keeps the first time). Undefined if unknown. */
  revoke(id: string): Promise<KeyRecord | undefined>;
  /**
   * Replaces a key with a new one (new id and secret, same name, models and plan); the old key stays
   * valid until now + graceMs. Undefined if unknown; KeyStateError if it is revoked or already rotated.
   */
  rotate(id: string, graceMs: number): Promise<CreatedKey | undefined>;
  /** Records a use. Never throws and never waits: writes are batched and failures dropped. */
  touch(id: string, now: number): void;
  /** Subscribes a cache to changes made here or by any other process; returns the unsubscribe. */
  onInvalidate(listener: InvalidationListener): () => void;
  /** Flushes pending touches and releases watchers and connections. */
  close(): Promise<void>;
}

/** Options both implementations take. */
export interface KeyStoreOptions {
  /** Wall clock, epoch ms (createdAt, grace periods). Default Date.now. */
  now?: () => number;
  /** How often batched last-used times are written. Default 10 000 ms. */
  touchFlushMs?: number;
}

/** The backend cannot be reached (or did not answer in time). The gateway maps it to 503. */
export class KeyStoreUnavailableError extends Error {
  override name = 'KeyStoreUnavailableError';
}

/** The key exists but the operation does not apply to it (e.g. rotating a revoked key). */
export class KeyStateError extends Error {
  override name = 'KeyStateError';
}

/** Why a record does not authenticate at `now`, or undefined when it is live. */
export function keyStatus(record: KeyRecord, now: number): 'revoked' | 'expired' | undefined {
  if (record.revokedAt !== undefined && record.revokedAt <= now) return 'revoked';
  if (record.expiresAt !== undefined && record.expiresAt <= now) return 'expired';
  if (record.graceUntil !== undefined && record.graceUntil <= now) return 'expired';
  return undefined;
}

/** Validates create input; the stores call it so both reject the same things. */
export function checkCreateInput(input: CreateKeyInput): void {
  if (typeof input.name !== 'string' || input.name.trim() === '' || input.name.length > 200) throw new TypeError('a key needs a name of 1 to 200 characters');
  if (input.models !== '*' && (!Array.isArray(input.models) || input.models.some((m) => typeof m !== 'string' || m === ''))) {
    throw new TypeError("models must be '*' or a list of model names");
  }
  if (input.ratePerSec !== undefined && !(Number.isFinite(input.ratePerSec) && input.ratePerSec > 0)) throw new TypeError('ratePerSec must be a positive number');
  if (input.burst !== undefined && !(Number.isInteger(input.burst) && input.burst >= 1)) throw new TypeError('burst must be a whole number ≥ 1');
  if (input.burst !== undefined && input.ratePerSec === undefined) throw new TypeError('burst needs ratePerSec as well');
  if (input.plan !== undefined && (typeof input.plan !== 'string' || input.plan === '')) throw new TypeError('plan must be a non-empty name');
  if (input.expiresAt !== undefined && !Number.isFinite(input.expiresAt)) throw new TypeError('expiresAt must be a time in epoch milliseconds');
}

/** A new record and its key (the secret only in `key`). Shared by the implementations. */
export function mintKey(input: CreateKeyInput, now: number, rotatedFrom?: string): CreatedKey {
  const { id, secret, key } = generateApiKey();
  const record: KeyRecord = {
    id,
    name: input.name,
    digest: digest(secret),
    displayPrefix: displayPrefix(id, secret),
    models: input.models === '*' ? '*' : [...input.models],
    ...(input.ratePerSec !== undefined && { ratePerSec: input.ratePerSec }),
    ...(input.burst !== undefined && { burst: input.burst }),
    ...(input.plan !== undefined && { plan: input.plan }),
    createdAt: now,
    ...(input.expiresAt !== undefined && { expiresAt: input.expiresAt }),
    ...(rotatedFrom !== undefined && { rotatedFrom }),
  };
  return { record, key };
}

/** Why `record` cannot be rotated at `now`, or undefined when it can. */
export function rotationRefusal(record: KeyRecord, now: number): string | undefined {
  if (record.replacedBy !== undefined) return `key ${record.id} was already rotated (replaced by ${record.replacedBy})`;
  const status = keyStatus(record, now);
  return status === undefined ? undefined : `key ${record.id} is ${status}`;
}

/** A small listener set, shared by the implementations. */
export class InvalidationHub {
  readonly #listeners = new Set<InvalidationListener>();

  add(listener: InvalidationListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  emit(id: string | undefined): void {
    for (const listener of this.#listeners) {
      try {
        listener(id);
      } catch {
        // A failing cache must not stop the others from hearing about a revocation.
      }
    }
  }
}

const OPTIONAL_NUMBERS = ['ratePerSec', 'burst', 'lastUsedAt', 'expiresAt', 'revokedAt', 'graceUntil'] as const;
const OPTIONAL_STRINGS = ['plan', 'replacedBy', 'rotatedFrom'] as const;

/**
 * A record read back from storage, checked field by field; undefined when it is not one (a
 * hand-edited file, a foreign Redis hash). Unknown fields are dropped.
 */
export function parseKeyRecord(value: unknown): KeyRecord | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown>;
  const isString = (x: unknown): x is string => typeof x === 'string' && x !== '';
  const isNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  if (!isString(v.id) || typeof v.name !== 'string' || !isString(v.displayPrefix) || !isNumber(v.createdAt)) return undefined;
  if (typeof v.digest !== 'string' || !/^[0-9a-f]{64}$/.test(v.digest)) return undefined;
  const models = v.models === '*' ? '*' : Array.isArray(v.models) && v.models.every(isString) ? [...(v.models as string[])] : undefined;
  if (models === undefined) return undefined;
  const record: KeyRecord = { id: v.id, name: v.name, digest: v.digest, displayPrefix: v.displayPrefix, models, createdAt: v.createdAt };
  for (const field of OPTIONAL_NUMBERS) {
    if (v[field] === undefined) continue;
    if (!isNumber(v[field])) return undefined;
    record[field] = v[field];
  }
  for (const field of OPTIONAL_STRINGS) {
    if (v[field] === undefined) continue;
    if (!isString(v[field])) return undefined;
    record[field] = v[field];
  }
  return record;
}

/**
 * Last-used times, batched: `touch` only records the latest time per key in memory, and `write`
 * receives the batch every `flushMs` (and once more on `stop`). Both key stores use it, so a
 * request never waits on a write and a busy key costs one write per period, not one per request.
 */
export class TouchBatcher {
  readonly #pending = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  readonly #write: (touches: ReadonlyMap<string, number>) => Promise<void>;
  #stopped = false;

  constructor(flushMs: number, write: (touches: ReadonlyMap<string, number>) => Promise<void>) {
    this.#write = write;
    this.#timer = setInterval(() => void this.flush(), flushMs);
    this.#timer.unref();
  }

  touch(id: string, at: number): void {
    if (!this.#stopped) this.#pending.set(id, Math.max(at, this.#pending.get(id) ?? 0));
  }

  /** Hands the pending batch to `write`; `write` reports its own failures (times are advisory). */
  async flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = new Map(this.#pending);
    this.#pending.clear();
    await this.#write(batch);
  }

  /** Stops the timer and writes what is pending. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.flush();
  }
}
