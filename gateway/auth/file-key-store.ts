/**
 * The embedded key store: one JSON file (default `.infergate/keys.json`), for a single machine with
 * no Redis. The gateway and `infergate keys` may both have it open:
 *
 * - Every change is read-modify-write under a lock file (`<file>.lock`, O_EXCL), so a CLI revocation
 *   and a gateway's batched last-used times never overwrite each other; a lock older than
 *   STALE_LOCK_MS (a crashed writer) is broken.
 * - Writes go to a temp file (mode 0600) that is renamed over the old one, so a reader sees the old
 *   file or the new one, never half of one.
 * - Every open store polls the file (fs.watchFile, `watchIntervalMs`) and reloads on change, telling
 *   its caches which ids changed: a `keys revoke` reaches a running gateway within about one poll
 *   interval, and the verifier's cache TTL bounds it even if the watch misses.
 *
 * The file holds digests and metadata only: `{ "version": 1, "keys": [KeyRecord, …] }`.
 *
 * @example
 *   const store = await openFileKeyStore({ path: '.infergate/keys.json' });
 *   const { key } = await store.create({ name: 'laptop', models: '*' });
 */
import { randomBytes } from 'node:crypto';
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  InvalidationHub,
  KeyStateError,
  KeyStoreUnavailableError,
  checkCreateInput,
  mintKey,
  parseKeyRecord,
  rotationRefusal,
  type CreateKeyInput,
  type CreatedKey,
  type InvalidationListener,
  type KeyRecord,
  type KeyStore,
  type KeyStoreOptions,
  TouchBatcher,
} from './key-store.ts';

export interface FileKeyStoreOptions extends KeyStoreOptions {
  /** The JSON file; created (with its directory, mode 0700) on the first write. */
  path: string;
  /** How often to look for changes by other processes; false = never (one-shot CLI use). Default 500 ms. */
  watchIntervalMs?: number | false;
  /** How long a change may wait for another process's lock before failing. Default 5000 ms. */
  lockTimeoutMs?: number;
  /** Told about a file that cannot be read or parsed (the last good contents stay in use). */
  onError?: (err: Error) => void;
}

const FILE_VERSION = 1;
/** A lock held this long belongs to a writer that died; one write takes milliseconds. */
const STALE_LOCK_MS = 10_000;

export async function openFileKeyStore(options: FileKeyStoreOptions): Promise<KeyStore> {
  const store = new FileKeyStore(options);
  await store.load();
  return store;
}

class FileKeyStore implements KeyStore {
  readonly #path: string;
  readonly #lockPath: string;
  readonly #now: () => number;
  readonly #lockTimeoutMs: number;
  readonly #onError: (err: Error) => void;
  readonly #hub = new InvalidationHub();
  readonly #watchIntervalMs: number | false;
  #records = new Map<string, KeyRecord>();
  /** Changes made by this process, one at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #touches: TouchBatcher;
  #watching = false;
  #closed = false;

  constructor(options: FileKeyStoreOptions) {
    this.#path = options.path;
    this.#lockPath = `${options.path}.lock`;
    this.#now = options.now ?? Date.now;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 5000;
    this.#onError = options.onError ?? (() => {});
    this.#watchIntervalMs = options.watchIntervalMs ?? 500;
    this.#touches = new TouchBatcher(options.touchFlushMs ?? 10_000, (touches) => this.#writeTouches(touches));
  }

  async load(): Promise<void> {
    this.#records = await this.#read();
    if (this.#watchIntervalMs !== false) {
      watchFile(this.#path, { interval: this.#watchIntervalMs, persistent: false }, this.#onFileChange);
      this.#watching = true;
    }
  }

  readonly #onFileChange = (current: Stats, previous: Stats): void => {
    if (this.#closed || (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino && current.size === previous.size)) return;
    // Through the queue, so a reload never lands after (and undoes) one of this process's own changes.
    const reload = (): Promise<void> => this.#read().then((records) => this.#replace(records), (err: Error) => this.#onError(err));
    this.#queue = this.#queue.then(reload, reload);
  };

  async create(input: CreateKeyInput): Promise<CreatedKey> {
    checkCreateInput(input);
    return this.#mutate((records) => {
      const created = mintKey(input, this.#now());
      records.set(created.record.id, created.record);
      return created;
    });
  }

  async get(id: string): Promise<KeyRecord | undefined> {
    return this.#records.get(id);
  }

  async list(): Promise<KeyRecord[]> {
    return [...this.#records.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  async revoke(id: string): Promise<KeyRecord | undefined> {
    return this.#mutate((records) => {
      const record = records.get(id);
      if (record === undefined) return undefined;
      if (record.revokedAt === undefined) records.set(id, { ...record, revokedAt: this.#now() });
      return records.get(id);
    });
  }

  async rotate(id: string, graceMs: number): Promise<CreatedKey | undefined> {
    if (!(Number.isFinite(graceMs) && graceMs >= 0)) throw new TypeError('graceMs must be ≥ 0');
    return this.#mutate((records) => {
      const old = records.get(id);
      if (old === undefined) return undefined;
      const now = this.#now();
      const refusal = rotationRefusal(old, now);
      if (refusal !== undefined) throw new KeyStateError(refusal);
      const created = mintKey(old, now, old.id);
      records.set(old.id, { ...old, graceUntil: now + graceMs, replacedBy: created.record.id });
      records.set(created.record.id, created.record);
      return created;
    });
  }

  touch(id: string, now: number): void {
    this.#touches.touch(id, now);
  }

  onInvalidate(listener: InvalidationListener): () => void {
    return this.#hub.add(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#touches.stop().catch(() => {});
    this.#closed = true;
    if (this.#watching) unwatchFile(this.#path, this.#onFileChange);
    await this.#queue.catch(() => {});
  }

  async #writeTouches(touches: ReadonlyMap<string, number>): Promise<void> {
    if (this.#closed) return;
    await this.#mutate((records) => {
      for (const [id, at] of touches) {
        const record = records.get(id);
        if (record !== undefined && (record.lastUsedAt ?? 0) < at) records.set(id, { ...record, lastUsedAt: at });
      }
    }).catch((err: Error) => this.#onError(err));
  }

  /** Lock, re-read the file, apply `change`, write it back, unlock; then update memory and caches. */
  #mutate<T>(change: (records: Map<string, KeyRecord>) => T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the key store is closed'));
    const run = async (): Promise<T> => {
      const release = await this.#lock();
      let records: Map<string, KeyRecord>;
      let result: T;
      try {
        records = await this.#read();
        result = change(records);
        await this.#write(records);
      } finally {
        await release();
      }
      this.#replace(records);
      return result;
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Installs a new set of records and tells caches which ids changed. */
  #replace(records: Map<string, KeyRecord>): void {
    const previous = this.#records;
    this.#records = records;
    for (const [id, record] of records) {
      const before = previous.get(id);
      if (before === undefined || !sameRecord(before, record)) this.#hub.emit(id);
    }
    for (const id of previous.keys()) if (!records.has(id)) this.#hub.emit(id);
  }

