/**
 * The state one inference request carries through the gateway pipeline: one object per request,
 * with methods rather than closures (this runs thousands of times a second, and every closure or
 * AbortController is garbage the gateway pays for in GC).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.ts';
import type { ClientPresence, Waiter } from '../upstreams/pool.ts';
import type { Upstream } from '../upstreams/upstream.ts';

export interface InferenceRoute {
  protocol: 'v2' | 'tf';
  model: string;
  version: string | undefined;
}

const EMPTY = Buffer.alloc(0);

export class RequestContext implements ClientPresence {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly route: InferenceRoute;
  readonly requestId: string;
  /** `now()` when the request arrived. */
  readonly startedAt: number;
  /** Absolute `now()` by which the client must have an answer. */
  deadline: number;
  /** The client lowered the deadline (X-Infergate-Timeout-Ms): its expiry is no fault of the worker. */
  deadlineFromClient = false;
  body: Buffer = EMPTY;
  /** Set by the authenticate stage. */
  principal: Principal | undefined = undefined;
  /** Workers already tried; created only when a retry happens. */
  tried: Set<string> | undefined = undefined;
  upstream: Upstream | undefined = undefined;
  retries = 0;
  /** True once the client went away before its response was complete. */
  clientGone = false;
  /** True once the deadline passed (the deadline timer fired). */
  expired = false;
  /**
   * The status the gateway records when it had to cut the response off after its headers went out
   * (502: the worker broke off mid-body; 504: the deadline passed mid-body); undefined otherwise.
   */
  cutOffStatus: number | undefined = undefined;
  #waiter: Waiter | undefined = undefined;
  #deadlineTimer: NodeJS.Timeout | undefined = undefined;

  constructor(req: IncomingMessage, res: ServerResponse, route: InferenceRoute, requestId: string, startedAt: number, deadline: number) {
    this.req = req;
    this.res = res;
    this.route = route;
    this.requestId = requestId;
    this.startedAt = startedAt;
    this.deadline = deadline;
  }

  /**
   * What the request waits on now — a worker slot, then an attempt — told if the client goes away
   * or the deadline passes; undefined when nothing waits. One at a time, so one slot suffices.
   */
  waitOn(waiter: Waiter | undefined): void {
    this.#waiter = waiter;
  }

  /** The client's connection closed before the response was complete: stops whatever is waiting. */
  markClientGone(): void {
    if (this.clientGone) return;
    this.clientGone = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.clientGone();
  }

  /**
   * Starts the request's one deadline timer, `ms` from now. Most requests use the configured
   * timeout unchanged, so their timers share one of node's per-duration timer lists: arming and
   * clearing is then a linked-list append and unlink, where a different fractional duration per
   * request would create and drop a list (and a priority-queue entry) every time.
   */
  armDeadline(ms: number): void {
    this.#deadlineTimer = setTimeout(deadlinePassed, ms, this);
  }

  /** The response is over: the deadline no longer matters. */
  disarmDeadline(): void {
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
  }

  /** Called by the deadline timer. */
  markExpired(): void {
    this.expired = true;
    this.#deadlineTimer = undefined;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.deadlinePassed();
  }

  /** Workers this request must not go to again (undefined before any retry). */
  excluded(): ReadonlySet<string> | undefined {
    return this.tried;
  }

  /** The attempt on `upstream` never reached it: the next one goes elsewhere. */
  retryElsewhere(): void {
    if (this.upstream !== undefined) (this.tried ??= new Set()).add(this.upstream.id);
    this.retries++;
  }
}

function deadlinePassed(ctx: RequestContext): void {
  ctx.markExpired();
}
