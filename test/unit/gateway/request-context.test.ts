/**
 * The per-request context (gateway/pipeline/context.ts): the one waiter slot told when the client
 * goes or the deadline passes, the deadline timer (mock timers, so exact and instant), and the
 * exclusions a retry builds.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { RequestContext } from '../../../gateway/pipeline/context.ts';
import type { Upstream } from '../../../gateway/upstreams/upstream.ts';
import type { Waiter } from '../../../gateway/upstreams/pool.ts';

function context(): RequestContext {
  return new RequestContext({} as never, {} as never, { protocol: 'v2', model: 'iris', version: undefined }, 'r', 0, 1000);
}

function recorder(): Waiter & { events: string[] } {
  const events: string[] = [];
  return { events, clientGone: () => events.push('gone'), deadlinePassed: () => events.push('deadline') };
}

test('the client leaving tells the current waiter, once', () => {
  const ctx = context();
  const first = recorder();
  const second = recorder();
  ctx.waitOn(first);
  ctx.waitOn(second); // a request waits on one thing at a time: the later one replaces the earlier
  ctx.markClientGone();
  ctx.markClientGone();
  assert.equal(ctx.clientGone, true);
  assert.deepEqual(first.events, []);
  assert.deepEqual(second.events, ['gone']);
});

test('a cleared waiter hears nothing', () => {
  const ctx = context();
  const waiter = recorder();
  ctx.waitOn(waiter);
  ctx.waitOn(undefined);
  ctx.markClientGone();
  assert.deepEqual(waiter.events, []);
});

/** A context waiting on a recorder, its deadline armed `ms` ahead on mock timers. */
function armed(t: TestContext, ms: number): { ctx: RequestContext; waiter: ReturnType<typeof recorder> } {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const ctx = context();
  const waiter = recorder();
  ctx.waitOn(waiter);
  ctx.armDeadline(ms);
  return { ctx, waiter };
}

test('the deadline timer fires at the armed time, tells the waiter and marks the request expired', (t) => {
  const { ctx, waiter } = armed(t, 1000);
  t.mock.timers.tick(999);
  assert.equal(ctx.expired, false);
  assert.deepEqual(waiter.events, []);
  t.mock.timers.tick(1);
  assert.equal(ctx.expired, true);
  assert.deepEqual(waiter.events, ['deadline']);
  ctx.markClientGone(); // the waiter was released when the deadline told it
  assert.deepEqual(waiter.events, ['deadline']);
});

test('a disarmed deadline never fires; with nothing waiting it only marks the request expired', (t) => {
  const { ctx, waiter } = armed(t, 50);
  ctx.disarmDeadline();
  t.mock.timers.tick(1000);
  assert.equal(ctx.expired, false);
  assert.deepEqual(waiter.events, []);

  const idle = context();
  idle.armDeadline(10);
  t.mock.timers.tick(10);
  assert.equal(idle.expired, true, 'the next attempt sees it and ends at once');
});

test('no exclusions until a retry; each retry excludes the worker just tried', () => {
  const ctx = context();
  assert.equal(ctx.excluded(), undefined);
  ctx.upstream = { id: 'w-a' } as Upstream;
  ctx.retryElsewhere();
  ctx.upstream = { id: 'w-b' } as Upstream;
  ctx.retryElsewhere();
  assert.deepEqual([...ctx.excluded()!], ['w-a', 'w-b']);
  assert.equal(ctx.retries, 2);
});
