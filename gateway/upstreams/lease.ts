/**
 * An in-flight slot on an upstream: taken when a request is sent, released exactly once when the
 * response ends, fails or is aborted. Releasing records the latency sample the balancers read.
 * (tower `load::PendingRequests`: the count is the number of live handles.)
 */
export interface LeaseTarget {
  inFlight: number;
  recordLatency(ms: number, now: number): void;
  onRelease(): void;
}

export class Lease {
  readonly #target: LeaseTarget;
  readonly #startedAt: number;
  #released = false;

  constructor(target: LeaseTarget, now: number) {
    this.#target = target;
    this.#startedAt = now;
    target.inFlight++;
  }

  get released(): boolean {
    return this.#released;
  }

  /** Idempotent: only the first call counts. `now` given = record the elapsed time as a latency sample. */
  release(now?: number): void {
    if (this.#released) return;
    this.#released = true;
    this.#target.inFlight--;
    if (now !== undefined) this.#target.recordLatency(now - this.#startedAt, now);
    this.#target.onRelease();
  }
}
