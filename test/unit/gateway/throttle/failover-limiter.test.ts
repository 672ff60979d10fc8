// The failover policy on a scripted store and a manual clock: open falls back to the local bucket,
// closed throws; a failing store is left alone for the cooldown, then probed by one call at a time;
// the first success puts every call back on the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailoverLimiter } from '../../../../gateway/throttle/failover-limiter.ts';
import { MemoryLimiter } from '../../../../gateway/throttle/memory-limiter.ts';
import { StoreUnavailableError, type Decision, type RateLimiter, type RatePlan } from '../../../../gateway/throttle/limiter.ts';

const PLAN: RatePlan = { ratePerSec: 1e-6, burst: 3 };
const STORE_DECISION: Decision = { allowed: true, limit: 1000, remaining: 999, resetMs: 1, retryAfterMs: 0 };

/** A store that answers, fails, or hangs until released, as told. */
class ScriptedStore implements RateLimiter {
  mode: 'ok' | 'down' | 'hang' = 'ok';
  calls = 0;
  private release: Array<() => void> = [];

  async take(): Promise<Decision> {
    this.calls++;
    if (this.mode === 'down') throw new StoreUnavailableError('down');
    if (this.mode === 'hang') {
      await new Promise<void>((r) => this.release.push(r));
      throw new StoreUnavailableError('timed out');
    }
    return STORE_DECISION;
  }

  releaseAll(): void {
    for (const r of this.release.splice(0)) r();
  }
}

function setup(policy: 'open' | 'closed', cooldownMs = 1000) {
  let now = 0;
  const store = new ScriptedStore();
  const events: string[] = [];
  let fallbacks = 0;
  const limiter = new FailoverLimiter(store, {
    policy,
    cooldownMs,
    now: () => now,
    local: new MemoryLimiter({ now: () => now }),
    onFallback: () => fallbacks++,
    onStateChange: (state) => events.push(state),
  });
  return { limiter, store, events, fallbacks: () => fallbacks, advance: (ms: number) => (now += ms) };
}

test('failover: a healthy store decides, and nothing is reported', async () => {
  const { limiter, events, fallbacks } = setup('open');
  assert.deepEqual(await limiter.take('k', 1, PLAN), STORE_DECISION);
  assert.deepEqual(events, []);
  assert.equal(fallbacks(), 0);
  assert.equal(limiter.isDegraded, false);
});

test('failover open: a failing store → local bucket decisions, counted each time, logged once', async () => {
  const { limiter, store, events, fallbacks } = setup('open');
  store.mode = 'down';
  const decisions = [];
  for (let i = 0; i < 5; i++) decisions.push(await limiter.take('k', 1, PLAN));
  assert.deepEqual(decisions.map((d) => d.allowed), [true, true, true, false, false], 'the local bucket applies the same plan');
  assert.equal(decisions[0]!.limit, 3);
  assert.equal(fallbacks(), 5);
  assert.deepEqual(events, ['degraded']);
  assert.equal(limiter.isDegraded, true);
});

test('failover closed: a failing store → StoreUnavailableError, never a local decision', async () => {
  const { limiter, store, events, fallbacks } = setup('closed');
  store.mode = 'down';
  await assert.rejects(limiter.take('k', 1, PLAN), StoreUnavailableError);
  await assert.rejects(limiter.take('k', 1, PLAN), StoreUnavailableError);
  assert.equal(fallbacks(), 2);
  assert.deepEqual(events, ['degraded']);
});

test('failover: the store is skipped during the cooldown, then probed, and resumes on success', async () => {
  const { limiter, store, events, advance } = setup('open', 1000);
  store.mode = 'down';
  await limiter.take('k', 1, PLAN);
  assert.equal(store.calls, 1);
  store.mode = 'ok';
  advance(999);
  await limiter.take('k', 1, PLAN);
  assert.equal(store.calls, 1, 'within the cooldown the store is not asked');
  advance(1);
  assert.deepEqual(await limiter.take('k', 1, PLAN), STORE_DECISION, 'after it, the store decides again');
  assert.deepEqual(events, ['degraded', 'recovered']);
  assert.equal(limiter.isDegraded, false);
});

test('failover: a failed probe restarts the cooldown', async () => {
  const { limiter, store, advance } = setup('open', 1000);
  store.mode = 'down';
  await limiter.take('k', 1, PLAN);
  advance(1000);
  await limiter.take('k', 1, PLAN); // probe, fails
  assert.equal(store.calls, 2);
  advance(500);
  await limiter.take('k', 1, PLAN);
  assert.equal(store.calls, 2);
});

test('failover: one probe at a time; the others decide locally meanwhile', async () => {
  const { limiter, store, advance } = setup('open', 0);
  store.mode = 'down';
  await limiter.take('k', 1, PLAN);
  store.mode = 'hang';
  const probe = limiter.take('k', 1, PLAN);
  await new Promise((r) => setImmediate(r));
  advance(10);
  const others = await Promise.all([limiter.take('k2', 1, PLAN), limiter.take('k2', 1, PLAN)]);
  assert.equal(store.calls, 2, 'only the probe reached the store');
  assert.ok(others.every((d) => d.limit === 3), 'local decisions');
  store.releaseAll();
  assert.equal((await probe).limit, 3, 'the failed probe is decided locally too');
});

test('failover: a caller error (TypeError) passes through and does not degrade', async () => {
  const store: RateLimiter = { take: async () => Promise.reject(new TypeError('bad plan')) };
  const events: string[] = [];
  const limiter = new FailoverLimiter(store, { policy: 'open', onStateChange: (s) => events.push(s) });
  await assert.rejects(limiter.take('k', 1, PLAN), TypeError);
  assert.deepEqual(events, []);
});

test('failover: rejects an unknown policy at construction', () => {
  assert.throws(() => new FailoverLimiter(new ScriptedStore(), { policy: 'maybe' as 'open' }), TypeError);
  assert.throws(() => new FailoverLimiter(new ScriptedStore(), { policy: 'open', cooldownMs: -1 }), TypeError);
});

test('failover: a store that decides at once (its lease) is passed through without a promise; while degraded the policy still applies', async () => {
  const { limiter, store, events } = setup('closed');
  const leased: Decision = { allowed: true, limit: 1000, remaining: 500, resetMs: 2, retryAfterMs: 0 };
  let now: 'lease' | 'store' = 'lease';
  (store as RateLimiter).takeNow = () => (now === 'lease' ? leased : store.take());
  assert.equal(limiter.takeNow('k', 1, PLAN), leased, 'the same decision, synchronously');
  assert.equal(store.calls, 0);
  now = 'store';
  store.mode = 'down';
  await assert.rejects(Promise.resolve(limiter.takeNow('k', 1, PLAN)), StoreUnavailableError);
  assert.deepEqual(events, ['degraded']);
  now = 'lease';
  await assert.rejects(Promise.resolve(limiter.takeNow('k', 1, PLAN)), StoreUnavailableError, 'in the cooldown, fail closed refuses without asking the store');
});
