// The admission wait queue: FIFO per key, exactly one waiter per offered slot, the bound, and every
// way out (client gone, deadline, wait timer, close) unlinking the waiter and clearing its timer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import type { ClientPresence, Waiter } from '../../../gateway/upstreams/presence.ts';
import { WaitQueue, type WaitOutcome } from '../../../gateway/upstreams/wait-queue.ts';

/** A request context's presence slot, as RequestContext keeps it. */
class Client implements ClientPresence {
  clientGone = false;
  waiter: Waiter | undefined = undefined;

  waitOn(waiter: Waiter | undefined): void {
    this.waiter = waiter;
  }

  leave(): void {
    this.clientGone = true;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.clientGone();
  }

  deadline(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.deadlinePassed();
  }
}

const LONG = 60_000;

/** Starts a wait and records its outcome when it settles. */
function enqueue(queue: WaitQueue<string>, key: string, options: { waitMs?: number; accepts?: (slot: string) => boolean; seq?: number } = {}) {
  const client = new Client();
  const state: { client: Client; outcome: WaitOutcome<string> | undefined; promise: Promise<WaitOutcome<string>> } = { client, outcome: undefined, promise: undefined! };
  state.promise = queue.wait(key, { waitMs: options.waitMs ?? LONG, client, ...(options.accepts && { accepts: options.accepts }), ...(options.seq !== undefined && { seq: options.seq }) });
  void state.promise.then((o) => (state.outcome = o));
  return state;
}

function timeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

test('slots go to waiters oldest first, one waiter per offered slot', async () => {
  const queue = new WaitQueue<string>({ maxQueued: 100 });
  const waiters = Array.from({ length: 5 }, () => enqueue(queue, 'm'));
  assert.equal(queue.size, 5);
  for (let i = 0; i < waiters.length; i++) {
    assert.equal(queue.wakeOne(['m'], `w${i}`), true);
    await tick();
    const settled = waiters.filter((w) => w.outcome !== undefined);
    assert.equal(settled.length, i + 1, 'each offer wakes exactly one waiter');
    const outcome = waiters[i]!.outcome;
    assert.ok(outcome?.kind === 'woken' && outcome.slot === `w${i}`, `waiter ${i} gets the ${i}th slot`);
    assert.equal(waiters[i]!.client.waiter, undefined, 'the presence slot is cleared');
  }
  assert.equal(queue.wakeOne(['m'], 'spare'), false, 'nobody left to take a slot');
  assert.equal(queue.size, 0);
});

test('a slot goes to the oldest waiter among the keys the worker serves, stepping over waiters that refuse it', async () => {
  const queue = new WaitQueue<string>({ maxQueued: 100 });
  const onA = enqueue(queue, 'a');
  const onB = enqueue(queue, 'b');
  const onC = enqueue(queue, 'c');
  queue.wakeOne(['b', 'c'], 'w1');
  await tick();
  assert.equal(onB.outcome?.kind, 'woken', 'b is older than c');
  assert.equal(onA.outcome, undefined, 'a worker not serving a never wakes its waiters');
  const refuses = enqueue(queue, 'c', { accepts: (slot) => slot !== 'w2' });
  const later = enqueue(queue, 'c');
  queue.wakeOne(['c'], 'w2');
  await tick();
  assert.equal(onC.outcome?.kind, 'woken');
  queue.wakeOne(['c'], 'w2');
  await tick();
  assert.equal(refuses.outcome, undefined, 'a waiter that already failed on w2 is not handed w2');
  assert.equal(later.outcome?.kind, 'woken');
  assert.equal(queue.size, 2);
  queue.close();
});

test('adaptive LIFO: a queue that has not emptied for lifoAfterMs hands slots to the newest waiter, and oldest-first returns once it empties', async () => {
  let now = 1000;
  const queue = new WaitQueue<string>({ maxQueued: 100, lifoAfterMs: 100, now: () => now });
  const waiters = Array.from({ length: 4 }, () => enqueue(queue, 'm'));
  now += 99;
  assert.equal(queue.lifo, false, 'a queue younger than lifoAfterMs is a burst: oldest first');
  queue.wakeOne(['m'], 'w1');
  await tick();
  assert.equal(waiters[0]!.outcome?.kind, 'woken');
  now += 1;
  assert.equal(queue.lifo, true);
  const newcomer = enqueue(queue, 'm');
  queue.wakeOne(['m'], 'w2');
  await tick();
  assert.equal(newcomer.outcome?.kind, 'woken', 'a standing queue serves the newest first');
  const refuses = enqueue(queue, 'm', { accepts: (slot) => slot !== 'w3' });
  queue.wakeOne(['m'], 'w3');
  await tick();
  assert.equal(refuses.outcome, undefined, 'the newest waiter that refuses the worker is stepped over');
  assert.equal(waiters[3]!.outcome?.kind, 'woken', 'the next newest takes it');
  for (const w of [refuses, waiters[1]!, waiters[2]!]) w.client.leave();
  await tick();
  assert.equal(queue.size, 0);
  const first = enqueue(queue, 'm');
  const second = enqueue(queue, 'm');
  assert.equal(queue.lifo, false, 'the queue emptied: its age starts again');
  queue.wakeOne(['m'], 'w4');
  await tick();
  assert.equal(first.outcome?.kind, 'woken', 'oldest first again');
  second.client.leave();
});

