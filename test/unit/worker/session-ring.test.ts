import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';
import { RING_SLOTS, RingClient } from '../../../worker/repository/session-ring.ts';
import type { FrameTensor } from '../../../worker/repository/tensor-frame.ts';

const BOOT = new URL('../../../worker/repository/thread-boot.js', import.meta.url);
const ECHO = new URL('./ring-echo-thread.ts', import.meta.url).href;

/** A ring whose other end is a real thread echoing every request (ring-echo-thread.ts). */
function echoRing(t: TestContext): { ring: RingClient; thread: Worker } {
  const ring = new RingClient();
  const thread = new Worker(BOOT, { workerData: { entry: ECHO, ring: ring.threadEnd }, transferList: [ring.threadEnd.port] });
  thread.on('message', () => ring.collect());
  t.after(() => thread.terminate());
  return { ring, thread };
}

const floats = (n: number, seed: number): FrameTensor => ({ index: 0, datatype: 'FP32', shape: [n], data: Float32Array.from({ length: n }, (_, i) => seed + i) });

describe('session ring', () => {
  test('many more runs than slots at once: each answered with its own data, none lost', async (t) => {
    const { ring } = echoRing(t);
    const count = RING_SLOTS * 25;
    const answers = await Promise.all(Array.from({ length: count }, (_, i) => ring.submit([floats(8, i * 1000)], [0, i % 3])));
    answers.forEach((frame, i) => assert.deepEqual(Array.from(frame.tensors[0]!.data as Float32Array), Array.from({ length: 8 }, (_, k) => i * 1000 + k)));
  });

  test('a frame larger than its slot grows the slot both ways; small frames keep working after it', async (t) => {
    const { ring } = echoRing(t);
    const sizes = [16, 1_000_000, 16, 300_000, 3_000_000, 16];
    const answers = await Promise.all(sizes.map((n, i) => ring.submit([floats(n, i), { index: 1, datatype: 'BYTES', shape: [1], data: [Uint8Array.from([i])] }], [0, 0])));
    answers.forEach((frame, i) => {
      const data = frame.tensors[0]!.data as Float32Array;
      assert.equal(data.length, sizes[i]);
      assert.equal(data[data.length - 1], i + sizes[i]! - 1);
      assert.deepEqual(frame.tensors[1]!.data, [Uint8Array.from([i])]);
    });
  });

  test('a run that throws fails only its own submission, with the thread\'s message', async (t) => {
    const { ring } = echoRing(t);
    const outcomes = await Promise.allSettled([0, 1, 0, 1, 0].map((fail, i) => ring.submit([floats(2, i)], [fail, 0])));
    assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((outcomes[1] as PromiseRejectedResult).reason.message), /run refused: first value 1/);
  });

  test('a thread waiting on an empty ring terminates (Atomics.wait is interrupted)', { timeout: 20_000 }, async (t) => {
    const { ring, thread } = echoRing(t);
    await ring.submit([floats(1, 0)], [0, 0]);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the thread now sleeps in Atomics.wait
    assert.equal(await thread.terminate(), 1);
  });

  test('failAll rejects the runs in flight and those waiting for a slot', async (t) => {
    const { ring, thread } = echoRing(t);
    const running = ring.submit([floats(1, 0)], [0, 60_000]);
    const waiting = Array.from({ length: RING_SLOTS + 2 }, () => ring.submit([floats(1, 0)], [0, 0]));
    await thread.terminate();
    ring.failAll(new Error('session thread exited'));
    for (const p of [running, ...waiting]) await assert.rejects(p, /session thread exited/);
    ring.collect(); // a late doorbell finds nothing to answer and throws nothing
    await assert.rejects(ring.submit([floats(1, 0)], [0, 0]), /session thread exited/);
  });
});
