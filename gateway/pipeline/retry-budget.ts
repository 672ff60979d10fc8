/**
 * A retry budget (Finagle's RetryBudget): retries may add at most `ratio` of the recent request
 * volume, plus `minPerSecond` so a quiet gateway can still retry. Without it, retries multiply load
 * exactly when workers are failing. Counts live in a ring of one-second buckets over `windowS`.
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #minPerSecond: number;
  readonly #windowS: number;
  readonly #requests: number[];
  readonly #retries: number[];
  #second = -1;

  constructor(options: { ratio: number; minPerSecond: number; windowS?: number }) {
    this.#ratio = options.ratio;
    this.#minPerSecond = options.minPerSecond;
    this.#windowS = options.windowS ?? 10;
    this.#requests = new Array<number>(this.#windowS).fill(0);
    this.#retries = new Array<number>(this.#windowS).fill(0);
  }

  recordRequest(nowMs: number): void {
    this.#requests[this.#advance(nowMs)]!++;
  }

  /** Takes one retry from the budget if there is room; false means do not retry. */
  tryRetry(nowMs: number): boolean {
    const slot = this.#advance(nowMs);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < this.#windowS; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    if (retries >= this.#minPerSecond * this.#windowS + this.#ratio * requests) return false;
    this.#retries[slot]!++;
    return true;
  }

  #advance(nowMs: number): number {
    const second = Math.floor(nowMs / 1000);
    if (this.#second < 0) this.#second = second;
    // Clear the buckets of the seconds that passed since the last call (at most the whole ring).
    for (let s = this.#second + 1; s <= second && s <= this.#second + this.#windowS; s++) {
      this.#requests[s % this.#windowS] = 0;
      this.#retries[s % this.#windowS] = 0;
    }
    if (second > this.#second) this.#second = second;
    return second % this.#windowS;
  }
}
