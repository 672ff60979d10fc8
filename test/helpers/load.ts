/**
 * A bounded closed-loop load generator for tests: `concurrency` loops send until stopped. Every
 * answer is counted by status (0 = no HTTP answer: the connection failed or the request timed out),
 * and every non-2xx one is kept with the start of its body.
 *
 * @example
 *   const load = startLoad(() => fetch(url, { signal: AbortSignal.timeout(10_000) }), 8);
 *   // ... inject a fault; load.progress() shows the counts so far ...
 *   const { sent, failures, statuses } = await load.stop();
 */
export interface LoadFailure {
  status: number;
  body: string;
  /** When the request was sent, performance.now() ms, and how long it took. */
  at: number;
  ms: number;
}

export interface LoadResult {
  sent: number;
  failures: LoadFailure[];
  /** Answers by status code ("0" for a request that got no HTTP answer). */
  statuses: Record<string, number>;
  /** The slowest request, ms. */
  worstMs: number;
}

export interface RunningLoad {
  /** The counts so far (a copy), while the load keeps running. */
  progress(): LoadResult;
  stop(): Promise<LoadResult>;
}

export function startLoad(send: () => Promise<Response>, concurrency: number): RunningLoad {
  let running = true;
  const result: LoadResult = { sent: 0, failures: [], statuses: {}, worstMs: 0 };
  const record = (status: number, body: string, at: number): void => {
    const ms = performance.now() - at;
    result.sent++;
    result.statuses[status] = (result.statuses[status] ?? 0) + 1;
    result.worstMs = Math.max(result.worstMs, ms);
    if (status < 200 || status > 299) result.failures.push({ status, body: body.slice(0, 300), at, ms });
  };
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const at = performance.now();
      try {
        const res = await send();
        record(res.status, await res.text(), at);
      } catch (err) {
        record(0, (err as Error).message, at);
      }
    }
  });
  return {
    progress: () => ({ ...result, failures: [...result.failures], statuses: { ...result.statuses } }),
    async stop() {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}
