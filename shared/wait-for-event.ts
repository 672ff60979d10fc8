import type { EventEmitter } from 'node:events';
import { once } from 'node:events';

/**
 * Resolves when `emitter` emits `event`, or after `ms` either way: for callers that try once and
 * let their own retry loop handle "not yet" (e.g. a Redis client's 'ready').
 */
export async function waitForEvent(emitter: EventEmitter, event: string, ms: number): Promise<void> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  try {
    await once(emitter, event, { signal: ac.signal });
  } catch {
    // not in time: the caller's next attempt retries
  } finally {
    clearTimeout(timer);
  }
}
