// The failover limiter over a real Redis that is killed mid-load and restarted (empty, no scripts):
// fail open keeps deciding locally with no call over the deadline and no error to the caller; fail
// closed refuses within the deadline; both go back to the shared bucket on their own.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { FailoverLimiter, type FailurePolicy } from '../../../gateway/throttle/failover-limiter.ts';
import { RedisLimiter } from '../../../gateway/throttle/redis-limiter.ts';
import { bucketKey, StoreUnavailableError, type Decision, type RatePlan } from '../../../gateway/throttle/limiter.ts';
import { startRedis, skipUnlessControllable, type RedisFixture } from '../../helpers/redis.ts';

const DEADLINE_MS = 50;
/** Slack on top of the deadline for timers and the event loop of a loaded test machine. */
const SLACK_MS = 100;
/** The cooldown bounds how long after Redis returns the first probe comes; reconnects take ≤ 0.5 s. */
const COOLDOWN_MS = 200;

interface LoadStats {
  ok: Decision[];
  errors: unknown[];
  worstMs: number;
}

/** 16 loops calling take() until stopped, each recording its outcome and the slowest call. */
function load(limiter: FailoverLimiter, key: string, plan: RatePlan): { stop(): Promise<LoadStats> } {
  const stats: LoadStats = { ok: [], errors: [], worstMs: 0 };
  let running = true;
  const loops = Array.from({ length: 16 }, async () => {
    while (running) {
      const start = performance.now();
      try {
        stats.ok.push(await limiter.take(key, 1, plan));
      } catch (err) {
        stats.errors.push(err);
      }
      stats.worstMs = Math.max(stats.worstMs, performance.now() - start);
      await sleep(2);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return stats;
    },
  };
}

async function setup(t: TestContext, policy: FailurePolicy): Promise<{ redis: RedisFixture; limiter: FailoverLimiter; events: string[]; fallbacks: () => number } | undefined> {
  const redis = await startRedis(t);
  if (skipUnlessControllable(t, redis)) return undefined;
  const store = new RedisLimiter({ url: redis.url, deadlineMs: DEADLINE_MS });
  t.after(() => store.close());
  await store.ready();
  const events: string[] = [];
  let fallbacks = 0;
  const limiter = new FailoverLimiter(store, {
    policy,
    cooldownMs: COOLDOWN_MS,
    onFallback: () => fallbacks++,
    onStateChange: (state) => events.push(state),
  });
  return { redis, limiter, events, fallbacks: () => fallbacks };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('fail open: Redis killed mid-load → local decisions, no error, no call over the deadline; restart → shared again', async (t) => {
  const s = await setup(t, 'open');
  if (s === undefined) return;
  const { redis, limiter, events } = s;
  const key = bucketKey(`failover-${randomUUID()}`);
  const plan = { ratePerSec: 1e-6, burst: 1_000_000 };
  const running = load(limiter, key, plan);
  await sleep(200);
  await redis.kill();
  await sleep(300);
  const degraded = limiter.isDegraded;
  await redis.restart();
  await waitFor('the shared bucket to come back', () => events.includes('recovered'));
  await sleep(100);
  const stats = await running.stop();
  t.diagnostic(`decisions ${stats.ok.length}, local ${s.fallbacks()}, slowest call ${stats.worstMs.toFixed(1)} ms, events ${events.join(' → ')}`);
  assert.equal(degraded, true);
  assert.deepEqual(stats.errors, [], 'fail open: no call failed');
  assert.ok(s.fallbacks() > 0, 'some decisions were local');
  assert.ok(stats.worstMs <= DEADLINE_MS + SLACK_MS, `a call took ${stats.worstMs.toFixed(1)} ms`);
  assert.deepEqual(events, ['degraded', 'recovered']);
  // Shared limiting resumed on the fresh server: the bucket key exists there, spent by the calls since.
  const remaining = Number(await redis.client().hget(key, 'tokens'));
  assert.ok(remaining < plan.burst, 'the restarted Redis holds the bucket again');
});

test('fail open: while Redis is down the local bucket still enforces the plan', async (t) => {
  const s = await setup(t, 'open');
  if (s === undefined) return;
  await s.redis.kill();
  const plan = { ratePerSec: 1e-6, burst: 5 };
  const key = bucketKey(`failover-${randomUUID()}`);
  const decisions = [];
  for (let i = 0; i < 7; i++) decisions.push(await s.limiter.take(key, 1, plan));
  assert.deepEqual(decisions.map((d) => d.allowed), [true, true, true, true, true, false, false]);
  assert.equal(s.fallbacks(), 7);
});

test('fail closed: Redis killed → StoreUnavailableError within the deadline; restart → shared again', async (t) => {
  const s = await setup(t, 'closed');
  if (s === undefined) return;
  const { redis, limiter, events } = s;
  const key = bucketKey(`failover-${randomUUID()}`);
  const plan = { ratePerSec: 1e-6, burst: 1_000_000 };
  const running = load(limiter, key, plan);
  await sleep(200);
  await redis.kill();
  await sleep(300);
  await redis.restart();
  await waitFor('the shared bucket to come back', () => events.includes('recovered'));
  await sleep(100);
  const stats = await running.stop();
  t.diagnostic(`decisions ${stats.ok.length}, refused ${stats.errors.length}, slowest call ${stats.worstMs.toFixed(1)} ms`);
  assert.ok(stats.errors.length > 0);
  for (const err of stats.errors) assert.ok(err instanceof StoreUnavailableError, `unexpected ${String(err)}`);
  assert.ok(stats.ok.every((d) => d.allowed), 'nothing was decided locally');
  assert.equal(s.fallbacks(), stats.errors.length);
  assert.ok(stats.worstMs <= DEADLINE_MS + SLACK_MS, `a call took ${stats.worstMs.toFixed(1)} ms`);
  assert.deepEqual(events, ['degraded', 'recovered']);
  assert.ok((await redis.client().exists(key)) === 1, 'the restarted Redis holds the bucket again');
});

test('fail closed: a frozen Redis costs a call at most the deadline, and the cooldown spares the next ones', async (t) => {
  const s = await setup(t, 'closed');
  if (s === undefined) return;
  const { redis, limiter } = s;
  const plan = { ratePerSec: 1, burst: 10 };
  const key = bucketKey(`failover-${randomUUID()}`);
  await limiter.take(key, 1, plan);
  redis.pause();
  t.after(() => redis.resume());
  let start = performance.now();
  await assert.rejects(limiter.take(key, 1, plan), StoreUnavailableError);
  const first = performance.now() - start;
  start = performance.now();
  await assert.rejects(limiter.take(key, 1, plan), StoreUnavailableError);
  const second = performance.now() - start;
  t.diagnostic(`frozen Redis: first call refused after ${first.toFixed(1)} ms, the next after ${second.toFixed(1)} ms`);
  assert.ok(first <= DEADLINE_MS + SLACK_MS);
  assert.ok(second < 5, 'within the cooldown the store is not waited for');
  redis.resume();
  await waitFor('the store to answer again', async () => {
    try {
      return (await limiter.take(key, 1, plan)).limit === 10;
    } catch {
      return false;
    }
  });
});
