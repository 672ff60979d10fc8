/**
 * "The client went away" for one request: the part of AbortSignal the scheduler uses (`aborted`
 * and 'abort' listeners), without AbortController and EventTarget, which cost several µs per
 * request on the worker's main thread (docs/performance-worker.md).
 */
import type { CancelSignal } from '../scheduler/scheduler.ts';

export class ClientDisconnect implements CancelSignal {
  aborted = false;
  #listeners: Array<() => void> | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.#listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const index = this.#listeners?.indexOf(listener) ?? -1;
    if (index >= 0) this.#listeners!.splice(index, 1);
  }

  /** Marks the request abandoned and calls each listener once. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener();
  }
}
