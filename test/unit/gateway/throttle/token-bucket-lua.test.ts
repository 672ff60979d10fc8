// token-bucket.lua run directly against a real redis-server (test/helpers/redis.ts): several costs in
// one call are decided as the same takes one by one at one instant — the first ones that fit, in
// order, exact at the boundary — and the refill, the per-request headers' figures, the TTL, and
// tokens taken ahead for a lease (only from above half the burst) or given back (never past it).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startRedis, type RedisFixture } from '../../../helpers/redis.ts';
import { bucketKey } from '../../../../gateway/throttle/limiter.ts';

const LUA = readFileSync(new URL('../../../../gateway/throttle/token-bucket.lua', import.meta.url), 'utf8');
const MAX_TTL_MS = 60_000;

let shared: Promise<RedisFixture> | undefined;
after(async () => (await shared)?.stop());
async function client(): Promise<ReturnType<RedisFixture['client']>> {
  shared ??= startRedis();
  return (await shared).client();
}

interface Verdict {
  allowed: boolean;
  remaining: number;
  resetMs: number;
  retryAfterMs: number;
}

/** One script call deciding `costs` in order (no lease). */
async function run(key: string, rate: number, burst: number, costs: number[], maxTtlMs = MAX_TTL_MS): Promise<Verdict[]> {
  return (await runWithLease(key, rate, burst, {}, costs, maxTtlMs)).verdicts;
}

interface LeaseArgs {
  holder?: string;
  /** The holder's command number; default: the next of a counter shared by the tests. */
  seq?: number;
  /** Tokens the holder's lease still holds (they count against the burst). */
  held?: number;
  /** Unused tokens given back. */
  returned?: number;
  /** Tokens asked ahead. */
  want?: number;
  leaseMs?: number;
}

let commands = 0;

/** One script call deciding `costs` and moving tokens to or from a holder's lease. */
async function runWithLease(key: string, rate: number, burst: number, lease: LeaseArgs, costs: number[], maxTtlMs = MAX_TTL_MS): Promise<{ verdicts: Verdict[]; granted: number; left: number }> {
  const redis = await client();
  const { holder = '', seq = ++commands, held = 0, returned = 0, want = 0, leaseMs = 1000 } = lease;
  const reply = (await redis.eval(LUA, 1, key, rate, burst, maxTtlMs, leaseMs, holder, seq, held, returned, want, ...costs)) as number[];
  assert.equal(reply.length, 4 * costs.length + 2, 'four integers per request, then the lease granted and the tokens left');
  const verdicts = costs.map((_, i) => ({ allowed: reply[4 * i] === 1, remaining: reply[4 * i + 1]!, resetMs: reply[4 * i + 2]!, retryAfterMs: reply[4 * i + 3]! }));
  return { verdicts, granted: reply[4 * costs.length]!, left: reply[4 * costs.length + 1]! };
}

/** Redis TIME in microseconds. */
async function redisNowUs(): Promise<number> {
  const [s, us] = await (await client()).time();
  return Number(s) * 1e6 + Number(us);
}

const key = (): string => bucketKey(`lua-${randomUUID()}`);

test('token-bucket.lua: twelve unit costs in one call on a bucket of 10 admit exactly the first 10', async () => {
  const k = key();
  const verdicts = await run(k, 0, 10, Array(12).fill(1));
  assert.deepEqual(verdicts.map((v) => v.allowed), [...Array(10).fill(true), false, false]);
  assert.deepEqual(verdicts.map((v) => v.remaining), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0]);
  assert.deepEqual(verdicts.slice(10).map((v) => v.retryAfterMs), [-1, -1], 'no refill: never');
  // Exactly at the boundary: an empty bucket admits none of the next call's takes.
  assert.ok((await run(k, 0, 10, [1, 1, 1])).every((v) => !v.allowed));
});

test('token-bucket.lua: a batch equals the same takes one call each', async () => {
  const costs = [3, 0, 4, 5, 2, 1, 1, 6, 1];
  const batched = await run(key(), 0, 10, costs);
  const single = key();
  const oneByOne: Verdict[] = [];
  for (const c of costs) oneByOne.push(...(await run(single, 0, 10, [c])));
  assert.deepEqual(batched, oneByOne);
  // Mixed costs are greedy in arrival order: a denied 5 does not stop a later 2 that fits.
  assert.deepEqual(batched.map((v) => v.allowed), [true, true, true, false, true, true, false, false, false]);
  assert.deepEqual(batched.map((v) => v.remaining), [7, 7, 3, 3, 1, 0, 0, 0, 0]);
});

