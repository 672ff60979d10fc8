import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { InfergateError } from '../../../shared/errors.ts';
import type { Tensor } from '../../../shared/protocol/datatypes.ts';
import type { Runner } from '../../../worker/repository/session-runner.ts';
import { Scheduler, type ScheduledRequest, type SchedulerOptions } from '../../../worker/scheduler/scheduler.ts';

/** Any input holding this value makes the fake model fail the whole run. */
const POISON = 666;

/**
 * A model instance under the test's control. Output 'y' is the input 'x' times ten (same shape),
 * output 'sum' is each row's sum (shape [rows]); so every caller can check it got back its own rows.
 * `hold()` makes runs wait until `release()`.
 */
class FakeRunner implements Runner {
  readonly calls: Array<{ rows: number; width: number; values: number[] }> = [];
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;

  hold(): void {
    this.#gate = new Promise((resolve) => { this.#open = resolve; });
  }

  release(): void {
    this.#open?.();
    this.#gate = undefined;
  }

  async run(inputs: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]> {
    const x = inputs[0]!;
    const values = Array.from(x.data as Float32Array);
    const [rows = 1, width = 1] = x.shape;
    this.calls.push({ rows, width, values });
    await (this.#gate ?? Promise.resolve());
    if (values.includes(POISON)) throw new Error('poisoned input');
    return outputNames.map((name): Tensor => {
      if (name === 'sum') {
        const sums = Array.from({ length: rows }, (_, r) => values.slice(r * width, (r + 1) * width).reduce((a, b) => a + b, 0));
        return { name, datatype: 'FP32', shape: [rows], data: Float32Array.from(sums) };
      }
      return { name, datatype: 'FP32', shape: [...x.shape], data: Float32Array.from(values, (v) => v * 10) };
    });
  }

  async close(): Promise<void> {}
}

/** A manual clock: scheduling decisions read it; only timers (delays, deadlines) run in real time. */
function clock(): { now: () => number; set(ms: number): void } {
  let t = 0;
  return { now: () => t, set: (ms) => { t = ms; } };
}

type Setup = Partial<SchedulerOptions> & { runners: FakeRunner[] };
function scheduler(setup: Setup): { s: Scheduler; time: ReturnType<typeof clock> } {
  const time = clock();
  const s = new Scheduler({ maxBatchSize: 8, maxQueueSize: 100, now: time.now, ...setup });
  return { s, time };
}

const FAR = 60_000;
function request(rows: number[][], extra: Partial<ScheduledRequest> = {}): ScheduledRequest {
  const width = rows[0]?.length ?? 0;
  return {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, width], data: Float32Array.from(rows.flat()) }],
    outputNames: ['y'],
    deadline: FAR,
    queueTimeoutMs: FAR,
    ...extra,
  };
}

/** What the fake model answers for `rows`, worked out here rather than by the runner. */
function expectedY(rows: number[][]): Tensor[] {
  return [{ name: 'y', datatype: 'FP32', shape: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat().map((v) => v * 10)) }];
}

async function until(condition: () => boolean, what: string, timeoutMs = 1000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) assert.fail(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

const deadlineExceeded = { name: 'InfergateError', code: 'WK_ERR_DEADLINE_EXCEEDED', status: 504 };
const batching = { maxQueueDelayMs: 0, preferredBatchSizes: [] };

describe('without dynamic batching', () => {
  test('every request runs alone, in arrival order', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner] });
    runner.hold();
    const a = s.submit(request([[1, 2]]));
    const b = s.submit(request([[3, 4]]));
    const c = s.submit(request([[5, 6], [7, 8]]));
    runner.release();
    assert.deepEqual(await Promise.all([a, b, c]), [expectedY([[1, 2]]), expectedY([[3, 4]]), expectedY([[5, 6], [7, 8]])]);
    assert.deepEqual(runner.calls.map((c) => c.values), [[1, 2], [3, 4], [5, 6, 7, 8]]);
  });

  test('maxBatchSize 0 never merges either', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], maxBatchSize: 0, dynamicBatching: batching });
    runner.hold();
    const all = [s.submit(request([[1]])), s.submit(request([[2]])), s.submit(request([[3]]))];
    runner.release();
    await Promise.all(all);
    assert.equal(runner.calls.length, 3);
  });
});

