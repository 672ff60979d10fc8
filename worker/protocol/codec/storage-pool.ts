/**
 * Reusable storage for decoded binary inputs. A cifar10 request decodes 12 KB of FP32 out of its
 * body; allocating that afresh for every request makes ArrayBuffer memory churn as fast as the
 * JavaScript heap, and V8 counts both against the same limit: the worker's main thread ran a full
 * mark-compact every ~400 requests, most of it for this (docs/performance-worker.md). Buffers here
 * go back to the pool when their request has been answered, and the next request of the same size
 * takes one: the steady state allocates none.
 *
 * Only what the caller releases comes back, and only once the request is over: by then its run has
 * been copied into the session thread's shared memory (or merged into a batch, itself a copy), or
 * the request has settled and its result would be discarded.
 *
 * @example
 *   const buffer = pool.acquire(12288);
 *   // ... decode into it, run, answer ...
 *   pool.release(buffer);
 */
export class StoragePool {
  /** Free buffers by exact byte length. */
  readonly #free = new Map<number, ArrayBuffer[]>();
  readonly #maxBytes: number;
  readonly #maxPerSize: number;
  readonly #maxSizes: number;

  /**
   * @param maxBytes     larger buffers are never kept (a big batch is rare and would pin memory)
   * @param maxPerSize   free buffers kept per size: the requests of that size in flight at once
   * @param maxSizes     distinct sizes kept: requests with ever-changing shapes fall back to allocation
   */
  constructor(maxBytes = 1024 * 1024, maxPerSize = 64, maxSizes = 16) {
    this.#maxBytes = maxBytes;
    this.#maxPerSize = maxPerSize;
    this.#maxSizes = maxSizes;
  }

  /** A buffer of exactly `bytes`: a released one if the pool has one, else a new one. Contents are arbitrary. */
  acquire(bytes: number): ArrayBuffer {
    return this.#free.get(bytes)?.pop() ?? new ArrayBuffer(bytes);
  }

  /** Hands a buffer back; the caller must hold no view on it any more. */
  release(buffer: ArrayBuffer): void {
    const bytes = buffer.byteLength;
    if (bytes === 0 || bytes > this.#maxBytes) return;
    let list = this.#free.get(bytes);
    if (list === undefined) {
      if (this.#free.size >= this.#maxSizes) return;
      list = [];
      this.#free.set(bytes, list);
    }
    if (list.length < this.#maxPerSize) list.push(buffer);
  }
}
