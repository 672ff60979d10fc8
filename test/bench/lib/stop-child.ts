/**
 * Stops a forked bench server: closes its IPC channel (the servers exit when it closes), and kills
 * it if it has not exited within 5 s. Resolves at once when it is already gone.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
