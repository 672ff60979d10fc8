/** Starts the bare-HTTP floor server (http-floor-server.ts) as a child process. */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { stopChild } from './stop-child.ts';

const SERVER = fileURLToPath(new URL('./http-floor-server.ts', import.meta.url));

export interface FloorServer {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startFloorServer(): Promise<FloorServer> {
  const child = fork(SERVER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return {
    url: `http://127.0.0.1:${message.port}`,
    child,
    stop: () => stopChild(child),
  };
}
