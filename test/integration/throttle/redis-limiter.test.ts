// The Redis limiter against a real redis-server: the conformance suite shared with the memory
// limiter, then what only a shared store has to get right — TTL on every key, script cache loss,
// atomicity under concurrency and across processes, and the decision deadline when Redis dies,
// freezes or slows down.
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisLimiter } from '../../../gateway/throttle/redis-limiter.ts';
import { BUCKET_PREFIX, bucketKey, StoreUnavailableError, type RatePlan } from '../../../gateway/throttle/limiter.ts';
import { startRedis, skipUnlessControllable, type RedisFixture } from '../../helpers/redis.ts';
import { startTcpProxy } from '../../helpers/tcp-proxy.ts';
import { limiterConformance } from '../../unit/gateway/throttle/limiter-conformance.ts';

/** The decision deadline the fault tests hold the limiter to. */
const DEADLINE_MS = 50;
/** Slack on top of the deadline for timers and the event loop of a loaded test machine. */
const SLACK_MS = 100;

let shared: Promise<RedisFixture> | undefined;
after(async () => (await shared)?.stop());

/** One Redis for the tests that do not disturb it (their keys are unique). */
function sharedRedis(): Promise<RedisFixture> {
  shared ??= startRedis();
  return shared;
}

function limiterOn(t: TestContext, url: string, deadlineMs = 1000): RedisLimiter {
  const limiter = new RedisLimiter({ url, deadlineMs });
  t.after(() => limiter.close());
  return limiter;
}

function uniqueKey(model?: string): string {
  return bucketKey(`test-${randomUUID()}`, model);
}

limiterConformance('redis', async (t) => {
  const redis = await sharedRedis();
  const limiter = limiterOn(t, redis.url);
  await limiter.ready();
  return { limiter };
});

