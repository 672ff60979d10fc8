// The pool's admission: a released slot goes to exactly one waiter, oldest first, and is reserved
// for it, so a request arriving meanwhile cannot take it; waiters hold nothing once they leave; an
// undrained worker's slots go to the waiters at once.
// One real (fault) upstream behind the pool, leases taken by hand.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { parseGatewayConfig } from '../../../gateway/config/load.ts';
import { Pool, type SlotOutcome } from '../../../gateway/upstreams/pool.ts';
import type { ClientPresence, Waiter } from '../../../gateway/upstreams/presence.ts';
import { silentLogger } from '../../../shared/logger.ts';
import { startFaultUpstream } from '../../helpers/fault-upstream.ts';

class Client implements ClientPresence {
  clientGone = false;
  waiter: Waiter | undefined = undefined;
  waitOn(waiter: Waiter | undefined): void {
    this.waiter = waiter;
  }
}

async function poolWithOneWorker(t: TestContext, limits: Record<string, number>, breaker: Record<string, number> = {}) {
  const worker = await startFaultUpstream(t);
  const config = parseGatewayConfig({ limits, breaker }, 'test');
  const pool = new Pool(config, { logger: silentLogger(), now: () => performance.now() });
  t.after(() => pool.close());
  const upstream = pool.add(worker.url, { source: 'static' });
  await pool.checkAll();
  assert.equal(upstream.ready, true);
  return { pool, upstream };
}

function queueFor(pool: Pool, client = new Client()) {
  const state: { outcome: SlotOutcome | undefined } = { outcome: undefined };
  void pool.waitForSlot({ model: 'echo', version: undefined, exclude: undefined, waitUntil: performance.now() + 60_000, client }).then((o) => (state.outcome = o));
  return state;
}

test('a released slot wakes exactly one waiter, the oldest, and stays reserved for it', async (t) => {
  const { pool, upstream } = await poolWithOneWorker(t, { maxInFlightPerWorker: 1, maxQueued: 10 });
  const held = upstream.lease();
  assert.deepEqual(pool.candidates('echo', undefined), [], 'at its cap');
  const waiters = [queueFor(pool), queueFor(pool), queueFor(pool)];
  assert.equal(pool.queued, 3);
  held.release();
  assert.deepEqual(pool.candidates('echo', undefined), [], 'the freed slot is reserved for the waiter, not open to a newcomer');
  await tick();
  assert.equal(waiters[0]!.outcome, upstream, 'the oldest waiter gets the slot');
  assert.equal(waiters.filter((w) => w.outcome !== undefined).length, 1, 'and only it wakes');
  assert.equal(upstream.reserved, 0, 'the reservation ends when the waiter resumes');
  assert.equal(pool.queued, 2);
  const second = upstream.lease(); // the woken request forwards
  second.release();
  await tick();
  assert.equal(waiters[1]!.outcome, upstream);
  assert.equal(waiters[2]!.outcome, undefined);
  pool.close();
  await tick();
  assert.equal(pool.queued, 0);
});

test('the queue bound refuses at once; a waiter whose client left passes its slot on', async (t) => {
  const { pool, upstream } = await poolWithOneWorker(t, { maxInFlightPerWorker: 1, maxQueued: 2 });
  const held = upstream.lease();
  const leaving = new Client();
  const first = queueFor(pool, leaving);
  const second = queueFor(pool);
  const third = queueFor(pool);
  await tick();
  assert.equal(third.outcome, 'queue_full');
  leaving.clientGone = true;
  leaving.waiter?.clientGone();
  await tick();
  assert.equal(first.outcome, 'client_gone');
  assert.equal(pool.queued, 1);
  held.release();
  await tick();
  assert.equal(second.outcome, upstream);
  assert.equal(upstream.reserved, 0);
  assert.equal(upstream.inFlight, 0);
});

test('anyAdmitting tells "every worker busy" from "no worker would take a request": a breaker half-open with its trial under way, or open', async (t) => {
  const { pool, upstream } = await poolWithOneWorker(t, { maxInFlightPerWorker: 1 }, { volumeThreshold: 1, resetTimeoutMs: 50 });
  const held = upstream.lease();
  assert.deepEqual(pool.candidates('echo', undefined), [], 'at its cap');
  assert.equal(pool.anyAdmitting('echo', undefined, undefined), true, 'busy, but its breaker admits: waiting is worth it');
  held.release();
  await upstream.breaker.fire(() => Promise.reject(new Error('refused'))).catch(() => undefined);
  assert.equal(upstream.breaker.state, 'open');
  assert.equal(pool.anyAdmitting('echo', undefined, undefined), false, 'open');
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(upstream.breaker.state, 'half-open');
  assert.equal(pool.anyAdmitting('echo', undefined, undefined), true, 'half-open, the trial not yet taken');
  let endTrial!: () => void;
  const trial = upstream.breaker.fire(() => new Promise<void>((r) => (endTrial = r)));
  assert.equal(pool.anyAdmitting('echo', undefined, undefined), false, 'half-open with the trial under way');
  assert.equal(pool.anyAdmitting('echo', undefined, new Set([upstream.id])), false, 'an excluded worker never admits');
  endTrial();
  await trial;
  assert.equal(upstream.breaker.state, 'closed');
  assert.equal(pool.anyAdmitting('echo', undefined, undefined), true);
  assert.equal(pool.anyAdmitting('other-model', undefined, undefined), false, 'no worker serves it');
});

test('undraining a worker hands its free slots to requests already waiting', async (t) => {
  const { pool, upstream } = await poolWithOneWorker(t, { maxInFlightPerWorker: 2, maxQueued: 10 });
  pool.setDraining(upstream, true);
  assert.deepEqual(pool.candidates('echo', undefined), [], 'a draining worker is no candidate');
  const waiters = [queueFor(pool), queueFor(pool), queueFor(pool)];
  await tick();
  assert.equal(pool.queued, 3);
  pool.setDraining(upstream, false);
  await tick();
  assert.deepEqual(waiters.map((w) => w.outcome), [upstream, upstream, undefined], 'one waiter per free slot, oldest first, at once');
  assert.equal(pool.queued, 1);
});