test('lifoAfterMs 0 keeps oldest first however long the queue stands', async () => {
  let now = 0;
  const queue = new WaitQueue<string>({ maxQueued: 100, lifoAfterMs: 0, now: () => now });
  const older = enqueue(queue, 'm');
  const newer = enqueue(queue, 'm');
  now += 60_000;
  assert.equal(queue.lifo, false);
  queue.wakeOne(['m'], 'w1');
  await tick();
  assert.equal(older.outcome?.kind, 'woken');
  newer.client.leave();
});

test('a waiter handed a slot it could not use keeps its place when it waits again', async () => {
  const queue = new WaitQueue<string>({ maxQueued: 100 });
  const first = enqueue(queue, 'm');
  const second = enqueue(queue, 'm');
  queue.wakeOne(['m'], 'w');
  const outcome = await first.promise;
  assert.equal(outcome.kind, 'woken');
  const again = enqueue(queue, 'm', { seq: (outcome as { seq: number }).seq });
  queue.wakeOne(['m'], 'w');
  await tick();
  assert.equal(again.outcome?.kind, 'woken', 'the re-entered waiter goes ahead of the one behind it');
  assert.equal(second.outcome, undefined);
  queue.close();
  assert.equal((await second.promise).kind, 'closed');
});

test('a full queue refuses at once; waits that cannot start end at once', async () => {
  const queue = new WaitQueue<string>({ maxQueued: 2 });
  enqueue(queue, 'a');
  enqueue(queue, 'b');
  assert.deepEqual(await enqueue(queue, 'a').promise, { kind: 'full' });
  assert.equal(queue.size, 2);
  assert.deepEqual(await enqueue(new WaitQueue<string>({ maxQueued: 0 }), 'a').promise, { kind: 'full' });
  assert.deepEqual(await enqueue(queue, 'a', { waitMs: 0 }).promise, { kind: 'timeout' });
  const gone = new Client();
  gone.clientGone = true;
  assert.deepEqual(await queue.wait('a', { waitMs: LONG, client: gone }), { kind: 'gone' });
  queue.close();
  assert.equal(queue.size, 0);
  assert.throws(() => new WaitQueue({ maxQueued: -1 }), /maxQueued/);
});

test('waiters leave on client disconnect, deadline and wait expiry, and free their place', async () => {
  const queue = new WaitQueue<string>({ maxQueued: 3 });
  const leaving = enqueue(queue, 'm');
  const expiring = enqueue(queue, 'm');
  const timed = enqueue(queue, 'm', { waitMs: 5 });
  leaving.client.leave();
  expiring.client.deadline();
  assert.deepEqual(await leaving.promise, { kind: 'gone' });
  assert.deepEqual(await expiring.promise, { kind: 'timeout' });
  assert.deepEqual(await timed.promise, { kind: 'timeout' });
  assert.equal(queue.size, 0);
  assert.equal(queue.sizeOf('m'), 0);
  const next = enqueue(queue, 'm');
  assert.equal(queue.wakeOne(['m'], 'w'), true, 'only live waiters are offered slots');
  assert.equal((await next.promise).kind, 'woken');
});

test('10 000 enqueue/cancel cycles leave no waiter, timer or presence slot behind', async () => {
  const queue = new WaitQueue<string>({ maxQueued: 64 });
  const before = timeouts();
  const clients: Client[] = [];
  for (let i = 0; i < 10_000; i++) {
    const w = enqueue(queue, `m${i % 7}`);
    clients.push(w.client);
    if (i % 4 === 0) w.client.leave();
    else if (i % 4 === 1) w.client.deadline();
    else if (i % 4 === 2) queue.wakeOne([`m${i % 7}`], 'w');
    // i % 4 === 3: left waiting, then every one of them is closed below
    if (i % 64 === 63) queue.close();
  }
  queue.close();
  await tick();
  assert.equal(queue.size, 0);
  assert.equal(timeouts(), before, 'every wait timer was cleared');
  assert.ok(clients.every((c) => c.waiter === undefined), 'no presence slot still points at a waiter');
});
