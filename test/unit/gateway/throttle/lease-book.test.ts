// The lease book on a hand-driven clock: what a gateway asks ahead is its steady demand in tokens
// (the smaller of the last two windows: nothing for a bucket seen for the first time, nor after one
// burst); takes are admitted from a lease while it covers them and lives, and a take it cannot
// cover ends it; an expired lease, one under an older plan, one ended while a call was under way
// and every lease at close are given back with exactly the tokens left; idle buckets are
// forgotten; at most maxKeys are followed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseBook } from '../../../../gateway/throttle/lease-book.ts';

const PLAN = { ratePerSec: 10, burst: 1000 };

function book(maxKeys?: number) {
  const clock = { now: 0 };
  const givenBack: Array<[string, number, number, number]> = [];
  const leases = new LeaseBook({ leaseMs: 100, now: () => clock.now, giveBack: (key, plan, tokens, held) => givenBack.push([key, plan.burst, tokens, held]), ...(maxKeys !== undefined && { maxKeys }) });
  /** A call's grant of `tokens`, the call sent now. */
  const grant = (key: string, tokens: number, sharedLeft: number, plan = PLAN) => leases.grant(key, plan, tokens, sharedLeft, leases.ticket(key, plan));
  return { leases, clock, givenBack, grant };
}

test('asks ahead for steady demand in tokens: the smaller of the last two windows', (t) => {
  const { leases, clock } = book();
  t.after(() => leases.close());
  for (let i = 0; i < 7; i++) assert.equal(leases.take('k', 1, PLAN), undefined, 'no lease yet: every take asks the shared bucket');
  assert.equal(leases.ticket('k', PLAN).want, 0, 'a first window: no demand known');
  clock.now = 150;
  assert.equal(leases.ticket('k', PLAN).want, 0, 'one window of demand is a burst, not a steady stream');
  for (let i = 0; i < 9; i++) leases.take('k', 1, PLAN);
  clock.now = 250;
  assert.equal(leases.ticket('k', PLAN).want, 7, 'two windows, 7 then 9: the smaller');
  clock.now = 560;
  assert.equal(leases.ticket('k', PLAN).want, 0, 'windows with no takes since: no demand');
  for (const at of [600, 700]) {
    clock.now = at;
    for (let i = 0; i < 3; i++) leases.take('batches', 4, PLAN);
  }
  clock.now = 800;
  assert.equal(leases.ticket('batches', PLAN).want, 12, 'counted in tokens: three takes of cost 4 per window');
  assert.equal(leases.ticket('batches', { ratePerSec: 0, burst: 1000 }).want, 0, 'a bucket that never refills is never leased');
});

test('admits from a live lease while it covers the cost; a take it cannot cover ends it and goes to the bucket', (t) => {
  const { leases, clock, givenBack, grant } = book();
  t.after(() => leases.close());
  leases.take('k', 1, PLAN);
  grant('k', 3, 900);
  assert.equal(leases.ticket('k', PLAN).held, 3, 'the next call reports what the lease holds');
  assert.deepEqual(leases.take('k', 2, PLAN), { allowed: true, limit: 1000, remaining: 901, resetMs: 9900, retryAfterMs: 0 });
  assert.equal(leases.take('k', 2, PLAN), undefined, 'one token left does not cover a cost of 2');
  assert.deepEqual(givenBack, [['k', 1000, 1, 0]], 'the lease ended, its last token given back before the take asks Redis');
  grant('k', 5, 800);
  clock.now = 100;
  assert.equal(leases.held('k'), 0, 'expired');
  assert.equal(leases.take('k', 1, PLAN), undefined);
  assert.deepEqual(givenBack.at(-1), ['k', 1000, 5, 0], 'the expired lease gave back all 5 it held');
});