test('redis: every bucket key has a TTL, idle ones included, and expires once full again', async (t) => {
  const redis = await sharedRedis();
  const limiter = new RedisLimiter({ url: redis.url, deadlineMs: 1000, maxTtlMs: 5000 });
  t.after(() => limiter.close());
  await limiter.ready();
  // Only this test's keys are looked at, so it can share a Redis (REDIS_URL) with anything.
  const prefix = `ttl-${randomUUID()}`;
  let n = 0;
  const key = (model?: string): string => bucketKey(`${prefix}-${n++}`, model);
  const plans: RatePlan[] = [
    { ratePerSec: 50, burst: 5 },
    { ratePerSec: 0.001, burst: 100 }, // slow refill: TTL capped at maxTtlMs
    { ratePerSec: 0, burst: 3 }, // no refill at all: capped too
  ];
  const quick = key();
  await limiter.take(quick, 5, plans[0]!); // empty: full again in 100 ms
  for (const [i, plan] of plans.entries()) {
    for (let j = 0; j < 5; j++) await limiter.take(key(`m${i}`), 1, plan);
    const k = key();
    for (let j = 0; j < 10; j++) await limiter.take(k, 1, plan); // admissions then denials
  }
  assert.equal((await limiter.take(key('never'), 1000, plans[0]!)).allowed, false); // creates no key

  const client = redis.client();
  const checkTtls = async (): Promise<number> => {
    const keys: string[] = [];
    for (let cursor = '0'; ; ) {
      const [next, batch] = await client.scan(cursor, 'MATCH', `{${BUCKET_PREFIX}${prefix}-*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
      if (cursor === '0') break;
    }
    for (const k of keys) {
      const pttl = await client.pttl(k);
      assert.ok(pttl > 0 && pttl <= 5000, `${k} has PTTL ${pttl}`);
    }
    return keys.length;
  };
  assert.equal(await checkTtls(), 1 + plans.length * 6);
  assert.ok((await client.pttl(quick)) <= 1100, 'an empty 50/s bucket of 5 is full in 100 ms: TTL 100 ms + 1 s margin');
  await sleep(1200);
  assert.equal(await client.exists(quick), 0, 'the key is gone once the bucket is full again');
  // So are the other 50/s buckets (full within 100 ms); the slow ones stay, with their TTL.
  assert.equal(await checkTtls(), (plans.length - 1) * 6);
});

test('redis: a restarted Redis (empty script cache) and SCRIPT FLUSH are invisible to the caller', async (t) => {
  const redis = await startRedis(t);
  if (skipUnlessControllable(t, redis)) return;
  const limiter = limiterOn(t, redis.url);
  await limiter.ready();
  const plan = { ratePerSec: 1e-6, burst: 10 };
  const k = uniqueKey();
  assert.equal((await limiter.take(k, 1, plan)).remaining, 9);

  // SCRIPT FLUSH behind the limiter's back: its connection believes the script is loaded, sends
  // EVALSHA, gets NOSCRIPT, and ioredis resends the script — one call, no error.
  const admin = redis.client();
  await admin.script('FLUSH');
  assert.equal((await limiter.take(k, 1, plan)).remaining, 8);
  const errorstats = await admin.info('errorstats');
  assert.match(errorstats, /errorstat_NOSCRIPT:count=1\b/, 'the NOSCRIPT path was taken');

  // A fresh server on the same port: no keys, no scripts. Once the client has reconnected
  // (take() fails fast until then; the failover limiter covers that gap), the first call works.
  await redis.restart();
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      await limiter.client.ping();
      break;
    } catch {
      assert.ok(Date.now() < deadline, 'the limiter did not reconnect within 5 s');
      await sleep(20);
    }
  }
  const [loaded] = (await redis.client().script('EXISTS', scriptSha())) as number[];
  assert.equal(loaded, 0, 'the restarted server has no scripts');
  assert.equal((await limiter.take(k, 1, plan)).remaining, 9, 'a fresh bucket on the fresh server');
});

test('redis: 1000 simultaneous takes with burst 100 admit exactly 100', async (t) => {
  const redis = await sharedRedis();
  // Run 0 on one connection; runs 1 and 2 on four, as four replicas would have, 250 calls each.
  const limiters = Array.from({ length: 4 }, () => limiterOn(t, redis.url, 5000));
  await Promise.all(limiters.map((l) => l.ready()));
  for (let run = 0; run < 3; run++) {
    const k = uniqueKey();
    const plan = { ratePerSec: 1e-6, burst: 100 };
    const connections = run === 0 ? 1 : 4;
    const decisions = await Promise.all(Array.from({ length: 1000 }, (_, i) => limiters[i % connections]!.take(k, 1, plan)));
    assert.equal(decisions.filter((d) => d.allowed).length, 100, `run ${run}`);
    assert.deepEqual(
      decisions.filter((d) => d.allowed).map((d) => d.remaining).sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i),
      'each admission saw a distinct remaining count',
    );
  }
});

test('redis: three processes hammering one key admit <= burst + rate*t, and >= 95% of it', async (t) => {
  const redis = await sharedRedis();
  const script = fileURLToPath(new URL('./hammer.ts', import.meta.url));
  const rate = 200;
  const burst = 50;
  const durationMs = 2000;
  for (let run = 0; run < 3; run++) {
    const key = uniqueKey();
    const children = Array.from({ length: 3 }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, redis.url, key, String(rate), String(burst), String(durationMs), '16'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      t.after(() => child.kill('SIGKILL'));
      const lines = createInterface({ input: child.stdout! });
      const next = (): Promise<Record<string, number>> =>
        new Promise((resolve, reject) => {
          lines.once('line', (line) => resolve(JSON.parse(line) as Record<string, number>));
          child.once('exit', (code) => reject(new Error(`hammer exited with ${code}`)));
        });
      return { child, next };
    });
    const readies = children.map((c) => c.next());
    await Promise.all(readies);
    const results = children.map((c) => c.next());
    const go = performance.timeOrigin + performance.now() + 200;
    for (const c of children) c.child.stdin!.write(`${JSON.stringify({ go })}\n`);
    const stats = await Promise.all(results);
    await Promise.all(children.map((c) => (c.child.exitCode === null ? once(c.child, 'exit') : undefined)));

    const admitted = stats.reduce((n, s) => n + s.admitted!, 0);
    const denied = stats.reduce((n, s) => n + s.denied!, 0);
    assert.equal(stats.reduce((n, s) => n + s.errors!, 0), 0, 'no call failed');
    // The bucket starts full and every admission happened, by Redis TIME, within local bounds: the
    // span from the first admission to the last lies between tLow (last admitted call sent → first
    // reply seen) and tHigh (first call sent → last admitted reply). The load saturates the bucket
    // (denials outnumber admissions), so admissions track burst + rate*t closely: the invariant is
    // checked against tHigh, the 95% floor against tLow.
    const min = (f: (s: Record<string, number>) => number): number => Math.min(...stats.map(f));
    const max = (f: (s: Record<string, number>) => number): number => Math.max(...stats.map(f));
    const tHigh = (max((s) => s.lastAdmittedRepliedAt!) - min((s) => s.firstSentAt!)) / 1000;
    const tLow = (max((s) => s.lastAdmittedSentAt!) - min((s) => s.firstRepliedAt!)) / 1000;
    const upper = burst + rate * tHigh;
    const lower = burst + rate * tLow;
    t.diagnostic(`run ${run}: admitted ${admitted}, denied ${denied}, t ${tLow.toFixed(3)}..${tHigh.toFixed(3)} s, burst + rate*t ${lower.toFixed(1)}..${upper.toFixed(1)}, admitted/upper ${((100 * admitted) / upper).toFixed(1)}%`);
    assert.ok(admitted <= upper, `run ${run}: admitted ${admitted} > burst + rate*t = ${upper.toFixed(1)}`);
    assert.ok(admitted >= 0.95 * lower, `run ${run}: admitted ${admitted} < 95% of ${lower.toFixed(1)}`);
    assert.ok(denied > admitted, 'the load was well above the rate (else the test proves nothing)');
  }
});

test('redis: killed Redis → take() throws StoreUnavailableError within the deadline, also mid-load', async (t) => {
  const redis = await startRedis(t);
  if (skipUnlessControllable(t, redis)) return;
  const limiter = limiterOn(t, redis.url, DEADLINE_MS);
  await limiter.ready();
  const plan = { ratePerSec: 1e6, burst: 1e6 };
  const key = uniqueKey();
  let running = true;
  let worstMs = 0;
  let failures = 0;
  let successes = 0;
  const loops = Array.from({ length: 32 }, async () => {
    while (running) {
      const start = performance.now();
      try {
        await limiter.take(key, 1, plan);
        successes++;
      } catch (err) {
        assert.ok(err instanceof StoreUnavailableError, `unexpected ${String(err)}`);
        failures++;
      }
      worstMs = Math.max(worstMs, performance.now() - start);
      if (failures > 0) await sleep(1); // a failing call returns at once: do not spin the loop
    }
  });
  await sleep(200);
  await redis.kill();
  await sleep(300);
  running = false;
  await Promise.all(loops);
  t.diagnostic(`successes ${successes}, failures ${failures}, slowest call ${worstMs.toFixed(1)} ms`);
  assert.ok(successes > 0 && failures > 0);
  assert.ok(worstMs <= DEADLINE_MS + SLACK_MS, `a call took ${worstMs.toFixed(1)} ms, deadline ${DEADLINE_MS} ms`);

  const start = performance.now();
  await assert.rejects(limiter.take(key, 1, plan), StoreUnavailableError);
  assert.ok(performance.now() - start <= DEADLINE_MS + SLACK_MS);
});

test('redis: a frozen Redis (SIGSTOP) → take() fails at the deadline, then works again on resume', async (t) => {
  const redis = await startRedis(t);
  if (skipUnlessControllable(t, redis)) return;
  const limiter = limiterOn(t, redis.url, DEADLINE_MS);
  await limiter.ready();
  const plan = { ratePerSec: 1, burst: 10 };
  const key = uniqueKey();
  await limiter.take(key, 1, plan);
  redis.pause();
  t.after(() => redis.resume());
  const start = performance.now();
  await assert.rejects(limiter.take(key, 1, plan), StoreUnavailableError);
  const elapsed = performance.now() - start;
  t.diagnostic(`frozen Redis: failed after ${elapsed.toFixed(1)} ms`);
  assert.ok(elapsed >= DEADLINE_MS - 2 && elapsed <= DEADLINE_MS + SLACK_MS, `failed after ${elapsed.toFixed(1)} ms`);
  redis.resume();
  await sleep(50);
  // The timed-out call still ran once Redis woke (documented): 2 tokens gone, not 1.
  assert.equal((await limiter.take(key, 1, plan)).remaining, 7);
});

test('redis: 500 ms of latency on the link → take() fails at the deadline, not after 500 ms', async (t) => {
  const redis = await sharedRedis();
  const proxy = await startTcpProxy(t, redis.port);
  const limiter = limiterOn(t, `redis://127.0.0.1:${proxy.port}`, DEADLINE_MS);
  await limiter.ready();
  const plan = { ratePerSec: 1, burst: 10 };
  const key = uniqueKey();
  assert.equal((await limiter.take(key, 1, plan)).allowed, true);
  proxy.setDelay(500);
  const durations: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    await assert.rejects(limiter.take(key, 1, plan), StoreUnavailableError);
    durations.push(performance.now() - start);
  }
  t.diagnostic(`with 500 ms latency, calls failed after ${durations.map((d) => d.toFixed(1)).join(', ')} ms`);
  for (const d of durations) assert.ok(d >= DEADLINE_MS - 2 && d <= DEADLINE_MS + SLACK_MS, `failed after ${d.toFixed(1)} ms`);
  proxy.setDelay(0);
  await sleep(1100); // the late replies drain
  assert.equal((await limiter.take(key, 1, plan)).allowed, true, 'works again once the link is fast');
});

test('redis: a stalled link → take() fails at the deadline', async (t) => {
  const redis = await sharedRedis();
  const proxy = await startTcpProxy(t, redis.port);
  const limiter = limiterOn(t, `redis://127.0.0.1:${proxy.port}`, DEADLINE_MS);
  await limiter.ready();
  proxy.stall();
  const start = performance.now();
  await assert.rejects(limiter.take(uniqueKey(), 1, { ratePerSec: 1, burst: 1 }), StoreUnavailableError);
  const elapsed = performance.now() - start;
  assert.ok(elapsed <= DEADLINE_MS + SLACK_MS, `failed after ${elapsed.toFixed(1)} ms`);
  proxy.resetAll();
});

test('redis: rejects bad options at construction', () => {
  assert.throws(() => new RedisLimiter({ deadlineMs: 50 }), TypeError);
  assert.throws(() => new RedisLimiter({ url: 'redis://127.0.0.1:1', deadlineMs: 0 }), TypeError);
});

/** The SHA1 EVALSHA sends for token-bucket.lua. */
function scriptSha(): string {
  return createHash('sha1').update(readFileSync(new URL('../../../gateway/throttle/token-bucket.lua', import.meta.url), 'utf8')).digest('hex');
}