describe('dynamic batching', () => {
  test('concurrent requests share a run, and each gets exactly its own rows back', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], dynamicBatching: batching });
    runner.hold();
    const a = s.submit(request([[1, 1]])); // takes the idle instance at once
    const b = s.submit(request([[2, 2], [3, 3]]));
    const c = s.submit(request([[4, 4]]));
    const d = s.submit(request([[5, 5], [6, 6], [7, 7]]));
    assert.equal(s.queueDepth, 3);
    runner.release();
    assert.deepEqual(await b, expectedY([[2, 2], [3, 3]]));
    assert.deepEqual(await c, expectedY([[4, 4]]));
    assert.deepEqual(await d, expectedY([[5, 5], [6, 6], [7, 7]]));
    assert.deepEqual(await a, expectedY([[1, 1]]));
    assert.deepEqual(runner.calls.map((call) => call.rows), [1, 6], 'four requests, two runs');
  });

  test('a merged run never exceeds maxBatchSize; a request that does not fit waits for the next run', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], maxBatchSize: 4, dynamicBatching: batching });
    runner.hold();
    const rows = (n: number, v: number): number[][] => Array.from({ length: n }, () => [v]);
    const a = s.submit(request(rows(1, 1)));
    const b = s.submit(request(rows(3, 2)));
    const c = s.submit(request(rows(2, 3))); // 3 + 2 > 4: skipped for now
    const d = s.submit(request(rows(1, 4))); // fills B's run to exactly 4
    const e = s.submit(request(rows(2, 5)));
    runner.release();
    const results = await Promise.all([a, b, c, d, e]);
    assert.deepEqual(results, [expectedY(rows(1, 1)), expectedY(rows(3, 2)), expectedY(rows(2, 3)), expectedY(rows(1, 4)), expectedY(rows(2, 5))]);
    assert.deepEqual(runner.calls.map((call) => call.values), [[1], [2, 2, 2, 4], [3, 3, 5, 5]]);
    assert.ok(runner.calls.every((call) => call.rows <= 4));
  });

  test('a preferred batch size is dispatched at once, without waiting out the delay', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], dynamicBatching: { maxQueueDelayMs: 10_000, preferredBatchSizes: [3] } });
    const a = s.submit(request([[1]]));
    const b = s.submit(request([[2]]));
    await sleep(10);
    assert.equal(runner.calls.length, 0, 'two rows: neither full nor preferred, so they wait');
    const c = s.submit(request([[3]]));
    await Promise.all([a, b, c]);
    assert.deepEqual(runner.calls.map((call) => call.values), [[1, 2, 3]]);
  });

  test('a full batch (maxBatchSize rows) is dispatched at once', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], maxBatchSize: 2, dynamicBatching: { maxQueueDelayMs: 10_000, preferredBatchSizes: [] } });
    const a = s.submit(request([[1]]));
    await sleep(5);
    assert.equal(runner.calls.length, 0);
    await Promise.all([a, s.submit(request([[2]]))]);
    assert.deepEqual(runner.calls.map((call) => call.values), [[1, 2]]);
  });

  test('the oldest request waits maxQueueDelayMs (on the injected clock) for company, then goes', async () => {
    const runner = new FakeRunner();
    const { s, time } = scheduler({ runners: [runner], dynamicBatching: { maxQueueDelayMs: 20, preferredBatchSizes: [] } });
    const a = s.submit(request([[1]]));
    await sleep(30); // the real delay timer fires, but the clock says no time has passed
    assert.equal(runner.calls.length, 0);
    time.set(5);
    const b = s.submit(request([[2]]));
    await sleep(5);
    assert.equal(runner.calls.length, 0, '5 ms waited of 20');
    time.set(20);
    await Promise.all([a, b]);
    assert.deepEqual(runner.calls.map((call) => call.values), [[1, 2]]);
  });

  test('requests with different non-batch shapes are not merged', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], dynamicBatching: batching });
    runner.hold();
    const a = s.submit(request([[0, 0]]));
    const b = s.submit(request([[1, 1]]));
    const c = s.submit(request([[2, 2, 2]]));
    const d = s.submit(request([[3, 3]]));
    runner.release();
    assert.deepEqual(await Promise.all([a, b, c, d]), [expectedY([[0, 0]]), expectedY([[1, 1]]), expectedY([[2, 2, 2]]), expectedY([[3, 3]])]);
    assert.deepEqual(runner.calls.map((call) => call.values), [[0, 0], [1, 1, 3, 3], [2, 2, 2]]);
  });

  test('requests asking for different outputs are not merged', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], dynamicBatching: batching });
    runner.hold();
    const a = s.submit(request([[0, 0]]));
    const b = s.submit(request([[1, 2]], { outputNames: ['sum'] }));
    const c = s.submit(request([[3, 4]]));
    const d = s.submit(request([[5, 6]], { outputNames: ['sum'] }));
    runner.release();
    await a;
    assert.deepEqual(await b, [{ name: 'sum', datatype: 'FP32', shape: [1], data: Float32Array.from([3]) }]);
    assert.deepEqual(await c, expectedY([[3, 4]]));
    assert.deepEqual(await d, [{ name: 'sum', datatype: 'FP32', shape: [1], data: Float32Array.from([11]) }]);
    assert.deepEqual(runner.calls.map((call) => call.values), [[0, 0], [1, 2, 5, 6], [3, 4]]);
  });

  test('a failed merged run is retried request by request, so only the bad request fails', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], dynamicBatching: batching });
    runner.hold();
    const a = s.submit(request([[0]]));
    const b = s.submit(request([[1]]));
    const bad = s.submit(request([[POISON]]));
    const badRejected = assert.rejects(bad, { name: 'InfergateError', code: 'WK_ERR_INFERENCE_FAILED', status: 500, message: /poisoned input/ });
    const d = s.submit(request([[3], [4]]));
    runner.release();
    assert.deepEqual(await b, expectedY([[1]]));
    assert.deepEqual(await d, expectedY([[3], [4]]));
    await badRejected;
    await a;
    assert.deepEqual(runner.calls.map((call) => call.values), [[0], [1, POISON, 3, 4], [1], [POISON], [3, 4]]);
  });
});

