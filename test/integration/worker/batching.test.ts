// Dynamic batching: concurrent requests are merged into fewer session runs (seen in the worker's
// metrics), each request gets exactly its own rows back, and results equal unbatched ones.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO_MODELS, startWorker, type RunningProcess } from '../../helpers/processes.ts';
import { metricSum } from '../../helpers/metrics.ts';
import { inferBinary } from '../../helpers/v2-client.ts';

let worker: RunningProcess;
before(async () => {
  worker = await startWorker(undefined, DEMO_MODELS);
});
after(() => worker.stop());

const irisRow = (i: number): Float32Array => Float32Array.from([4.5 + (i % 30) / 10, 2 + (i % 7) / 5, 1 + (i % 50) / 10, 0.1 + (i % 25) / 10]);

test('concurrent requests share session runs and each gets its own answer', async () => {
  const n = 96;
  // Unbatched reference: one request at a time, so no two can meet in the queue.
  const alone: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const res = await inferBinary(worker.url, 'iris', [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: irisRow(i) }]);
    alone.push(res.output('probabilities').data as Float32Array);
  }
  const labels = { model: 'iris', version: '1' };
  const runsBefore = await metricSum(worker.url, 'infergate_worker_session_runs_total', labels);
  const requestsBefore = await metricSum(worker.url, 'infergate_worker_batched_requests_total', labels);

  const together = await Promise.all(Array.from({ length: n }, (_, i) =>
    inferBinary(worker.url, 'iris', [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: irisRow(i) }])));

  const runs = (await metricSum(worker.url, 'infergate_worker_session_runs_total', labels)) - runsBefore;
  const requests = (await metricSum(worker.url, 'infergate_worker_batched_requests_total', labels)) - requestsBefore;
  assert.equal(requests, n);
  assert.ok(runs < n, `expected fewer session runs than requests, got ${runs} runs for ${n} requests`);
  const biggest = await metricSum(worker.url, 'infergate_worker_batch_size_bucket', { ...labels, le: '1' });
  const total = await metricSum(worker.url, 'infergate_worker_batch_size_count', labels);
  assert.ok(biggest < total, 'some runs carried more than one row');

  together.forEach((res, i) => {
    const got = res.output('probabilities').data as Float32Array;
    // Same model, same row: a merged run may sum in another order, so allow float32 rounding only.
    got.forEach((v, j) => assert.ok(Math.abs(v - alone[i]![j]!) <= 1e-6, `row ${i}[${j}]: batched ${v} vs alone ${alone[i]![j]}`));
  });
});

test('requests with several rows are merged and split back by row count', async () => {
  const sizes = [1, 3, 5, 2, 7, 4];
  let start = 0;
  const requests = sizes.map((rows) => {
    const data = new Float32Array(rows * 4);
    for (let r = 0; r < rows; r++) data.set(irisRow(start + r), r * 4);
    start += rows;
    return { rows, data };
  });
  const results = await Promise.all(requests.map(({ rows, data }) =>
    inferBinary(worker.url, 'iris', [{ name: 'features', datatype: 'FP32', shape: [rows, 4], data }])));
  for (const [i, res] of results.entries()) {
    const rows = requests[i]!.rows;
    assert.deepEqual(res.output('probabilities').shape, [rows, 3]);
    const single = await inferBinary(worker.url, 'iris', [{ name: 'features', datatype: 'FP32', shape: [rows, 4], data: requests[i]!.data }]);
    const a = res.output('probabilities').data as Float32Array;
    const b = single.output('probabilities').data as Float32Array;
    a.forEach((v, j) => assert.ok(Math.abs(v - b[j]!) <= 1e-6));
  }
});
