/**
 * Simulated workers (`infergate worker --simulate-delay-ms`, worker/simulated/) for the scaling and
 * overload scenarios: a known service time and number of execution slots, no model, cheap on CPU.
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startProcess, waitFor, type RunningProcess } from '../../helpers/processes.ts';
import type { SimulatedFleetOptions } from './simulated-fleet-server.ts';
import { stopChild } from './stop-child.ts';

const FLEET_SERVER = fileURLToPath(new URL('./simulated-fleet-server.ts', import.meta.url));

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

/**
 * `count` simulated workers served by one child process, each on its own port with its own slots
 * and queue (see simulated-fleet-server.ts for why one process). Every returned worker carries the
 * same pid; `stop` of any of them stops them all.
 */
export async function startSimulatedFleet(count: number, options: SimulatedWorkerOptions): Promise<SimulatedWorker[]> {
  const fleet: SimulatedFleetOptions = { count, delayMs: options.delayMs, concurrency: options.concurrency, model: options.model ?? SIMULATED_MODEL };
  const child = fork(FLEET_SERVER, [JSON.stringify(fleet)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ ports: number[] }];
  const pid = child.pid;
  if (pid === undefined) throw new Error('simulated fleet has no pid');
  const urls = message.ports.map((port) => `http://127.0.0.1:${port}`);
  await Promise.all(urls.map((url) => waitFor(async () => (await fetch(`${url}/v2/health/ready`)).status === 200, 30_000)));
  const stop = (): Promise<void> => stopChild(child);
  return urls.map((url) => ({ url, pid, stop }));
}
