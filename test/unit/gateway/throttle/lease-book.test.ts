// The lease book on a hand-driven clock: what a gateway asks ahead is its demand in tokens in the
// previous window (nothing for a bucket seen for the first time); takes are admitted from a lease while it
// covers them and lives; an expired lease, one under an older plan, and every lease at close are
// given back with exactly the tokens left; idle buckets are forgotten; at most maxKeys are followed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseBook } from '../../../../gateway/throttle/lease-book.ts';

const PLAN = { ratePerSec: 10, burst: 1000 };

function book(maxKeys?: number) {
  const clock = { now: 0 };
  const givenBack: Array<[string, number, number]> = [];
  const leases = new LeaseBook({ leaseMs: 100, now: () => clock.now, giveBack: (key, plan, tokens) => givenBack.push([key, plan.burst, tokens]), ...(maxKeys !== undefined && { maxKeys }) });
  return { leases, clock, givenBack };
}

test('asks ahead for the previous window\'s demand, never for a bucket seen for the first time', (t) => {
  const { leases, clock } = book();
  t.after(() => leases.close());
  for (let i = 0; i < 7; i++) assert.equal(leases.take('k', 1, PLAN), undefined, 'no lease yet: every take asks the shared bucket');
  assert.equal(leases.wanted('k', PLAN), 0, 'a first window: no demand known');
  clock.now = 150;
  assert.equal(leases.wanted('k', PLAN), 7, 'the previous window saw 7 takes');
  clock.now = 400;
  assert.equal(leases.wanted('k', PLAN), 0, 'windows with no takes since: no demand');
  assert.equal(leases.wanted('k', { ratePerSec: 0, burst: 1000 }), 0, 'a bucket that never refills is never leased');
  assert.equal(leases.wanted('other', PLAN), 0);
  for (let i = 0; i < 3; i++) leases.take('batches', 4, PLAN);
  clock.now = 550;
  assert.equal(leases.wanted('batches', PLAN), 12, 'demand is counted in tokens: three takes of cost 4');
});

test('admits from a live lease while it covers the cost, with remaining = bucket after the grant + lease left', (t) => {
  const { leases, clock, givenBack } = book();
  t.after(() => leases.close());
  leases.take('k', 1, PLAN);
  leases.grant('k', PLAN, 3, 900);
  assert.deepEqual(leases.take('k', 2, PLAN), { allowed: true, limit: 1000, remaining: 901, resetMs: 9900, retryAfterMs: 0 });
  assert.equal(leases.take('k', 2, PLAN), undefined, 'one token left does not cover a cost of 2');
  assert.equal(leases.take('k', 1, PLAN)?.remaining, 900);
  assert.equal(leases.held('k'), 0);
  leases.grant('k', PLAN, 5, 800);
  clock.now = 100;
  assert.equal(leases.held('k'), 0, 'expired');
  assert.equal(leases.take('k', 1, PLAN), undefined);
  assert.deepEqual(givenBack, [['k', 1000, 5]], 'the expired lease gave back all 5 it held');
});

test('a take under another plan gives the lease back under that plan; close gives back every lease', () => {
  const { leases, givenBack } = book();
  leases.take('a', 1, PLAN);
  leases.take('b', 1, PLAN);
  leases.grant('a', PLAN, 4, 900);
  leases.grant('b', PLAN, 6, 900);
  const reloaded = { ratePerSec: 10, burst: 500 };
  assert.equal(leases.take('a', 1, reloaded), undefined);
  assert.deepEqual(givenBack, [['a', 500, 4]]);
  leases.close();
  assert.deepEqual(givenBack, [['a', 500, 4], ['b', 1000, 6]]);
  assert.equal(leases.size, 0);
});

test('follows at most maxKeys buckets; a grant for a bucket it does not follow goes straight back', (t) => {
  const { leases, givenBack } = book(2);
  t.after(() => leases.close());
  leases.take('a', 1, PLAN);
  leases.take('b', 1, PLAN);
  leases.take('c', 1, PLAN);
  assert.equal(leases.size, 2);
  leases.grant('c', PLAN, 3, 900);
  assert.deepEqual(givenBack, [['c', 1000, 3]]);
});

test('the sweep gives back expired leases and forgets idle buckets', async (t) => {
  const givenBack: number[] = [];
  const leases = new LeaseBook({ leaseMs: 20, giveBack: (_key, _plan, tokens) => givenBack.push(tokens) });
  t.after(() => leases.close());
  leases.take('k', 1, PLAN);
  leases.grant('k', PLAN, 9, 900);
  await new Promise((r) => setTimeout(r, 120));
  assert.deepEqual(givenBack, [9], 'given back by the sweep, no take needed');
  assert.equal(leases.size, 0, 'an idle bucket is forgotten');
});
