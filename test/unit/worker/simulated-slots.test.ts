// The simulated worker's execution slots: at most `concurrency` jobs run, the rest wait in arrival
// order up to the queue bound, a waiting job can withdraw, and a release is counted once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExecutionSlots, type Release } from '../../../worker/simulated/slots.ts';

test('jobs beyond the slots wait in FIFO order, and the queue is bounded', () => {
  const slots = new ExecutionSlots({ concurrency: 2, maxQueueSize: 2 });
  const started: string[] = [];
  const releases = new Map<string, Release>();
  const job = (name: string) => (release: Release): void => {
    started.push(name);
    releases.set(name, release);
  };
  for (const name of ['a', 'b', 'c', 'd']) assert.notEqual(slots.acquire(job(name)), undefined);
  assert.deepEqual(started, ['a', 'b']);
  assert.equal(slots.queueDepth, 2);
  assert.equal(slots.acquire(job('e')), undefined, 'the queue is full');
  releases.get('a')!();
  releases.get('a')!(); // a second release of the same slot changes nothing
  assert.deepEqual(started, ['a', 'b', 'c']);
  releases.get('b')!();
  assert.deepEqual(started, ['a', 'b', 'c', 'd']);
  assert.equal(slots.queueDepth, 0);
});

test('a waiting job that withdraws never starts and frees its place', () => {
  const slots = new ExecutionSlots({ concurrency: 1, maxQueueSize: 1 });
  const started: string[] = [];
  let releaseFirst: Release = () => undefined;
  slots.acquire((release) => {
    started.push('first');
    releaseFirst = release;
  });
  const withdraw = slots.acquire(() => started.push('withdrawn'))!;
  withdraw();
  assert.equal(slots.queueDepth, 0);
  assert.notEqual(slots.acquire(() => started.push('next')), undefined, 'its place in the queue is free again');
  releaseFirst();
  assert.deepEqual(started, ['first', 'next']);
});

test('concurrency 0 means no limit', () => {
  const slots = new ExecutionSlots({ concurrency: 0, maxQueueSize: 0 });
  let running = 0;
  for (let i = 0; i < 1000; i++) slots.acquire(() => running++);
  assert.equal(running, 1000);
  assert.equal(slots.queueDepth, 0);
});