describe('queue limits and deadlines', () => {
  test('a full queue refuses with WK_ERR_QUEUE_FULL (503) and Retry-After', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], maxQueueSize: 2 });
    runner.hold();
    const running = s.submit(request([[1]]));
    const queued = [s.submit(request([[2]])), s.submit(request([[3]]))];
    assert.equal(s.queueDepth, 2);
    await assert.rejects(s.submit(request([[4]])), (err: unknown) => {
      assert.ok(err instanceof InfergateError);
      assert.equal(err.code, 'WK_ERR_QUEUE_FULL');
      assert.equal(err.status, 503);
      assert.match(err.headers['Retry-After'] ?? '', /^[1-9]\d*$/, 'Retry-After is a positive number of seconds');
      return true;
    });
    runner.release();
    await Promise.all([running, ...queued]);
    assert.equal(runner.calls.length, 3, 'the refused request never ran');
  });

  test('a request whose deadline has already passed is refused without running', async () => {
    const runner = new FakeRunner();
    const { s, time } = scheduler({ runners: [runner] });
    time.set(1000);
    await assert.rejects(s.submit(request([[1]], { deadline: 1000 })), deadlineExceeded);
    assert.equal(runner.calls.length, 0);
  });

  test('a deadline that passes while queued answers 504 and the request never runs', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner] });
    runner.hold();
    const a = s.submit(request([[1]]));
    const late = s.submit(request([[2]], { deadline: 15 }));
    await assert.rejects(late, deadlineExceeded);
    assert.equal(s.queueDepth, 0);
    runner.release();
    assert.deepEqual(await a, expectedY([[1]]));
    await sleep(5);
    assert.deepEqual(runner.calls.map((call) => call.values), [[1]]);
  });

  test('a deadline that passes while running answers 504 without waiting for the run', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner] });
    runner.hold();
    // The queue timeout (10) fires first, finds the request running, and leaves it to its deadline (30).
    const slow = s.submit(request([[1]], { deadline: 30, queueTimeoutMs: 10 }));
    await assert.rejects(slow, deadlineExceeded);
    assert.equal(s.running, 1, 'the instance is still busy with the abandoned run');
    runner.release();
    assert.deepEqual(await s.submit(request([[2]])), expectedY([[2]]), 'the scheduler carries on once the run ends');
  });

  test('waiting in the queue longer than queueTimeoutMs answers 504, even without a deadline', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner] });
    runner.hold();
    const a = s.submit(request([[1]]));
    const waiting = s.submit(request([[2]], { deadline: Infinity, queueTimeoutMs: 15 }));
    await assert.rejects(waiting, deadlineExceeded);
    assert.equal(s.queueDepth, 0);
    runner.release();
    await a;
    assert.deepEqual(runner.calls.map((call) => call.values), [[1]]);
  });

  test('the queue timeout does not cut short a run that has started', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner] });
    runner.hold();
    const outcome = s.submit(request([[1]], { deadline: Infinity, queueTimeoutMs: 10 })).then(() => 'answered', () => 'refused');
    await sleep(30);
    runner.release();
    assert.equal(await outcome, 'answered');
  });

  test('a queue timeout longer than a Node timer can hold (2^31 - 1 ms) is honoured',
    async () => {
      const runner = new FakeRunner();
      const { s } = scheduler({ runners: [runner] });
      runner.hold();
      const a = s.submit(request([[1]]));
      const outcome = s.submit(request([[2]], { deadline: Infinity, queueTimeoutMs: 2 ** 31 })).then(() => 'answered', () => 'refused');
      await sleep(20);
      runner.release();
      await a;
      assert.equal(await outcome, 'answered');
    });

  test('aborting a queued request removes it from the queue; it never runs', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner] });
    runner.hold();
    const a = s.submit(request([[1]]));
    const aborter = new AbortController();
    const gone = s.submit(request([[2]], { signal: aborter.signal }));
    const c = s.submit(request([[3]]));
    assert.equal(s.queueDepth, 2);
    aborter.abort();
    await assert.rejects(gone, { name: 'InfergateError' });
    assert.equal(s.queueDepth, 1);
    runner.release();
    await Promise.all([a, c]);
    assert.deepEqual(runner.calls.map((call) => call.values), [[1], [3]]);
  });

  test('a request whose signal is already aborted is refused and never runs',
    async () => {
      const runner = new FakeRunner();
      const { s } = scheduler({ runners: [runner] });
      runner.hold();
      const a = s.submit(request([[1]]));
      const aborter = new AbortController();
      aborter.abort();
      const gone = s.submit(request([[2]], { signal: aborter.signal })).then(() => 'ran', () => 'refused');
      runner.release();
      await a;
      assert.equal(await gone, 'refused');
      assert.deepEqual(runner.calls.map((call) => call.values), [[1]]);
    });
});

