/**
 * Deadlines for many waiting calls with one timer: every call gets the same deadline length, so
 * calls reach their deadline in the order they were added, and a FIFO with a single timer armed for
 * its oldest entry replaces a timer (and a promise race) per call. When the timer fires, every
 * entry past its deadline that is still waiting expires; entries settled in time are dropped from
 * the front as the sweep reaches them.
 *
 * An expired timer is acted on only after one more turn of the event loop (setImmediate runs after
 * the poll phase has read whatever arrived): a busy loop runs expired timers before it reads the
 * sockets, and a reply that came in time must not lose to its deadline.
 *
 * @example
 *   const deadlines = new DeadlineQueue<Waiting>(50, (w) => w.reject(new Error('too slow')));
 *   const w = { settled: false, deadline: 0, reject };
 *   deadlines.add(w); // sets w.deadline; later: w.settled = true once answered
 */

export interface Deadlined {
  /** Set by `add`: performance.now() past which the entry expires. */
  deadline: number;
  /** Set by the owner once the entry is answered; an expired entry is marked settled too. */
  settled: boolean;
}

export class DeadlineQueue<T extends Deadlined> {
  private entries: T[] = [];
  private head = 0;
  /** A timer (or the setImmediate after it) is pending: one sweep at a time. */
  private armed = false;
  private readonly sweep = (): void => {
    setImmediate(this.expire);
  };
  private readonly expire = (): void => {
    this.armed = false;
    const now = performance.now();
    const { entries } = this;
    let i = this.head;
    for (; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.settled) continue;
      if (entry.deadline > now) break;
      entry.settled = true;
      this.onExpire(entry);
    }
    this.head = i;
    // Compact once the consumed prefix dominates, so the array stays about one deadline's worth long.
    if (i === entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (i > 1024 && i * 2 > entries.length) {
      this.entries = entries.slice(i);
      this.head = 0;
    }
    this.arm();
  };

  constructor(
    private readonly deadlineMs: number,
    private readonly onExpire: (entry: T) => void,
  ) {}

  /** Starts the entry's deadline now. */
  add(entry: T): void {
    entry.deadline = performance.now() + this.deadlineMs;
    this.entries.push(entry);
    if (!this.armed) this.arm();
  }

  private arm(): void {
    const { entries } = this;
    while (this.head < entries.length && entries[this.head]!.settled) this.head++;
    const next = entries[this.head];
    if (next === undefined) return;
    // unref: a pending deadline alone does not keep the process alive (the connection does, while it lasts).
    this.armed = true;
    setTimeout(this.sweep, Math.max(0, next.deadline - performance.now())).unref();
  }
}
