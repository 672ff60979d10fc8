// The shared deadline of the Redis limiter's waiting takes: entries still waiting at their deadline
// expire, once each and in the order they were added; entries settled in time never do; the queue
// keeps working across many rounds of adds (one timer re-armed, never one per entry).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeadlineQueue, type Deadlined } from '../../../../gateway/throttle/deadline-queue.ts';

interface Entry extends Deadlined {
  id: number;
}

const entry = (id: number): Entry => ({ id, deadline: 0, settled: false });

/** Resolves once `n` entries have expired (or fails after a generous wait on a loaded machine). */
function expiries(n: number): { expired: number[]; done: Promise<void>; onExpire(e: Entry): void } {
  const expired: number[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return {
    expired,
    done: Promise.race([done, sleep(10_000).then(() => assert.fail(`only ${expired.length} of ${n} entries expired`))]),
    onExpire(e) {
      expired.push(e.id);
      if (expired.length === n) resolve();
    },
  };
}

test('deadline queue: waiting entries expire in order, once; settled ones never', async () => {
  const seen = expiries(3);
  const queue = new DeadlineQueue<Entry>(20, (e) => seen.onExpire(e));
  const entries = Array.from({ length: 6 }, (_, i) => entry(i));
  for (const e of entries) queue.add(e);
  for (const i of [0, 2, 5]) entries[i]!.settled = true; // answered in time
  await seen.done;
  assert.deepEqual(seen.expired, [1, 3, 4]);
  for (const e of entries) assert.equal(e.settled, true, 'an expired entry is marked settled');
  await sleep(60);
  assert.deepEqual(seen.expired, [1, 3, 4], 'nothing expires twice');
});

test('deadline queue: entries added after a sweep get their own full deadline', async () => {
  const seen = expiries(2);
  const queue = new DeadlineQueue<Entry>(30, (e) => seen.onExpire(e));
  const first = entry(1);
  queue.add(first);
  await sleep(5);
  const second = entry(2);
  queue.add(second);
  assert.ok(second.deadline > first.deadline, 'deadlines follow the order of adds');
  assert.ok(second.deadline - first.deadline >= 4);
  await seen.done;
  assert.deepEqual(seen.expired, [1, 2]);
});

test('deadline queue: thousands of entries over many sweeps, only the unanswered expire', async () => {
  const total = 5000;
  const unanswered = Array.from({ length: total }, (_, i) => i).filter((i) => i % 7 === 3);
  const seen = expiries(unanswered.length);
  const queue = new DeadlineQueue<Entry>(5, (e) => seen.onExpire(e));
  for (let i = 0; i < total; i++) {
    const e = entry(i);
    queue.add(e);
    if (i % 7 !== 3) e.settled = true;
    if (i % 500 === 499) await sleep(2); // spread the adds over several sweeps
  }
  await seen.done;
  assert.deepEqual(seen.expired, unanswered);
});
