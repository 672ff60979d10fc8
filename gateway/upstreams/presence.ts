/**
 * What a request's waits need to know about its client: whether it has gone, and one slot through
 * which the thing it waits on now (a worker slot, then an attempt) hears that the client went away
 * or the deadline passed. The request context implements it, cheaper than an AbortSignal per request.
 */

/** Something a request waits on, told when the client goes away or the request's deadline passes. */
export interface Waiter {
  clientGone(): void;
  deadlinePassed(): void;
}

export interface ClientPresence {
  readonly clientGone: boolean;
  waitOn(waiter: Waiter | undefined): void;
}