describe('drain and concurrency', () => {
  test('drain() resolves once queued and running requests have settled, and refuses new ones', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner] });
    runner.hold();
    const events: string[] = [];
    const a = s.submit(request([[1]])).then((r) => { events.push('a'); return r; });
    const b = s.submit(request([[2]])).then((r) => { events.push('b'); return r; });
    const drained = s.drain().then(() => { events.push('drained'); });
    await assert.rejects(s.submit(request([[3]])), { name: 'InfergateError', code: 'WK_ERR_MODEL_NOT_READY', status: 503 });
    await sleep(5);
    assert.deepEqual(events, [], 'not drained while work is outstanding');
    runner.release();
    await drained;
    assert.deepEqual(events, ['a', 'b', 'drained']);
    assert.deepEqual(await a, expectedY([[1]]));
    assert.deepEqual(await b, expectedY([[2]]));
  });

  test('drain() on an idle scheduler resolves at once', async () => {
    const { s } = scheduler({ runners: [new FakeRunner()] });
    await s.drain();
    await assert.rejects(s.submit(request([[1]])), { status: 503 });
  });

  test('with two instances, two runs go on at the same time', async () => {
    const one = new FakeRunner();
    const two = new FakeRunner();
    const { s } = scheduler({ runners: [one, two] });
    one.hold();
    two.hold();
    const a = s.submit(request([[1]]));
    const b = s.submit(request([[2]]));
    await until(() => one.calls.length === 1 && two.calls.length === 1, 'both instances to start');
    assert.equal(s.running, 2);
    assert.equal(s.queueDepth, 0);
    one.release();
    two.release();
    assert.deepEqual(await Promise.all([a, b]), [expectedY([[1]]), expectedY([[2]])]);
  });

  test('with two busy instances, waiting requests are merged onto whichever frees first', async () => {
    const one = new FakeRunner();
    const two = new FakeRunner();
    const { s } = scheduler({ runners: [one, two], dynamicBatching: batching });
    one.hold();
    two.hold();
    const first = [s.submit(request([[1]])), s.submit(request([[2]]))];
    const waiting = [s.submit(request([[3]])), s.submit(request([[4]]))];
    two.release();
    assert.deepEqual(await Promise.all(waiting), [expectedY([[3]]), expectedY([[4]])]);
    one.release();
    await Promise.all(first);
    const runs = [...one.calls, ...two.calls].map((call) => call.values).sort((x, y) => x[0]! - y[0]!);
    assert.deepEqual(runs, [[1], [2], [3, 4]]);
  });

  test('a scheduler needs at least one instance', () => {
    assert.throws(() => scheduler({ runners: [] }), /at least one runner/);
  });
});

