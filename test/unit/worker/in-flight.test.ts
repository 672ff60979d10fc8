import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InFlightRequests } from '../../../worker/http/in-flight.ts';

test('settled() resolves at once when nothing is in flight', async () => {
  const inFlight = new InFlightRequests();
  await inFlight.settled();
  assert.equal(inFlight.count, 0);
});

test('settled() waits for the last of several requests, and every waiter is told', async () => {
  const inFlight = new InFlightRequests();
  inFlight.begin();
  inFlight.begin();
  let settledCount = 0;
  const waiters = [inFlight.settled(), inFlight.settled()].map((p) => p.then(() => settledCount++));
  inFlight.end();
  await new Promise((r) => setImmediate(r));
  assert.equal(settledCount, 0, 'one request is still in flight');
  inFlight.end();
  await Promise.all(waiters);
  assert.equal(settledCount, 2);
  assert.equal(inFlight.count, 0);
});

test('a request that arrives while waiting is waited for too', async () => {
  const inFlight = new InFlightRequests();
  inFlight.begin();
  let settled = false;
  const waiting = inFlight.settled().then(() => (settled = true));
  inFlight.begin();
  inFlight.end();
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false);
  inFlight.end();
  await waiting;
  assert.equal(settled, true);
});
