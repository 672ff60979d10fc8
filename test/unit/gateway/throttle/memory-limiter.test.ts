// The memory limiter: the conformance suite on the real clock, then the exact maths and the memory
// bounds on a manual clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLimiter } from '../../../../gateway/throttle/memory-limiter.ts';
import { bucketKey } from '../../../../gateway/throttle/limiter.ts';
import { limiterConformance } from './limiter-conformance.ts';

limiterConformance('memory', async () => ({ limiter: new MemoryLimiter() }));

function manualClock(start = 1000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('memory: refill is exact on a manual clock', () => {
  const clock = manualClock();
  const limiter = new MemoryLimiter({ now: clock.now });
  const plan = { ratePerSec: 10, burst: 5 };
  for (let i = 0; i < 5; i++) assert.equal(limiter.takeNow('k', 1, plan).allowed, true);
  const denied = limiter.takeNow('k', 1, plan);
  assert.deepEqual(denied, { allowed: false, limit: 5, remaining: 0, resetMs: 500, retryAfterMs: 100 });
  clock.advance(99);
  assert.equal(limiter.takeNow('k', 1, plan).allowed, false);
  clock.advance(1);
  assert.deepEqual(limiter.takeNow('k', 1, plan), { allowed: true, limit: 5, remaining: 0, resetMs: 500, retryAfterMs: 0 });
  clock.advance(10_000);
  assert.equal(limiter.takeNow('k', 1, plan).remaining, 4, 'refill stops at the burst');
});

test('memory: many small refills add up to whole tokens (no float drift below an integer)', () => {
  const clock = manualClock();
  const limiter = new MemoryLimiter({ now: clock.now });
  const plan = { ratePerSec: 3, burst: 3 };
  limiter.takeNow('k', 3, plan);
  // 1/3 token per step: three steps make exactly one token, though 1/3+1/3+1/3 is not exact in floats.
  for (let i = 0; i < 3; i++) {
    clock.advance(1000 / 3);
    limiter.takeNow('k', 0, plan);
  }
  assert.equal(limiter.takeNow('k', 1, plan).allowed, true);
});

test('memory: a lowered burst caps what a bucket holds', () => {
  const limiter = new MemoryLimiter({ now: manualClock().now });
  limiter.takeNow('k', 1, { ratePerSec: 1, burst: 100 });
  assert.equal(limiter.takeNow('k', 1, { ratePerSec: 1, burst: 10 }).remaining, 9);
});

test('memory: a clock step back refills nothing and breaks nothing', () => {
  const clock = manualClock(10_000);
  const limiter = new MemoryLimiter({ now: clock.now });
  const plan = { ratePerSec: 1, burst: 2 };
  limiter.takeNow('k', 2, plan);
  clock.advance(-5000);
  assert.equal(limiter.takeNow('k', 1, plan).allowed, false);
});

test('memory: a bucket is forgotten once it would be full again (idle eviction), never before', () => {
  const clock = manualClock();
  const limiter = new MemoryLimiter({ now: clock.now, sweepIntervalMs: 100 });
  const plan = { ratePerSec: 10, burst: 5 };
  limiter.takeNow('idle', 5, plan); // empty: full again in 500 ms, kept for 500 + 1000 ms margin
  assert.equal(limiter.size, 1);
  clock.advance(1499);
  limiter.takeNow('other', 1, plan); // triggers a sweep
  assert.equal(limiter.size, 2, 'not yet');
  clock.advance(100); // the next sweep is due 100 ms after the last
  limiter.takeNow('other', 1, plan);
  assert.equal(limiter.size, 1, 'the idle bucket is gone');
  assert.equal(limiter.takeNow('idle', 1, plan).remaining, 4, 'and a forgotten bucket is a full one');
});

test('memory: a denial of an unknown key stores nothing', () => {
  const limiter = new MemoryLimiter({ now: manualClock().now });
  assert.equal(limiter.takeNow('k', 6, { ratePerSec: 1, burst: 5 }).allowed, false);
  assert.equal(limiter.size, 0);
});

test('memory: no bucket lives forever, even with no refill (maxTtlMs)', () => {
  const clock = manualClock();
  const limiter = new MemoryLimiter({ now: clock.now, maxTtlMs: 60_000, sweepIntervalMs: 1000 });
  limiter.takeNow('k', 1, { ratePerSec: 0, burst: 5 });
  clock.advance(60_000);
  limiter.sweep();
  assert.equal(limiter.size, 0);
});

test('memory: beyond maxKeys the least recently used bucket goes', () => {
  const limiter = new MemoryLimiter({ now: manualClock().now, maxKeys: 3 });
  const plan = { ratePerSec: 1, burst: 10 };
  for (const k of ['a', 'b', 'c']) limiter.takeNow(k, 1, plan);
  limiter.takeNow('a', 1, plan); // a is now the most recently used
  limiter.takeNow('d', 1, plan);
  assert.equal(limiter.size, 3);
  assert.equal(limiter.takeNow('a', 1, plan).remaining, 7, 'a kept its state');
  assert.equal(limiter.takeNow('b', 1, plan).remaining, 9, 'b was evicted: a fresh bucket');
});

test('memory: rejects bad options at construction', () => {
  assert.throws(() => new MemoryLimiter({ maxKeys: 0 }), TypeError);
  assert.throws(() => new MemoryLimiter({ maxTtlMs: 0 }), TypeError);
});

test('bucketKey: hash-tagged per principal, escaped so that no two (subject, model) pairs collide', () => {
  assert.equal(bucketKey('key:ab12'), '{infergate:rl:key:ab12}');
  assert.equal(bucketKey('key:ab12', 'iris'), '{infergate:rl:key:ab12}:iris');
  assert.notEqual(bucketKey('a}:b'), bucketKey('a', 'b}'));
  assert.equal(bucketKey('a}:b'), '{infergate:rl:a%7D:b}');
  assert.equal(bucketKey('x{y%'), '{infergate:rl:x%7By%25}');
});
