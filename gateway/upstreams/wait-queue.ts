/**
 * The bounded FIFO of requests waiting for an in-flight slot (Envoy's `max_pending_requests`,
 * NGINX's upstream `queue`): one list per key (a model, or a model version) so that a slot freed on
 * a worker is offered only to requests that worker can serve, oldest first.
 *
 * - Bound: at most `maxQueued` waiters across all keys; one more is refused at once ('full'), so
 *   the memory a burst can pin is bounded and the refusal costs no waiting.
 * - Wake: `wakeOne` hands a slot to exactly one waiter — the oldest (lowest sequence number) at the
 *   head of any of the keys the freed worker serves — instead of waking every waiter to race for
 *   it. Cost is O(keys the worker serves), independent of how many wait; a waiter whose `accepts`
 *   refuses the worker (it already failed there, a retry) is stepped over, which is rare.
 * - Adaptive LIFO (Facebook's server queues, "Fail at Scale", ACM Queue 2015): once the queue has
 *   not been empty for `lifoAfterMs`, the load is not a burst but a standing overload, and a freed
 *   slot goes to the *newest* waiter instead. Oldest-first would then hand every slot to a request
 *   that has already waited nearly its whole `waitMs` (the older ones time out just before), so
 *   every admitted request would pay the full wait; newest-first admits requests that have barely
 *   waited, and the excess runs out its wait and is refused. Back to oldest-first as soon as the
 *   queue empties.
 * - Leave: a waiter goes by its wait timer ('timeout'), its deadline or its client going away
 *   (ClientPresence), or `close`; each unlinks it in O(1) (intrusive doubly linked list) and clears
 *   its timer and presence slot, so nothing outlives the wait.
 *
 * Example:
 *   const queue = new WaitQueue<Upstream>({ maxQueued: 1024 });
 *   const outcome = await queue.wait('resnet', { waitMs: 50, client: ctx, accepts: (u) => !tried.has(u.id) });
 *   // elsewhere, a lease released on worker u:
 *   queue.wakeOne(keysServedBy(u), u);
 */
import type { ClientPresence, Waiter } from './presence.ts';

/** How a wait ended: handed a slot on `slot`, or not. */
export type WaitOutcome<S> =
  | { readonly kind: 'woken'; readonly slot: S; /** The waiter's place, to keep if it must wait again. */ readonly seq: number }
  | { readonly kind: 'full' | 'timeout' | 'gone' | 'closed' };

export interface WaitOptions<S> {
  /** Longest wait; the caller bounds it by the request's deadline. */
  waitMs: number;
  client: ClientPresence;
  /** Whether this waiter can use a slot on `slot` (default: any). */
  accepts?(slot: S): boolean;
  /**
   * The place in line of a waiter that was handed a slot it could no longer use (the worker's
   * breaker opened meanwhile): it waits again ahead of everyone who came after it.
   */
  seq?: number;
}

const FULL = { kind: 'full' } as const;
const TIMEOUT = { kind: 'timeout' } as const;
const GONE = { kind: 'gone' } as const;
const CLOSED = { kind: 'closed' } as const;

/** One waiting request, linked into its key's list. */
class Entry<S> implements Waiter {
  readonly seq: number;
  readonly line: Line<S>;
  readonly options: WaitOptions<S>;
  readonly resolve: (outcome: WaitOutcome<S>) => void;
  prev: Entry<S> | undefined = undefined;
  next: Entry<S> | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  #queue: WaitQueue<S>;

  constructor(queue: WaitQueue<S>, seq: number, line: Line<S>, options: WaitOptions<S>, resolve: (outcome: WaitOutcome<S>) => void) {
    this.#queue = queue;
    this.seq = seq;
    this.line = line;
    this.options = options;
    this.resolve = resolve;
  }

  clientGone(): void {
    this.#queue.settle(this, GONE);
  }

  deadlinePassed(): void {
    this.#queue.settle(this, TIMEOUT);
  }
}

/** The FIFO of one key. */
interface Line<S> {
  readonly key: string;
  head: Entry<S> | undefined;
  tail: Entry<S> | undefined;
  size: number;
}

function onTimer<S>(entry: Entry<S>, queue: WaitQueue<S>): void {
  entry.timer = undefined;
  queue.settle(entry, TIMEOUT);
}

export interface WaitQueueOptions {
  /** Waiters across all keys; one more is refused at once. */
  maxQueued: number;
  /** Newest-first once the queue has not been empty for this long (ms); 0 = always oldest-first. */
  lifoAfterMs?: number;
  /** Monotonic ms clock (default performance.now). */
  now?: () => number;
}

export class WaitQueue<S> {
  readonly maxQueued: number;
  readonly #lifoAfterMs: number;
  readonly #now: () => number;
  readonly #lines = new Map<string, Line<S>>();
  #size = 0;
  #seq = 0;
  /** When the queue last went from empty to not empty. */
  #busySince = 0;

