/** A bounded closed-loop load generator for tests: `concurrency` loops send until stopped. */
export interface LoadResult {
  sent: number;
  failures: Array<{ status: number; body: string }>;
}

export function startLoad(send: () => Promise<Response>, concurrency: number): { stop(): Promise<LoadResult> } {
  let running = true;
  const result: LoadResult = { sent: 0, failures: [] };
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const res = await send();
        const body = await res.text();
        result.sent++;
        if (!res.ok) result.failures.push({ status: res.status, body: body.slice(0, 300) });
      } catch (err) {
        result.sent++;
        result.failures.push({ status: 0, body: (err as Error).message });
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}