test('token-bucket.lua: costs above 1 wait for that many tokens; a cost above the burst never fits', async () => {
  const k = key();
  const rate = 10;
  const before = await redisNowUs();
  const [a, b, c, d] = await run(k, rate, 10, [8, 3, 11, 2]);
  const after = await redisNowUs();
  assert.deepEqual([a!.allowed, b!.allowed, c!.allowed, d!.allowed], [true, false, false, true]);
  assert.equal(c!.retryAfterMs, -1, 'cost 11 > burst 10: never');
  assert.equal(c!.remaining, 2, 'a denial takes nothing');
  // b: 3 tokens wanted, 2 there, 10/s: 100 ms (everything happened at one instant of the server clock).
  assert.equal(b!.retryAfterMs, 100);
  // After d the bucket is empty: full in 1 s at 10/s; a's reset is 8 tokens short: 800 ms.
  assert.equal(d!.resetMs, 1000);
  assert.equal(a!.resetMs, 800);
  assert.ok(after - before < 1e6, 'sanity: the call took less than a second');
});

test('token-bucket.lua: refills elapsed·rate by the server clock, capped at the burst', async () => {
  const redis = await client();
  const k = key();
  const rate = 10;
  // An empty bucket last written 1.5 s ago by the server clock: 15 tokens now (plus what accrues
  // between TIME and the script, bracketed below).
  const ts = (await redisNowUs()) - 1_500_000;
  await redis.hset(k, 'tokens', 0, 'ts', ts);
  const before = await redisNowUs();
  const verdicts = await run(k, rate, 100, Array(30).fill(1));
  const after = await redisNowUs();
  const admitted = verdicts.filter((v) => v.allowed).length;
  const min = Math.floor(((before - ts) * rate) / 1e6);
  const max = Math.floor(((after - ts) * rate) / 1e6);
  assert.ok(admitted >= min && admitted <= max, `admitted ${admitted}, expected ${min}..${max}`);
  assert.ok(admitted >= 15);
  // Long idle: the refill stops at the burst.
  await redis.hset(k, 'tokens', 0, 'ts', (await redisNowUs()) - 3600e6);
  assert.equal((await run(k, rate, 100, [0]))[0]!.remaining, 100);
});

test('token-bucket.lua: every call sets a TTL (time to full + 1 s, capped); a denial on no key creates none', async () => {
  const redis = await client();
  const k = key();
  await run(k, 10, 10, [5]); // 5 tokens short at 10/s: full in 500 ms
  const pttl = await redis.pttl(k);
  assert.ok(pttl > 1000 && pttl <= 1500, `PTTL ${pttl}, expected (1000, 1500]`);
  await run(k, 0.001, 10, [5], 5000); // a very slow refill: capped at maxTtlMs
  const capped = await redis.pttl(k);
  assert.ok(capped > 4000 && capped <= 5000, `PTTL ${capped}, expected the 5000 ms cap`);
  const none = key();
  assert.deepEqual((await run(none, 10, 10, [11, 12])).map((v) => v.allowed), [false, false]);
  assert.equal(await redis.exists(none), 0);
});

test('token-bucket.lua: a lease takes tokens ahead after the requests, only from above half the burst', async () => {
  const k = key();
  const first = await runWithLease(k, 0, 10, { holder: 'a', want: 3 }, [1, 1]);
  assert.deepEqual(first.verdicts.map((v) => v.remaining), [9, 8], 'the requests are decided first, as without a lease');
  assert.equal(first.granted, 3);
  assert.equal(first.left, 5, '10 - 2 - 3');
  const second = await runWithLease(k, 0, 10, { holder: 'a', held: 3, want: 3 }, [1]);
  assert.equal(second.granted, 0, '4 left after the request: below half the burst, nothing ahead');
  assert.equal(second.left, 4);
  const partial = await runWithLease(key(), 0, 10, { holder: 'b', want: 100 }, [2]);
  assert.equal(partial.granted, 3, 'asked 100, granted what lies above half the burst: 8 - 5');
  assert.equal(partial.left, 5);
  const denied = await runWithLease(k, 0, 10, {}, [5]);
  assert.equal(denied.verdicts[0]!.allowed, false, 'what the lease took is gone from the bucket');
});

test('token-bucket.lua: tokens a lease holds count against the burst: the bucket refills only up to burst minus every live lease', async () => {
  const k = key();
  assert.equal((await runWithLease(k, 1000, 100, { holder: 'a', want: 40, leaseMs: 5000 }, [1])).granted, 40);
  assert.equal((await runWithLease(k, 1000, 100, { holder: 'b', want: 9, leaseMs: 5000 }, [])).granted, 9);
  await new Promise((r) => setTimeout(r, 100)); // 100 tokens' worth of refill
  const filled = await runWithLease(k, 1000, 100, {}, []);
  assert.equal(filled.left, 51, 'refilled to 100 - 40 - 9, not to 100');
  const reported = await runWithLease(k, 1000, 100, { holder: 'a', held: 10 }, []);
  assert.equal(reported.left, 51, 'holder a reports 10 left (it spent 30): nothing held back is refilled at once...');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal((await runWithLease(k, 1000, 100, {}, [])).left, 81, '...but from now on the bucket may refill up to 100 - 10 - 9');
});