test('a grant for a lease that ended while its call was under way goes straight back; an expired one goes back once the new one holds', (t) => {
  const { leases, clock, givenBack } = book();
  t.after(() => leases.close());
  leases.take('k', 1, PLAN);
  leases.grant('k', PLAN, 4, 900, leases.ticket('k', PLAN));
  const ticket = leases.ticket('k', PLAN); // a call goes out...
  leases.take('k', 9, PLAN); // ...and a take the lease cannot cover ends it meanwhile
  leases.grant('k', PLAN, 6, 880, ticket);
  assert.deepEqual(givenBack, [['k', 1000, 4, 0], ['k', 1000, 6, 0]]);
  assert.equal(leases.held('k'), 0);
  leases.grant('k', PLAN, 2, 870, leases.ticket('k', PLAN));
  clock.now = 150;
  leases.grant('k', PLAN, 3, 860, leases.ticket('k', PLAN));
  assert.deepEqual(givenBack.at(-1), ['k', 1000, 2, 3], 'the expired 2 go back, reporting the 3 the new lease holds');
  assert.equal(leases.held('k'), 3);
});

test('a take under another plan gives the lease back under that plan; close gives back every lease, and later grants', () => {
  const { leases, givenBack, grant } = book();
  leases.take('a', 1, PLAN);
  leases.take('b', 1, PLAN);
  grant('a', 4, 900);
  const ticket = leases.ticket('b', PLAN);
  grant('b', 6, 900);
  const reloaded = { ratePerSec: 10, burst: 500 };
  assert.equal(leases.take('a', 1, reloaded), undefined);
  assert.deepEqual(givenBack, [['a', 500, 4, 0]]);
  leases.close();
  assert.deepEqual(givenBack, [['a', 500, 4, 0], ['b', 1000, 6, 0]]);
  assert.equal(leases.size, 0);
  leases.grant('b', PLAN, 2, 800, ticket);
  assert.deepEqual(givenBack.at(-1), ['b', 1000, 2, 0], 'a grant arriving after close is not kept');
  assert.equal(leases.ticket('b', PLAN).want, 0, 'and nothing more is asked');
});

test('follows at most maxKeys buckets; a grant for a bucket it does not follow goes straight back', (t) => {
  const { leases, givenBack, grant } = book(2);
  t.after(() => leases.close());
  leases.take('a', 1, PLAN);
  leases.take('b', 1, PLAN);
  leases.take('c', 1, PLAN);
  assert.equal(leases.size, 2);
  grant('c', 3, 900);
  assert.deepEqual(givenBack, [['c', 1000, 3, 0]]);
});

test('the sweep gives back expired leases within a quarter of their life and forgets idle buckets', async (t) => {
  const givenBack: number[] = [];
  const leases = new LeaseBook({ leaseMs: 40, giveBack: (_key, _plan, tokens) => givenBack.push(tokens) });
  t.after(() => leases.close());
  leases.take('k', 1, PLAN);
  leases.grant('k', PLAN, 9, 900, leases.ticket('k', PLAN));
  await new Promise((r) => setTimeout(r, 70));
  assert.deepEqual(givenBack, [9], 'given back by the sweep, no take needed');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(leases.size, 0, 'an idle bucket is forgotten');
});

test('a take under a plan that never refills ends a live lease under another plan instead of leaving it unreported', (t) => {
  const { leases, givenBack, grant } = book();
  t.after(() => leases.close());
  leases.take('k', 1, PLAN);
  grant('k', 5, 900);
  assert.equal(leases.ticket('k', { ratePerSec: 0, burst: 10 }).held, 5, 'a call under any plan reports what the lease holds');
  assert.equal(leases.take('k', 1, { ratePerSec: 0, burst: 10 }), undefined);
  assert.deepEqual(givenBack, [['k', 10, 5, 0]]);
  assert.equal(leases.take('never-followed', 1, { ratePerSec: 0, burst: 10 }), undefined);
  assert.equal(leases.size, 1, 'a bucket that never refills is not followed');
});
