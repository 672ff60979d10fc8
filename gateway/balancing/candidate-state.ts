/**
 * Per-worker state a strategy keeps between picks (round-robin's last turn, weighted round-robin's
 * current weight), keyed by candidate id rather than by position. The candidate list changes between
 * picks — one strategy instance serves every model, each with its own subset of workers; retries
 * exclude the workers already tried; workers come and go — and state keyed by id stays attached
 * to the right worker through all of that (NGINX keeps its `current_weight` on the peer, not on a
 * slot, for the same reason).
 *
 * Entries not seen in any pick for `ttlPicks` picks are swept, so the ids of workers gone for good
 * do not pile up; the sweep runs once per `ttlPicks` picks, so its cost per pick is O(1) amortised.
 */
export interface Seen {
  /** Pick number when this entry's candidate was last handed to the strategy. */
  seenAt: number;
}

export class CandidateState<S extends Seen> {
  readonly #entries = new Map<string, S>();
  readonly #create: () => S;
  readonly #ttlPicks: number;
  #pick = 0;

  constructor(create: () => S, ttlPicks = 65_536) {
    this.#create = create;
    this.#ttlPicks = ttlPicks;
  }

  /** Starts a pick and returns its number (1, 2, …). */
  beginPick(): number {
    const pick = ++this.#pick;
    if (pick % this.#ttlPicks === 0) {
      const horizon = pick - this.#ttlPicks;
      for (const [id, entry] of this.#entries) if (entry.seenAt < horizon) this.#entries.delete(id);
    }
    return pick;
  }

  /** The entry for `id`, created on first sight, marked as seen in the current pick. */
  get(id: string): S {
    let entry = this.#entries.get(id);
    if (entry === undefined) {
      entry = this.#create();
      this.#entries.set(id, entry);
    }
    entry.seenAt = this.#pick;
    return entry;
  }

  /** Number of ids held (for tests of the sweep). */
  get size(): number {
    return this.#entries.size;
  }
}