test('token-bucket.lua: a lease record ends at leaseMs; a give-back returns unused tokens within the cap and ends the record', async () => {
  const k = key();
  assert.equal((await runWithLease(k, 1000, 100, { holder: 'a', want: 30, leaseMs: 50 }, [])).granted, 30);
  const back = await runWithLease(k, 1000, 100, { holder: 'a', held: 0, returned: 30 }, []);
  assert.deepEqual(back.verdicts, []);
  assert.ok(back.left >= 99, `the unused 30 are back (${back.left})`);
  assert.equal((await runWithLease(k, 1000, 100, { holder: 'b', want: 30, leaseMs: 50 }, [])).granted, 30);
  await new Promise((r) => setTimeout(r, 120)); // b never gives back: its record stops counting at leaseMs
  assert.equal((await runWithLease(k, 1000, 100, {}, [])).left, 100, 'a holder gone quiet holds nothing once its lease is over');
  assert.equal(await (await client()).hexists(k, 'l:b'), 0, 'and its record is dropped once another caller sees it run out');
  const fresh = key();
  assert.equal((await runWithLease(fresh, 0, 10, { holder: 'c', returned: 5 }, [])).left, 10, 'never past the burst');
});

test('token-bucket.lua: a refill the lease cap held back is not earned again once the cap rises', async () => {
  // A review found this: the refill over the time since the last write was capped only by the cap
  // of the moment, so a holder reporting its lease spent could release a held-back refill at once.
  const k = key();
  assert.equal((await runWithLease(k, 1000, 200, { holder: 'a', want: 100, leaseMs: 5000 }, [])).granted, 100);
  assert.deepEqual((await runWithLease(k, 1000, 200, {}, Array(100).fill(1))).verdicts.filter((v) => v.allowed).length, 100, 'the other 100 spent');
  await new Promise((r) => setTimeout(r, 300)); // 300 tokens' worth of time, but the cap is 200 - 100
  const spent = await runWithLease(k, 1000, 200, { holder: 'a', held: 0 }, []); // a has used its 100
  assert.ok(spent.left <= 101, `the bucket holds what it could refill beside the lease, not more (${spent.left})`);
  const next = await runWithLease(k, 1000, 200, {}, Array(300).fill(1));
  const admitted = next.verdicts.filter((v) => v.allowed).length;
  assert.ok(admitted <= 102, `after the lease: ${admitted} admitted at once, not a full 200`);
});

test('token-bucket.lua: an older command of a holder arriving late does not replace its newer report', async () => {
  const k = key();
  await runWithLease(k, 0.001, 1000, {}, [100]);
  await runWithLease(k, 0.001, 1000, { holder: 'a', seq: 10, want: 200, leaseMs: 5000 }, []);
  const record = async (): Promise<string | null> => (await client()).hget(k, 'l:a');
  assert.match(String(await record()), /^200,\d+,10$/);
  await runWithLease(k, 0.001, 1000, { holder: 'a', seq: 9, held: 0, returned: 30 }, []); // a give-back sent before seq 10
  assert.match(String(await record()), /^200,\d+,10$/, 'the stale report of 0 held is not recorded');
  assert.equal((await runWithLease(k, 0.001, 1000, {}, [])).left, 730, 'its returned tokens still come back: 1000 - 100 - 200 + 30');
});

test('token-bucket.lua: the key lives as long as the longest lease recorded in it, whoever calls', async () => {
  const k = key();
  await runWithLease(k, 1000, 200, { holder: 'a', want: 100, leaseMs: 5000 }, []);
  await runWithLease(k, 1000, 200, {}, [1]); // a caller with leases off
  assert.ok(Number(await (await client()).pttl(k)) > 4000, 'not the caller\'s own 1 s margin');
});

test('token-bucket.lua: a caller that leases nothing here writes no record, and its denials write nothing', async () => {
  const k = key();
  await runWithLease(k, 0.001, 10, { holder: 'quiet', want: 0 }, Array(10).fill(1));
  assert.equal(await (await client()).hexists(k, 'l:quiet'), 0);
  const before = await (await client()).hgetall(k);
  await runWithLease(k, 0.001, 10, { holder: 'quiet', want: 5 }, [1, 1]);
  assert.deepEqual(await (await client()).hgetall(k), before, 'denied, nothing granted: the bucket is as it was');
});
