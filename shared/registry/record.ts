/**
 * The registry record a worker keeps alive in Redis, and the messages it publishes when it joins or
 * leaves. Plain data and its (de)serialisation only: the Redis side lives in worker/registration.ts
 * and gateway/upstreams/discovery/.
 *
 * Parsing is lenient about what it does not know (extra fields are ignored, so a newer worker can add
 * some without breaking an older gateway) and strict about what it needs (a record without a valid
 * id or http(s) URL is dropped, never half-used).
 *
 * @example
 *   const text = encodeRecord({ id: 'w-1', url: 'http://10.0.0.7:9001', models: { iris: ['1'] },
 *                               capacity: 8, startedAt: Date.now(), version: '0.1.0' });
 *   parseRecord(text)?.url; // 'http://10.0.0.7:9001'
 */

export interface WorkerRecord {
  /** The worker's id (its X-Infergate-Worker), unique in the registry. */
  id: string;
  /** Where gateways reach it: an http(s) origin, e.g. http://10.0.0.7:9001 */
  url: string;
  /** Model name → versions ready on the worker (informative: gateways still read the worker's index). */
  models: Record<string, string[]>;
  /** Requests the worker can run at once (e.g. its cores); a gateway may weight by it. */
  capacity: number;
  /** Epoch ms when the worker process started. */
  startedAt: number;
  /** The infergate version the worker runs. */
  version: string;
}

export type RegistryMessage =
  | { type: 'join'; record: WorkerRecord }
  | { type: 'leave'; id: string; url: string };

const ID = /^[\w.:@/+=-]{1,128}$/;

export function encodeRecord(record: WorkerRecord): string {
  return JSON.stringify(record);
}

/** The record in `text`, or undefined when it is not one (bad JSON, missing or invalid fields). */
export function parseRecord(text: string | null | undefined): WorkerRecord | undefined {
  if (typeof text !== 'string') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  return toRecord(raw);
}

export function encodeMessage(message: RegistryMessage): string {
  return JSON.stringify(message);
}

export function parseMessage(text: string): RegistryMessage | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(raw)) return undefined;
  if (raw.type === 'join') {
    const record = toRecord(raw.record);
    return record === undefined ? undefined : { type: 'join', record };
  }
  if (raw.type === 'leave' && typeof raw.id === 'string' && ID.test(raw.id)) {
    const url = originOf(raw.url);
    return url === undefined ? undefined : { type: 'leave', id: raw.id, url };
  }
  return undefined;
}

/** Whether `id` may name a worker in the registry (it becomes part of a Redis key). */
export function isValidWorkerId(id: string): boolean {
  return ID.test(id);
}

/** The http(s) origin of `value`, or undefined: records carry origins only (the pool dedupes by them). */
export function originOf(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

function toRecord(raw: unknown): WorkerRecord | undefined {
  if (!isObject(raw) || typeof raw.id !== 'string' || !ID.test(raw.id)) return undefined;
  const url = originOf(raw.url);
  if (url === undefined) return undefined;
  const models: Record<string, string[]> = {};
  if (isObject(raw.models)) {
    for (const [name, versions] of Object.entries(raw.models)) {
      if (Array.isArray(versions)) models[name] = versions.filter((v): v is string => typeof v === 'string');
    }
  }
  const capacity = typeof raw.capacity === 'number' && Number.isFinite(raw.capacity) && raw.capacity > 0 ? raw.capacity : 1;
  const startedAt = typeof raw.startedAt === 'number' && Number.isFinite(raw.startedAt) ? raw.startedAt : 0;
  const version = typeof raw.version === 'string' ? raw.version : 'unknown';
  return { id: raw.id, url, models, capacity, startedAt, version };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