  constructor(options: WaitQueueOptions) {
    if (!(options.maxQueued >= 0)) throw new Error('wait queue: maxQueued must be 0 or more');
    if (!((options.lifoAfterMs ?? 0) >= 0)) throw new Error('wait queue: lifoAfterMs must be 0 or more');
    this.maxQueued = options.maxQueued;
    this.#lifoAfterMs = options.lifoAfterMs ?? 0;
    this.#now = options.now ?? performance.now.bind(performance);
  }

  /** Whether freed slots now go to the newest waiter (a standing queue: see the header). */
  get lifo(): boolean {
    return this.#lifoAfterMs > 0 && this.#size > 0 && this.#now() - this.#busySince >= this.#lifoAfterMs;
  }

  /** Waiters across every key. */
  get size(): number {
    return this.#size;
  }

  /** Waiters for one key. */
  sizeOf(key: string): number {
    return this.#lines.get(key)?.size ?? 0;
  }

  /** Waits at the back of `key`'s line (or at `options.seq`'s place in it). Resolves once, never rejects. */
  wait(key: string, options: WaitOptions<S>): Promise<WaitOutcome<S>> {
    if (options.client.clientGone) return Promise.resolve(GONE);
    if (options.waitMs <= 0) return Promise.resolve(TIMEOUT);
    if (this.#size >= this.maxQueued) return Promise.resolve(FULL);
    return new Promise((resolve) => {
      let line = this.#lines.get(key);
      if (line === undefined) {
        line = { key, head: undefined, tail: undefined, size: 0 };
        this.#lines.set(key, line);
      }
      const entry = new Entry(this, options.seq ?? ++this.#seq, line, options, resolve);
      linkInOrder(line, entry);
      if (this.#size++ === 0 && this.#lifoAfterMs > 0) this.#busySince = this.#now();
      entry.timer = setTimeout(onTimer<S>, options.waitMs, entry, this);
      options.client.waitOn(entry);
    });
  }

  /**
   * Hands a slot on `slot` to the oldest waiter (the newest in a standing queue), across `keys`,
   * that accepts it. Returns whether someone took it.
   */
  wakeOne(keys: Iterable<string>, slot: S): boolean {
    const chosen = this.lifo ? this.#newest(keys, slot) : this.#oldest(keys, slot);
    if (chosen === undefined) return false;
    this.settle(chosen, { kind: 'woken', slot, seq: chosen.seq });
    return true;
  }

  #oldest(keys: Iterable<string>, slot: S): Entry<S> | undefined {
    let oldest: Entry<S> | undefined;
    for (const key of keys) {
      const line = this.#lines.get(key);
      if (line === undefined) continue;
      for (let e = line.head; e !== undefined; e = e.next) {
        if (oldest !== undefined && e.seq > oldest.seq) break; // a line is in seq order: nothing older further on
        if (e.options.accepts === undefined || e.options.accepts(slot)) {
          if (oldest === undefined || e.seq < oldest.seq) oldest = e;
          break;
        }
      }
    }
    return oldest;
  }

  #newest(keys: Iterable<string>, slot: S): Entry<S> | undefined {
    let newest: Entry<S> | undefined;
    for (const key of keys) {
      const line = this.#lines.get(key);
      if (line === undefined) continue;
      for (let e = line.tail; e !== undefined; e = e.prev) {
        if (newest !== undefined && e.seq < newest.seq) break; // nothing newer further back
        if (e.options.accepts === undefined || e.options.accepts(slot)) {
          if (newest === undefined || e.seq > newest.seq) newest = e;
          break;
        }
      }
    }
    return newest;
  }

  /** Ends every wait ('closed'): the gateway is shutting down. */
  close(): void {
    for (const line of [...this.#lines.values()]) {
      while (line.head !== undefined) this.settle(line.head, CLOSED);
    }
  }

  /** Unlinks the entry, clears its timer and presence slot, and resolves it; only the first call counts. */
  settle(entry: Entry<S>, outcome: WaitOutcome<S>): void {
    const line = entry.line;
    if (entry.prev === undefined && line.head !== entry) return; // already settled
    unlink(line, entry);
    this.#size--;
    if (line.size === 0) this.#lines.delete(line.key);
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.options.client.waitOn(undefined);
    entry.resolve(outcome);
  }
}

/** Links the entry after the last one older than it: at the tail for a newcomer, O(1). */
function linkInOrder<S>(line: Line<S>, entry: Entry<S>): void {
  let before = line.tail;
  while (before !== undefined && before.seq > entry.seq) before = before.prev;
  entry.prev = before;
  entry.next = before === undefined ? line.head : before.next;
  if (before === undefined) line.head = entry;
  else before.next = entry;
  if (entry.next === undefined) line.tail = entry;
  else entry.next.prev = entry;
  line.size++;
}

function unlink<S>(line: Line<S>, entry: Entry<S>): void {
  if (entry.prev === undefined) line.head = entry.next;
  else entry.prev.next = entry.next;
  if (entry.next === undefined) line.tail = entry.prev;
  else entry.next.prev = entry.prev;
  entry.prev = undefined;
  entry.next = undefined;
  line.size--;
}
