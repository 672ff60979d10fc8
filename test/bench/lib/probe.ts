/**
 * Latency of a cheap endpoint (e.g. GET /v2/health/live) measured from a separate client process
 * while something else loads the server. See probe-child.ts for how it probes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { summarize, type LatencySummary } from './latency.ts';

const CHILD = fileURLToPath(new URL('./probe-child.ts', import.meta.url));

export interface ProbeResult extends LatencySummary {
  failures: number;
}

export interface Prober {
  start(url: string, intervalMs?: number): Promise<void>;
  stop(): Promise<ProbeResult>;
  close(): void;
}

type FromChild = { type: 'ready' } | { type: 'started' } | { type: 'stopped'; samples: number[]; failures: number };

function next(child: ChildProcess, type: FromChild['type']): Promise<FromChild> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromChild): void => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message);
    };
    const onExit = (code: number | null): void => reject(new Error(`probe process exited (code ${code})`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Forks the probe process (tsx loader) and waits until it can take commands. */
export async function createProber(): Promise<Prober> {
  const child = fork(CHILD, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await next(child, 'ready');
  return {
    async start(url, intervalMs = 10) {
      const started = next(child, 'started');
      child.send({ type: 'start', url, intervalMs, timeoutMs: 10_000 });
      await started;
    },
    async stop() {
      const stopped = next(child, 'stopped');
      child.send({ type: 'stop' });
      const message = (await stopped) as Extract<FromChild, { type: 'stopped' }>;
      return { ...summarize(message.samples), failures: message.failures };
    },
    close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.disconnect();
        void once(child, 'exit');
      }
    },
  };
}
