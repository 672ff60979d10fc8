/**
 * The one conformance suite every RateLimiter must pass (memory, Redis): the observable behaviour
 * of a token bucket, on the real clock, since the Redis bucket takes its time from the server.
 * Registered by memory-limiter.test.ts (unit tier) and test/integration/throttle/redis-limiter.test.ts
 * (against a real redis-server). (hono `src/router/common.case.test.ts` does the same for routers.)
 *
 * Timing tolerances are derived, not guessed: a test notes local times just before sending and just
 * after the reply of the calls that bracket an interval, so the limiter's own clock (Redis TIME or
 * performance.now) saw an interval within those local bounds; expected token counts follow as
 * floor(rate * shortest) .. 1 + rate * longest (the 1 being the fraction left from before).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { bucketKey, type Decision, type RateLimiter, type RatePlan } from '../../../../gateway/throttle/limiter.ts';

/** Effectively no refill within a test: one token every ~11 days. */
const NO_REFILL = 1e-6;

export interface LimiterUnderTest {
  limiter: RateLimiter;
}

/** Registers the suite as subtests named `<name>: ...`; `make` builds a fresh limiter per test. */
export function limiterConformance(name: string, make: (t: TestContext) => Promise<LimiterUnderTest>): void {
  const key = (): string => bucketKey(`conformance-${randomUUID()}`);

  test(`${name}: a full bucket admits exactly the burst, then denies`, async (t) => {
    const { limiter } = await make(t);
    const k = key();
    const plan: RatePlan = { ratePerSec: NO_REFILL, burst: 10 };
    const decisions: Decision[] = [];
    for (let i = 0; i < 12; i++) decisions.push(await limiter.take(k, 1, plan));
    assert.deepEqual(decisions.map((d) => d.allowed), [...Array(10).fill(true), false, false]);
    assert.deepEqual(decisions.map((d) => d.remaining), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0]);
    for (const d of decisions) assert.equal(d.limit, 10);
  });

  test(`${name}: the bucket refills at the rate`, async (t) => {
    const { limiter } = await make(t);
    const k = key();
    // 50/s = one token per 20 ms; burst 40 so that ~10 refilled tokens stay below the cap.
    const plan: RatePlan = { ratePerSec: 50, burst: 40 };
    let lastSent = 0;
    let lastReplied = 0;
    for (;;) {
      lastSent = performance.now();
      const d = await limiter.take(k, 1, plan);
      lastReplied = performance.now();
      if (!d.allowed) break;
    }
    await sleep(200);
    const probeStart = performance.now();
    let admitted = 0;
    while ((await limiter.take(k, 1, plan)).allowed) admitted++;
    const probeEnd = performance.now();
    // The denial that ended the drain left < 1 token at limiter time s0 in [lastSent, lastReplied].
    // The probe admits what refilled since, plus that fraction: at least the tokens present at its
    // first call, at most one more than at its last call.
    const min = Math.floor((50 * (probeStart - lastReplied)) / 1000);
    const max = Math.floor(1 + (50 * (probeEnd - lastSent)) / 1000);
    assert.ok(admitted >= min && admitted <= max, `admitted ${admitted} after ~200 ms at 50/s, expected ${min}..${max}`);
    assert.ok(admitted >= 9, `~10 tokens should refill in 200 ms at 50/s, got ${admitted}`);
  });

  test(`${name}: a denied request consumes nothing`, async (t) => {
    const { limiter } = await make(t);
    const k = key();
    const plan: RatePlan = { ratePerSec: NO_REFILL, burst: 5 };
    assert.equal((await limiter.take(k, 3, plan)).remaining, 2);
    for (let i = 0; i < 10; i++) {
      const d = await limiter.take(k, 3, plan);
      assert.equal(d.allowed, false);
      assert.equal(d.remaining, 2, 'a denial leaves the tokens where they were');
    }
    const last = await limiter.take(k, 2, plan);
    assert.equal(last.allowed, true, 'the two tokens are still there after ten denials');
    assert.equal(last.remaining, 0);
  });

  test(`${name}: a cost above 1 takes that many tokens, and waits for that many`, async (t) => {
    const { limiter } = await make(t);
    const k = key();
    const plan: RatePlan = { ratePerSec: 50, burst: 10 };
    const a = await limiter.take(k, 4, plan);
    const b = await limiter.take(k, 4, plan);
    assert.ok(a.allowed && b.allowed);
    assert.equal(a.remaining, 6);
    assert.equal(b.remaining, 2); // < 1 ms between calls refills 0.05 token at most: floor unchanged
    const sent = performance.now();
    const c = await limiter.take(k, 4, plan);
    assert.equal(c.allowed, false);
    // ~2 tokens short at 50/s: ~40 ms, less what refilled since b (a few ms).
    assert.ok(c.retryAfterMs > 0 && c.retryAfterMs <= 40, `retryAfterMs ${c.retryAfterMs}, expected (0, 40]`);
    // Waiting as told (from before the call, plus 2 ms of rounding) is enough.
    await sleep(Math.max(0, c.retryAfterMs + 2 - (performance.now() - sent)));
    const d = await limiter.take(k, 4, plan);
    assert.equal(d.allowed, true, `still denied after the advised ${c.retryAfterMs} ms: ${JSON.stringify(d)}`);
  });

  test(`${name}: remaining, reset and retry-after agree with each other`, async (t) => {
    const { limiter } = await make(t);
    const k = key();
    const plan: RatePlan = { ratePerSec: 50, burst: 5 };
    const first = await limiter.take(k, 1, plan);
    assert.equal(first.allowed, true);
    assert.equal(first.retryAfterMs, 0, 'an admission has nothing to wait for');
    assert.equal(first.remaining, 4);
    // One token short of full at 50/s: 20 ms, ceil'd; at most a few ms refilled already.
    assert.ok(first.resetMs > 10 && first.resetMs <= 20, `resetMs ${first.resetMs}, expected (10, 20]`);
    let d = first;
    while (d.allowed) d = await limiter.take(k, 1, plan);
    assert.equal(d.remaining, 0);
    assert.ok(d.retryAfterMs > 0 && d.retryAfterMs <= 20, `retryAfterMs ${d.retryAfterMs}, expected (0, 20] for one token at 50/s`);
    assert.ok(d.resetMs >= d.retryAfterMs, 'full comes no sooner than one more token');
    // Empty bucket: 5 tokens at 50/s = 100 ms to full, less the fraction already there.
    assert.ok(d.resetMs > 80 && d.resetMs <= 100, `resetMs ${d.resetMs}, expected (80, 100]`);
  });

  test(`${name}: a cost above the burst is never admitted, and consumes nothing`, async (t) => {
    const { limiter } = await make(t);
    const k = key();
    const plan: RatePlan = { ratePerSec: 50, burst: 5 };
    const d = await limiter.take(k, 6, plan);
    assert.equal(d.allowed, false);
    assert.equal(d.retryAfterMs, Number.POSITIVE_INFINITY, 'no wait will help');
    assert.equal(d.remaining, 5);
    assert.equal((await limiter.take(k, 5, plan)).allowed, true, 'the bucket is still full');
  });

  test(`${name}: a plan with no refill says that no wait will help once spent`, async (t) => {
    const { limiter } = await make(t);
    const k = key();
    const plan: RatePlan = { ratePerSec: 0, burst: 2 };
    assert.equal((await limiter.take(k, 2, plan)).allowed, true);
    const d = await limiter.take(k, 1, plan);
    assert.equal(d.allowed, false);
    assert.equal(d.retryAfterMs, Number.POSITIVE_INFINITY);
  });

  test(`${name}: separate keys are separate buckets`, async (t) => {
    const { limiter } = await make(t);
    const subject = `conformance-${randomUUID()}`;
    const plan: RatePlan = { ratePerSec: NO_REFILL, burst: 2 };
    const [a, b, am] = [bucketKey(subject), bucketKey(`${subject}-other`), bucketKey(subject, 'iris')];
    await limiter.take(a, 2, plan);
    assert.equal((await limiter.take(a, 1, plan)).allowed, false);
    assert.equal((await limiter.take(b, 1, plan)).remaining, 1, 'another principal is untouched');
    assert.equal((await limiter.take(am, 1, plan)).remaining, 1, 'the per-model bucket of the same principal is untouched');
  });

  test(`${name}: invalid costs and plans are caller errors (TypeError), not denials`, async (t) => {
    const { limiter } = await make(t);
    const k = key();
    await assert.rejects(limiter.take(k, -1, { ratePerSec: 1, burst: 1 }), TypeError);
    await assert.rejects(limiter.take(k, Number.NaN, { ratePerSec: 1, burst: 1 }), TypeError);
    await assert.rejects(limiter.take(k, 1, { ratePerSec: -1, burst: 1 }), TypeError);
    await assert.rejects(limiter.take(k, 1, { ratePerSec: 1, burst: 0 }), TypeError);
  });
}
