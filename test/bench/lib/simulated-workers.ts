/**
 * Simulated workers (`infergate worker --simulate-delay-ms`, worker/simulated/) for the scaling and
 * overload scenarios: a known service time and number of execution slots, no model, cheap on CPU.
 */
import { startProcess, waitFor, type RunningProcess } from '../../helpers/processes.ts';

export interface SimulatedWorkerOptions {
  delayMs: number;
  /** Execution slots (0 = any number at once). */
  concurrency: number;
  model?: string;
}

export interface SimulatedWorker {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export const SIMULATED_MODEL = 'simulated';

/** A small V2 JSON inference request (a simulated worker reads and checks it, then answers a fixed response). */
export const SIMULATED_REQUEST = {
  headers: { 'content-type': 'application/json' },
  body: Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }] })),
};

export async function startSimulatedWorkers(count: number, options: SimulatedWorkerOptions): Promise<SimulatedWorker[]> {
  const started = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startProcess(undefined, 'worker', {
        args: [
          '--port', '0', '--host', '127.0.0.1', '--worker-id', `sim-${i + 1}`,
          '--simulate-delay-ms', String(options.delayMs),
          '--simulate-concurrency', String(options.concurrency),
          '--simulate-models', options.model ?? SIMULATED_MODEL,
        ],
      }),
    ),
  );
  await Promise.all(started.map((p) => waitFor(async () => (await fetch(`${p.url}/v2/health/ready`)).status === 200, 30_000)));
  return started.map((p: RunningProcess) => ({
    url: p.url,
    pid: p.child.pid!,
    stop: async () => void (await p.stop()),
  }));
}