describe('pipeline depth', () => {
  test('at depth 2 an instance is handed a second run while its first is still going; a third waits', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], pipelineDepth: 2 });
    runner.hold();
    const results = [s.submit(request([[1]])), s.submit(request([[2]])), s.submit(request([[3]]))];
    await sleep(5);
    assert.deepEqual(runner.calls.map((c) => c.values), [[1], [2]], 'two runs handed over, the third still queued');
    assert.equal(s.queueDepth, 1);
    runner.release();
    assert.deepEqual(await Promise.all(results), [expectedY([[1]]), expectedY([[2]]), expectedY([[3]])]);
  });

  const DEEP = { depth: 4, belowMs: 1 };

  test('a model measured fast gets the deep pipeline: four runs handed at once, the fifth queued', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], pipelineDepth: 2, deepPipeline: DEEP });
    assert.equal(s.pipelineDepth, 2, 'nothing measured yet: the base depth');
    await s.submit(request([[0]])); // the manual clock stands still: a run of 0 ms
    await sleep(1); // the run is recorded once the runner's promise chain has unwound
    assert.equal(s.pipelineDepth, 4);
    runner.hold();
    const results = [1, 2, 3, 4, 5].map((v) => s.submit(request([[v]])));
    await sleep(5);
    assert.deepEqual(runner.calls.slice(1).map((c) => c.values), [[1], [2], [3], [4]]);
    assert.equal(s.queueDepth, 1);
    runner.release();
    assert.deepEqual(await Promise.all(results), [1, 2, 3, 4, 5].map((v) => expectedY([[v]])));
  });

  test('a model measured slow keeps the base depth, so its queue limit and timeout still bind', async () => {
    const runner = new FakeRunner();
    const { s, time } = scheduler({ runners: [runner], pipelineDepth: 2, deepPipeline: DEEP, maxQueueSize: 1 });
    runner.hold();
    const first = s.submit(request([[0]]));
    await sleep(1);
    time.set(50); // the run took 50 ms
    runner.release();
    await first;
    await sleep(1);
    assert.equal(s.pipelineDepth, 2);
    runner.hold();
    const results = [s.submit(request([[1]])), s.submit(request([[2]])), s.submit(request([[3]]))];
    await assert.rejects(s.submit(request([[4]])), { code: 'WK_ERR_QUEUE_FULL' });
    await sleep(5);
    assert.equal(runner.calls.length, 3, 'two runs handed over, the third queued');
    runner.release();
    await Promise.all(results);
  });

  test('time spent waiting behind the previous run does not count as the run\'s own', async () => {
    // Runs end one at a time, when the test says so (FakeRunner's gate would end them together).
    const ends: Array<() => void> = [];
    const runner: Runner = {
      run: (inputs) => new Promise<Tensor[]>((resolve) => ends.push(() => resolve([{ ...inputs[0]!, name: 'y' }]))),
      close: async () => {},
    };
    const time = clock();
    const s = new Scheduler({ runners: [runner], maxBatchSize: 8, maxQueueSize: 100, now: time.now, pipelineDepth: 2, deepPipeline: DEEP });
    // Two runs handed over at t=0; the first ends at 0.9 ms, the second at 1.8 ms: each ran 0.9 ms
    // (fast), though the second was in flight for 1.8 ms (which would tip the average over 1 ms).
    const a = s.submit(request([[1]]));
    const b = s.submit(request([[2]]));
    await until(() => ends.length === 2, 'both runs handed over');
    time.set(0.9);
    ends[0]!();
    await a;
    await sleep(1);
    time.set(1.8);
    ends[1]!();
    await b;
    await sleep(1);
    assert.equal(s.pipelineDepth, 4, 'runs of 0.9 ms are fast');
  });

  test('dynamic batching keeps the base depth however fast the runs are: requests wait in the queue to be merged', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner], pipelineDepth: 2, deepPipeline: DEEP, dynamicBatching: { maxQueueDelayMs: 0, preferredBatchSizes: [] } });
    await s.submit(request([[0]]));
    await sleep(1);
    assert.equal(s.pipelineDepth, 2);
  });

  test('at the default depth of 1 an instance has one run at a time', async () => {
    const runner = new FakeRunner();
    const { s } = scheduler({ runners: [runner] });
    runner.hold();
    const results = [s.submit(request([[1]])), s.submit(request([[2]]))];
    await sleep(5);
    assert.equal(runner.calls.length, 1);
    runner.release();
    await Promise.all(results);
  });
});
