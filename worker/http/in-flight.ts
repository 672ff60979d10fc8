/**
 * Counts the requests a worker has accepted, from the moment their headers arrive until their
 * response closes (sent or abandoned). A draining worker waits for this count, not for its
 * schedulers, before releasing its models: a request still reading its body has not reached a
 * scheduler yet, and must not find its model gone when it does.
 *
 * @example
 *   inFlight.begin(); res.once('close', () => inFlight.end());
 *   await inFlight.settled(); // then close the repository
 */
export class InFlightRequests {
  #count = 0;
  #waiters: Array<() => void> = [];

  get count(): number {
    return this.#count;
  }

  begin(): void {
    this.#count++;
  }

  end(): void {
    this.#count--;
    if (this.#count === 0) for (const resolve of this.#waiters.splice(0)) resolve();
  }

  /** Resolves once no request is in flight: at once when none is. */
  settled(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
