/**
 * Execution slots with a bounded FIFO queue: what a worker with n model instances looks like from
 * outside. At most `concurrency` jobs hold a slot; the rest wait in arrival order, at most
 * `maxQueueSize` of them. A waiting job can leave (deadline, client gone) and frees its place.
 */
export interface SlotOptions {
  /** 0 = unlimited: every job gets a slot at once. */
  concurrency: number;
  maxQueueSize: number;
}

export type Release = () => void;

interface Waiter {
  grant(release: Release): void;
  gone: boolean;
}

export class ExecutionSlots {
  readonly #options: SlotOptions;
  #busy = 0;
  #queue: Waiter[] = [];

  constructor(options: SlotOptions) {
    this.#options = options;
  }

  /** Jobs waiting for a slot (reported to the gateway as X-Infergate-Queue-Depth). */
  get queueDepth(): number {
    return this.#queue.length;
  }

  /**
   * Asks for a slot: `grant` runs with the release function once one is free (at once if one is).
   * Returns undefined when the queue is full, else a function that withdraws a job still waiting.
   */
  acquire(grant: (release: Release) => void): (() => void) | undefined {
    const unlimited = this.#options.concurrency === 0;
    if (unlimited || (this.#busy < this.#options.concurrency && this.#queue.length === 0)) {
      this.#busy++;
      grant(this.#releaser());
      return () => undefined;
    }
    if (this.#queue.length >= this.#options.maxQueueSize) return undefined;
    const waiter: Waiter = { grant, gone: false };
    this.#queue.push(waiter);
    return () => {
      if (waiter.gone) return;
      waiter.gone = true;
      const at = this.#queue.indexOf(waiter);
      if (at >= 0) this.#queue.splice(at, 1);
    };
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#busy--;
      this.#next();
    };
  }

  #next(): void {
    while ((this.#options.concurrency === 0 || this.#busy < this.#options.concurrency) && this.#queue.length > 0) {
      const waiter = this.#queue.shift()!;
      if (waiter.gone) continue;
      waiter.gone = true;
      this.#busy++;
      waiter.grant(this.#releaser());
    }
  }
}
