// Leases against a real redis-server: a limiter with steady demand for a bucket admits most takes
// from tokens it took ahead (one script call per window's worth, not per take) and reports the
// same RateLimit-Remaining a call per take would; tokens ahead come only from above half the
// burst; what a lease holds is the limiter's own (another limiter cannot spend it) until it ends,
// when every unused token goes back, so no token is lost and none is spent twice.
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisLimiter } from '../../../gateway/throttle/redis-limiter.ts';
import { bucketKey, type RatePlan } from '../../../gateway/throttle/limiter.ts';
import { startRedis, type RedisFixture } from '../../helpers/redis.ts';

const LEASE_MS = 40;
/** A lease that outlives whatever the test does with it meanwhile (its demand window is as long). */
const LONG_LEASE_MS = 100;
/** No refill worth counting during a test (one token every 1000 s), but leases need some refill. */
const slowPlan = (burst: number): RatePlan => ({ ratePerSec: 0.001, burst });

let shared: Promise<RedisFixture> | undefined;
after(async () => (await shared)?.stop());

async function limiters(t: TestContext, ...leaseMs: number[]): Promise<{ redis: RedisFixture; all: RedisLimiter[] }> {
  shared ??= startRedis();
  const redis = await shared;
  const all = leaseMs.map((ms) => new RedisLimiter({ url: redis.url, deadlineMs: 1000, leaseMs: ms }));
  t.after(() => Promise.all(all.map((l) => l.close())));
  await Promise.all(all.map((l) => l.ready()));
  return { redis, all };
}

/** Script calls Redis has run so far (EVAL and EVALSHA), from INFO commandstats. */
async function scriptCalls(redis: RedisFixture): Promise<number> {
  const info = String(await redis.client().info('commandstats'));
  return [...info.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** `n` takes of cost 1, one after the other, `gapMs` apart (0: back to back). */
async function paced(limiter: RedisLimiter, key: string, plan: RatePlan, n: number, gapMs: number): Promise<number[]> {
  const remaining: number[] = [];
  for (let i = 0; i < n; i++) {
    const decision = await limiter.take(key, 1, plan);
    assert.equal(decision.allowed, true);
    remaining.push(decision.remaining);
    if (gapMs > 0) await sleep(gapMs);
  }
  return remaining;
}

/** `n` simultaneous takes of cost 1: how many were admitted. */
async function flood(limiter: RedisLimiter, key: string, plan: RatePlan, n: number): Promise<number> {
  const decisions = await Promise.all(Array.from({ length: n }, () => limiter.take(key, 1, plan)));
  return decisions.filter((d) => d.allowed).length;
}

test('steady demand: most takes are admitted from the lease, with the remaining a call per take would report', async (t) => {
  const { redis, all: [limiter] } = await limiters(t, LEASE_MS);
  const key = bucketKey(`lease-${randomUUID()}`);
  const plan = slowPlan(100_000);
  const callsBefore = await scriptCalls(redis);
  const remaining = await paced(limiter!, key, plan, 3000, 0);
  const calls = (await scriptCalls(redis)) - callsBefore;
  t.diagnostic(`3000 takes back to back, ${calls} script calls, ${limiter!.heldAhead(key)} tokens held ahead at the end`);
  assert.deepEqual(remaining, remaining.map((_, i) => 100_000 - 1 - i), 'one fewer each time, as if every take had asked Redis');
  assert.ok(calls < 3000 / 5, `far fewer script calls than takes (${calls})`);
});

test('no lease for a first burst or below half the burst: those are decided take by take', async (t) => {
  const { redis, all: [limiter] } = await limiters(t, LEASE_MS);
  const key = bucketKey(`lease-${randomUUID()}`);
  assert.equal(await flood(limiter!, key, slowPlan(100), 300), 100, 'a simultaneous burst admits exactly the burst');
  assert.equal(limiter!.heldAhead(key), 0);
  const small = bucketKey(`lease-${randomUUID()}`);
  await paced(limiter!, small, slowPlan(10), 10, 2); // steady, but every take leaves at most half the burst above 5
  assert.equal((await limiter!.take(small, 1, slowPlan(10))).allowed, false, 'ten takes spent the burst of 10: nothing was held back');
  assert.equal(await redis.client().exists(small), 1);
});

test('tokens held ahead are one limiter\'s until its lease ends; then they go back, so none is lost or spent twice', async (t) => {
  const { all: [holder, other] } = await limiters(t, 1000, LEASE_MS);
  const key = bucketKey(`lease-${randomUUID()}`);
  const burst = 2000;
  const plan = slowPlan(burst);
  // Steady demand over more than a window of 1000 ms. The tokens a paced take leaves in the lease
  // stay there for the flood: the lease lives a second.
  const byHolder = (await paced(holder!, key, plan, 60, 25)).length;
  const held = holder!.heldAhead(key);
  assert.ok(held > 0, 'the holder holds tokens ahead');
  const first = await flood(other!, key, plan, 3 * burst);
  assert.equal(first, burst - byHolder - held, 'the other limiter gets everything but what the holder spent or holds');
  await sleep(2500); // the lease ends (its life, then the next sweep) and its unused tokens go back
  assert.equal(holder!.heldAhead(key), 0);
  const second = await flood(other!, key, plan, 3 * burst);
  assert.equal(second, held, 'exactly the unused tokens came back');
  assert.equal(byHolder + first + second, burst, 'the bucket admitted its burst, exactly');
});

test('close gives back what the limiter holds ahead', async (t) => {
  const { all: [holder, other] } = await limiters(t, LONG_LEASE_MS, LEASE_MS);
  const key = bucketKey(`lease-${randomUUID()}`);
  const plan = slowPlan(1000);
  const byHolder = (await paced(holder!, key, plan, 150, 2)).length;
  assert.ok(holder!.heldAhead(key) > 0);
  await holder!.close();
  assert.equal(await flood(other!, key, plan, 3000), 1000 - byHolder, 'a long lease does not outlive its limiter');
});

test('a take under another plan (a config reload) gives the lease back first, then asks Redis', async (t) => {
  const { all: [limiter] } = await limiters(t, LONG_LEASE_MS);
  const key = bucketKey(`lease-${randomUUID()}`);
  await paced(limiter!, key, slowPlan(1000), 150, 2);
  assert.ok(limiter!.heldAhead(key) > 0);
  // A larger burst: the bucket keeps what it had, and the lease's tokens must be back in it.
  const decision = await limiter!.take(key, 1, slowPlan(2000));
  assert.equal(limiter!.heldAhead(key), 0, 'the old plan\'s lease ended');
  assert.equal(decision.limit, 2000);
  assert.equal(decision.remaining, 1000 - 150 - 1, 'the bucket as if nothing had been held ahead');
  assert.equal(await flood(limiter!, key, slowPlan(2000), 3000), 1000 - 150 - 1);
});
