/** Starts the proxy floor (proxy-floor-server.ts: bare node:http + http-proxy, round-robin) as a child process. */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { stopChild } from './stop-child.ts';
import { SERVER_NODE_FLAGS } from '../../../shared/cli/node-flags.ts';

const SERVER = fileURLToPath(new URL('./proxy-floor-server.ts', import.meta.url));

export interface ProxyFloor {
  url: string;
  pid: number;
  child: ChildProcess;
  /** performance.now() of this process when the floor was spawned (for profile windows). */
  spawnedAt: number;
  stop(): Promise<void>;
}

/**
 * `nodeArgs`: extra node flags, e.g. --cpu-prof to compare its profile with the gateway's. It runs
 * with the gateway's SERVER_NODE_FLAGS too, so the floor differs from the gateway in code only.
 */
export async function startProxyFloor(upstreams: readonly string[], nodeArgs: readonly string[] = []): Promise<ProxyFloor> {
  const spawnedAt = performance.now();
  const child = fork(SERVER, [JSON.stringify(upstreams)], { execArgv: ['--import', 'tsx', ...SERVER_NODE_FLAGS, ...nodeArgs], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  if (child.pid === undefined) throw new Error('proxy floor has no pid');
  return {
    url: `http://127.0.0.1:${message.port}`,
    pid: child.pid,
    child,
    spawnedAt,
    stop: () => stopChild(child),
  };
}