  async #read(): Promise<Map<string, KeyRecord>> {
    let text: string;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw new KeyStoreUnavailableError(`cannot read the key file ${this.#path}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new KeyStoreUnavailableError(`the key file ${this.#path} is not valid JSON: ${(err as Error).message}`);
    }
    const keys = (parsed as { keys?: unknown } | null)?.keys;
    if ((parsed as { version?: unknown } | null)?.version !== FILE_VERSION || !Array.isArray(keys)) {
      throw new KeyStoreUnavailableError(`the key file ${this.#path} is not an infergate key file (version ${FILE_VERSION})`);
    }
    const records = new Map<string, KeyRecord>();
    for (const entry of keys) {
      const record = parseKeyRecord(entry);
      if (record === undefined) this.#onError(new Error(`${this.#path}: skipped an entry that is not a valid key record`));
      else records.set(record.id, record);
    }
    return records;
  }

  async #write(records: Map<string, KeyRecord>): Promise<void> {
    const body = { version: FILE_VERSION, keys: [...records.values()].sort((a, b) => a.createdAt - b.createdAt) };
    const temp = `${this.#path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const handle = await open(temp, 'wx', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify(body, null, 2)}\n`, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.#path);
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw new KeyStoreUnavailableError(`cannot write the key file ${this.#path}: ${(err as Error).message}`);
    }
  }

  /** Takes `<file>.lock` (O_EXCL); resolves with its release. */
  async #lock(): Promise<() => Promise<void>> {
    await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 });
    const deadline = Date.now() + this.#lockTimeoutMs;
    for (;;) {
      try {
        const handle = await open(this.#lockPath, 'wx', 0o600);
        await handle.writeFile(String(process.pid));
        await handle.close();
        return () => unlink(this.#lockPath).catch(() => {});
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new KeyStoreUnavailableError(`cannot lock the key file ${this.#path}: ${(err as Error).message}`);
      }
      const held = await stat(this.#lockPath).catch(() => undefined);
      if (held !== undefined && Date.now() - held.mtimeMs > STALE_LOCK_MS) {
        await unlink(this.#lockPath).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) throw new KeyStoreUnavailableError(`the key file ${this.#path} stayed locked for ${this.#lockTimeoutMs} ms (${this.#lockPath})`);
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    }
  }
}

/** Equal apart from the last-used time, which no cache needs to hear about. */
function sameRecord(a: KeyRecord, b: KeyRecord): boolean {
  return JSON.stringify({ ...a, lastUsedAt: undefined }) === JSON.stringify({ ...b, lastUsedAt: undefined });
}
