import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { PlainHistogram } from '../../../shared/metrics/plain-histogram.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVED: Array<[Record<string, string>, number]> = [
  [{ model: 'iris', version: '1' }, 0.0005],
  [{ model: 'cifar10', version: '2' }, 0.01],
  [{ model: 'iris', version: '1' }, 0.5],
  [{ model: 'iris', version: '1' }, 7], // above the last bound: +Inf only
  [{ model: 'cifar10', version: '2' }, 0.02],
];

/** The same observations through prom-client's Histogram and through PlainHistogram, each on a registry of its own. */
async function both(): Promise<{ theirs: Registry; ours: Registry; plain: PlainHistogram }> {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: 'h_seconds', help: 'help text', labelNames: ['model', 'version'], buckets: BUCKETS, registers: [theirs] });
  const plain = new PlainHistogram({ name: 'h_seconds', help: 'help text', buckets: BUCKETS, registers: [ours] });
  for (const [labels, value] of OBSERVED) {
    reference.observe(labels, value);
    plain.child(labels)(value);
  }
  return { theirs, ours, plain };
}

test('serialises exactly as prom-client\'s Histogram, text and JSON', async () => {
  const { theirs, ours } = await both();
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
});

test('a label set appears once observed, and reset empties it', async () => {
  const { ours, plain } = await both();
  plain.child({ model: 'never', version: '1' });
  assert.doesNotMatch(await ours.metrics(), /never/);
  plain.reset();
  assert.doesNotMatch(await ours.metrics(), /h_seconds_count/);
  assert.throws(() => plain.child({ model: 'iris', version: '1' })(Number.NaN), TypeError);
});
