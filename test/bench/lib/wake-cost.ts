/**
 * What waking a sleeping thread costs on this machine: the time `Atomics.notify` takes in the waker
 * when the other thread sleeps in `Atomics.wait`. On bare metal that is a futex syscall of about a
 * microsecond; on some VMs it is an inter-processor interrupt the hypervisor handles, 10–20 µs. Every
 * hand-off in the benchmarks pays it (a socket write that wakes the process at the other end, the
 * worker's main thread waking its session thread), so it explains much of why the same code measures
 * differently from one VM to the next, while NGINX, with fewer hand-offs per request, moves less.
 */
import { Worker } from 'node:worker_threads';
import { percentile } from './stats.ts';

export interface WakeCost {
  /** Median time of Atomics.notify in the waker, µs. */
  notifyUs: number;
  /** Median time from notify until the woken thread's answer is seen, µs. */
  roundTripUs: number;
  rounds: number;
}

const SLEEPER = `
const { workerData } = require('node:worker_threads');
const cell = new Int32Array(workerData);
for (let seen = 0; ; ) {
  Atomics.wait(cell, 0, seen);
  seen = Atomics.load(cell, 0);
  if (seen < 0) break;
  Atomics.store(cell, 1, seen);
}`;

/** Measures `rounds` wake-ups, each after the other thread has had a millisecond to fall asleep. */
export async function measureWakeCost(rounds = 200): Promise<WakeCost> {
  const cell = new Int32Array(new SharedArrayBuffer(8));
  const sleeper = new Worker(SLEEPER, { eval: true, workerData: cell.buffer });
  const notify: number[] = [];
  const roundTrip: number[] = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (let i = 1; i <= rounds; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      Atomics.store(cell, 0, i);
      const t0 = performance.now();
      Atomics.notify(cell, 0, 1);
      const t1 = performance.now();
      const deadline = t1 + 100;
      while (Atomics.load(cell, 1) !== i && performance.now() < deadline);
      notify.push((t1 - t0) * 1000);
      roundTrip.push((performance.now() - t0) * 1000);
    }
  } finally {
    Atomics.store(cell, 0, -1);
    Atomics.notify(cell, 0, 1);
    await sleeper.terminate();
  }
  return { notifyUs: percentile(notify, 50), roundTripUs: percentile(roundTrip, 50), rounds };
}
