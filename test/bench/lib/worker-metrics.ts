/**
 * Reads the worker's own Prometheus counters around a measurement window, to tell how requests
 * were batched and how long session runs took: runs, requests per run, compute and queue time.
 */

export interface SchedulerSnapshot {
  runs: number;
  batchedRequests: number;
  computeSeconds: number;
  computeCount: number;
  queueSeconds: number;
  queueCount: number;
}

export interface SchedulerStats {
  runs: number;
  /** Requests merged into one session run, on average. */
  requestsPerRun: number;
  /** Mean wall time of one session run, thread hand-off included. */
  computeMsPerRun: number;
  /** Mean time a request waited in the model queue. */
  queueMs: number;
}

function sample(text: string, metric: string, model: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    if (!line.includes(`model="${model}"`)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

export async function scrapeScheduler(baseUrl: string, model: string): Promise<SchedulerSnapshot> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return {
    runs: sample(text, 'infergate_worker_session_runs_total', model),
    batchedRequests: sample(text, 'infergate_worker_batched_requests_total', model),
    computeSeconds: sample(text, 'infergate_worker_compute_duration_seconds_sum', model),
    computeCount: sample(text, 'infergate_worker_compute_duration_seconds_count', model),
    queueSeconds: sample(text, 'infergate_worker_queue_duration_seconds_sum', model),
    queueCount: sample(text, 'infergate_worker_queue_duration_seconds_count', model),
  };
}

export function schedulerDelta(before: SchedulerSnapshot, after: SchedulerSnapshot): SchedulerStats {
  const runs = after.runs - before.runs;
  const computeCount = after.computeCount - before.computeCount;
  const queueCount = after.queueCount - before.queueCount;
  return {
    runs,
    requestsPerRun: runs > 0 ? (after.batchedRequests - before.batchedRequests) / runs : Number.NaN,
    computeMsPerRun: computeCount > 0 ? ((after.computeSeconds - before.computeSeconds) * 1000) / computeCount : Number.NaN,
    queueMs: queueCount > 0 ? ((after.queueSeconds - before.queueSeconds) * 1000) / queueCount : Number.NaN,
  };
}
