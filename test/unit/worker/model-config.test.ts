import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ModelConfigError, parseModelConfig, readModelConfig } from '../../../worker/repository/model-config.ts';

const FILE = 'models/iris/config.json';
const configError = (message: RegExp) => ({ name: 'ModelConfigError', message });

describe('parseModelConfig', () => {
  test('an empty config is all defaults', () => {
    assert.deepEqual(parseModelConfig({}, FILE), {
      maxBatchSize: 0,
      maxQueueSize: 1024,
      queueTimeoutMs: 30_000,
      versionPolicy: { latest: 1 },
      labels: {},
      session: { intraOpThreads: 1, interOpThreads: 1, graphOptimizationLevel: 'all' },
      instanceCount: 1,
    });
  });

  test('dynamic batching is off unless asked for; an empty block gets its own defaults', () => {
    assert.equal(parseModelConfig({}, FILE).dynamicBatching, undefined);
    assert.deepEqual(parseModelConfig({ dynamicBatching: {} }, FILE).dynamicBatching, { maxQueueDelayMs: 0, preferredBatchSizes: [] });
  });

  test('a partial session block keeps the defaults for the keys it leaves out', () => {
    assert.deepEqual(parseModelConfig({ session: { intraOpThreads: 4 } }, FILE).session, { intraOpThreads: 4, interOpThreads: 1, graphOptimizationLevel: 'all' });
  });

  test('the documented example is accepted as written', () => {
    const config = parseModelConfig({
      maxBatchSize: 64,
      dynamicBatching: { maxQueueDelayMs: 1, preferredBatchSizes: [16, 64] },
      labels: { probabilities: ['setosa', 'versicolor', 'virginica'] },
    }, FILE);
    assert.equal(config.maxBatchSize, 64);
    assert.deepEqual(config.dynamicBatching, { maxQueueDelayMs: 1, preferredBatchSizes: [16, 64] });
    assert.deepEqual(config.labels, { probabilities: ['setosa', 'versicolor', 'virginica'] });
  });

  test('each version policy form is accepted', () => {
    assert.deepEqual(parseModelConfig({ versionPolicy: { latest: 2 } }, FILE).versionPolicy, { latest: 2 });
    assert.deepEqual(parseModelConfig({ versionPolicy: { all: true } }, FILE).versionPolicy, { all: true });
    assert.deepEqual(parseModelConfig({ versionPolicy: { specific: [1, 3] } }, FILE).versionPolicy, { specific: [1, 3] });
  });

  test('an unknown key is an error naming the key and the file', () => {
    assert.throws(() => parseModelConfig({ maxBatchSise: 8 }, FILE), ModelConfigError);
    assert.throws(() => parseModelConfig({ maxBatchSise: 8 }, FILE), configError(/^models\/iris\/config\.json: .*unknown key 'maxBatchSise'/));
  });

  test('an unknown nested key is named by its full path', () => {
    assert.throws(() => parseModelConfig({ dynamicBatching: { foo: 1 } }, FILE), configError(/models\/iris\/config\.json: .*unknown key 'dynamicBatching\.foo'/));
    assert.throws(() => parseModelConfig({ session: { threads: 2 } }, FILE), configError(/unknown key 'session\.threads'/));
  });

  test('a value of the wrong type is an error naming the key, the file and what was expected', () => {
    assert.throws(() => parseModelConfig({ maxBatchSize: '8' }, FILE), configError(/models\/iris\/config\.json: .*maxBatchSize: .*expected number.*string/));
    assert.throws(() => parseModelConfig({ labels: { probs: [1] } }, FILE), configError(/labels\.probs\.0: .*expected string/));
    assert.throws(() => parseModelConfig({ session: { graphOptimizationLevel: 'max' } }, FILE), configError(/session\.graphOptimizationLevel/));
  });

  test('out-of-range values are errors naming the key', () => {
    assert.throws(() => parseModelConfig({ maxBatchSize: -1 }, FILE), configError(/maxBatchSize/));
    assert.throws(() => parseModelConfig({ maxBatchSize: 1.5 }, FILE), configError(/maxBatchSize/));
    assert.throws(() => parseModelConfig({ instanceCount: 0 }, FILE), configError(/instanceCount/));
    assert.throws(() => parseModelConfig({ maxQueueSize: 0 }, FILE), configError(/maxQueueSize/));
    assert.throws(() => parseModelConfig({ dynamicBatching: { maxQueueDelayMs: -5 } }, FILE), configError(/dynamicBatching\.maxQueueDelayMs/));
    assert.throws(() => parseModelConfig({ dynamicBatching: { preferredBatchSizes: [0] } }, FILE), configError(/dynamicBatching\.preferredBatchSizes/));
    assert.throws(() => parseModelConfig({ versionPolicy: { latest: 0 } }, FILE), configError(/versionPolicy/));
  });

  test('every problem is reported at once', () => {
    assert.throws(() => parseModelConfig({ maxBatchSize: 'x', bogus: 1 }, FILE), configError(/maxBatchSize.*; .*'bogus'|'bogus'.*; .*maxBatchSize/));
  });

  test('a config that is not an object is refused', () => {
    assert.throws(() => parseModelConfig([], FILE), configError(/models\/iris\/config\.json: \(top level\)/));
    assert.throws(() => parseModelConfig(null, FILE), configError(/models\/iris\/config\.json: \(top level\)/));
  });
});

describe('readModelConfig', () => {
  test('a missing file means all defaults', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'infergate-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    assert.deepEqual(await readModelConfig(join(dir, 'config.json')), parseModelConfig({}, 'defaults'));
  });

  test('a file is read and validated', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'infergate-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'config.json');
    await writeFile(path, JSON.stringify({ maxBatchSize: 16, instanceCount: 2 }));
    const config = await readModelConfig(path);
    assert.equal(config.maxBatchSize, 16);
    assert.equal(config.instanceCount, 2);
  });

  test('invalid JSON is an error naming the file', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'infergate-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'config.json');
    await writeFile(path, '{"maxBatchSize": 8,');
    await assert.rejects(readModelConfig(path), { name: 'ModelConfigError', message: new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid JSON`) });
  });

  test('an unknown key in a file names that file', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'infergate-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'config.json');
    await writeFile(path, '{"dynamicBatching": {"maxQueueDelay": 5}}');
    await assert.rejects(readModelConfig(path), (err: unknown) => {
      assert.ok(err instanceof ModelConfigError);
      assert.ok(err.message.startsWith(`${path}: `), err.message);
      assert.match(err.message, /unknown key 'dynamicBatching\.maxQueueDelay'/);
      return true;
    });
  });
});
