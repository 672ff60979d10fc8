// The Redis limiter coalesces concurrent takes of one bucket into one script call. Over random
// arrival patterns — takes issued in the same task, in later turns while a call is in flight, after
// earlier ones were answered; unit and mixed costs — it must decide every take exactly as a
// sequential bucket taking them one by one in arrival order would (checked against the in-memory
// limiter, which is that sequential bucket), and several replicas on one key never admit more than
// the bucket holds.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import fc from 'fast-check';
import { RedisLimiter, MAX_BATCH } from '../../../gateway/throttle/redis-limiter.ts';
import { MemoryLimiter } from '../../../gateway/throttle/memory-limiter.ts';
import { bucketKey, type Decision, type RatePlan } from '../../../gateway/throttle/limiter.ts';
import { startRedis, type RedisFixture } from '../../helpers/redis.ts';

let redis: Promise<RedisFixture> | undefined;
const limiters: RedisLimiter[] = [];
after(async () => {
  await Promise.all(limiters.map((l) => l.close()));
  await (await redis)?.stop();
});

/** A limiter on its own connection (a gateway replica), with a deadline no test machine misses. */
async function replica(): Promise<RedisLimiter> {
  redis ??= startRedis();
  const limiter = new RedisLimiter({ url: (await redis).url, deadlineMs: 5000 });
  limiters.push(limiter);
  await limiter.ready();
  return limiter;
}

/** How a take arrives relative to the one before it. */
type Gap = 'same-task' | 'next-turn' | 'after-replies';
const arrival = fc.record({ cost: fc.integer({ min: 0, max: 6 }), gap: fc.constantFrom<Gap>('same-task', 'same-task', 'next-turn', 'after-replies') });

/**
 * Issues the takes with their gaps on `limiter`. No refill (rate 0), so decisions do not depend on
 * when Redis runs each call, only on the order it sees the takes in.
 */
async function issue(limiter: RedisLimiter, key: string, plan: RatePlan, arrivals: Array<{ cost: number; gap: Gap }>): Promise<Decision[]> {
  const pending: Array<Promise<Decision>> = [];
  for (const { cost, gap } of arrivals) {
    if (gap === 'next-turn') await nextTurn();
    if (gap === 'after-replies') await Promise.all(pending);
    pending.push(limiter.take(key, cost, plan));
  }
  return Promise.all(pending);
}

test('coalescing: over random arrival patterns, decisions equal a sequential bucket in arrival order', async () => {
  const limiter = await replica();
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 25 }), fc.array(arrival, { minLength: 1, maxLength: 80 }), async (burst, arrivals) => {
      const plan = { ratePerSec: 0, burst };
      const key = bucketKey(`coalesce-${randomUUID()}`);
      const coalesced = await issue(limiter, key, plan, arrivals);
      const sequential = new MemoryLimiter();
      const expected = arrivals.map(({ cost }) => sequential.takeNow(key, cost, plan));
      assert.deepEqual(coalesced, expected);
    }),
    { numRuns: 60 },
  );
});

test('coalescing: more takes than one call carries (MAX_BATCH) are split, still in order', async () => {
  const limiter = await replica();
  const n = 2 * MAX_BATCH + 7;
  const costs = Array.from({ length: n }, (_, i) => 1 + (i % 3));
  const plan = { ratePerSec: 0, burst: n }; // the costs average 2: about half are admitted
  const key = bucketKey(`coalesce-${randomUUID()}`);
  const decisions = await Promise.all(costs.map((c) => limiter.take(key, c, plan)));
  const sequential = new MemoryLimiter();
  assert.deepEqual(decisions, costs.map((c) => sequential.takeNow(key, c, plan)));
  assert.ok(decisions.some((d) => !d.allowed), 'the bucket ran out (else the order proves nothing)');
});

test('coalescing: takes under a different plan for the same key (a reload) are decided under their own plan', async () => {
  const limiter = await replica();
  const key = bucketKey(`coalesce-${randomUUID()}`);
  const small = { ratePerSec: 0, burst: 3 };
  const large = { ratePerSec: 0, burst: 5 };
  const plans = [small, small, large, small, large, large, large];
  const decisions = await Promise.all(plans.map((p) => limiter.take(key, 1, p)));
  const sequential = new MemoryLimiter();
  assert.deepEqual(decisions, plans.map((p) => sequential.takeNow(key, 1, p)));
  assert.deepEqual(decisions.map((d) => d.limit), plans.map((p) => p.burst), 'RateLimit-Limit is each request\'s own plan');
});

test('coalescing: replicas coalescing on one key together admit exactly the burst', async () => {
  const replicas = await Promise.all([replica(), replica(), replica()]);
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 60 }), fc.array(fc.array(fc.constantFrom<Gap>('same-task', 'next-turn', 'after-replies'), { minLength: 1, maxLength: 60 }), { minLength: 3, maxLength: 3 }), async (burst, patterns) => {
      const plan = { ratePerSec: 0, burst };
      const key = bucketKey(`coalesce-${randomUUID()}`);
      const all = (await Promise.all(replicas.map((l, i) => issue(l, key, plan, patterns[i]!.map((gap) => ({ cost: 1, gap })))))).flat();
      const admitted = all.filter((d) => d.allowed);
      assert.equal(admitted.length, Math.min(burst, all.length));
      assert.deepEqual(admitted.map((d) => d.remaining).sort((a, b) => a - b), Array.from({ length: admitted.length }, (_, i) => burst - admitted.length + i), 'each admission saw its own remaining count');
    }),
    { numRuns: 40 },
  );
});
