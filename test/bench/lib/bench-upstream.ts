/** Starts bench-upstream-server.ts (a worker-shaped upstream with a fixed answer) as a child process. */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { BenchUpstreamOptions } from './bench-upstream-server.ts';
import { stopChild } from './stop-child.ts';

const SERVER = fileURLToPath(new URL('./bench-upstream-server.ts', import.meta.url));

export type { BenchUpstreamOptions };

export interface BenchUpstream {
  readonly id: string;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly options: BenchUpstreamOptions;
  /** Inference requests it has answered since it started. */
  inferCount(): Promise<number>;
  /** Inference requests answered and TCP connections accepted since it started. */
  counts(): Promise<{ infer: number; connections: number }>;
  stop(): Promise<void>;
}

export async function startBenchUpstream(options: BenchUpstreamOptions): Promise<BenchUpstream> {
  const child: ChildProcess = fork(SERVER, [JSON.stringify(options)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  const pid = child.pid;
  if (pid === undefined) throw new Error('bench upstream has no pid');
  const counts = (): Promise<{ infer: number; connections: number }> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: { type?: string; infer?: number; connections?: number }): void => {
        if (m.type !== 'counts') return;
        child.off('message', onMessage);
        resolve({ infer: m.infer ?? 0, connections: m.connections ?? 0 });
      };
      child.on('message', onMessage);
      child.send({ type: 'counts' }, (err) => {
        if (err) {
          child.off('message', onMessage);
          reject(err);
        }
      });
    });
  return {
    id: options.id,
    url: `http://127.0.0.1:${message.port}`,
    port: message.port,
    pid,
    options,
    inferCount: async () => (await counts()).infer,
    counts,
    stop: () => stopChild(child),
  };
}
