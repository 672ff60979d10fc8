/**
 * What the processes of one gateway (`--processes <n>`, node:cluster) tell each other over the
 * cluster IPC channel, and the child's side of it. The primary only relays; every child is a full
 * gateway with its own pool, breakers and in-flight counts.
 *
 * - `listening`: a child serves both ports (the primary logs once all of them do).
 * - `strategy`: a balancing strategy set through one child's admin API. The primary remembers the
 *   last one and hands it to every child it starts later (a restarted child agrees with its
 *   siblings); it relays it to the siblings only without Redis — with Redis the strategy broadcast
 *   (gateway/config/strategy-broadcast.ts) reaches siblings and other replicas alike.
 */
import cluster from 'node:cluster';

export type SiblingMessage =
  | { type: 'infergate:listening'; url: string; admin: string }
  /** `relay`: the siblings need it from the primary (no Redis broadcast reaches them). */
  | { type: 'infergate:strategy'; strategy: string; relay: boolean };

export function isSiblingMessage(value: unknown): value is SiblingMessage {
  if (value === null || typeof value !== 'object') return false;
  const message = value as Record<string, unknown>;
  if (message.type === 'infergate:listening') return typeof message.url === 'string' && typeof message.admin === 'string';
  return message.type === 'infergate:strategy' && typeof message.strategy === 'string' && typeof message.relay === 'boolean';
}

/** True in a child of `--processes <n>`. */
export function inProcessGroup(): boolean {
  return cluster.isWorker;
}

/** Child side: sends `message` to the primary (a no-op outside a process group). */
export function tellPrimary(message: SiblingMessage): void {
  if (cluster.isWorker) process.send?.(message);
}

/**
 * Child side, last step of a shutdown: closes the IPC channel, which otherwise keeps a cluster child
 * alive after everything else has closed.
 */
export function leaveProcessGroup(): void {
  if (cluster.isWorker && process.connected) process.disconnect();
}

/** Child side: calls `apply` for every strategy a sibling set; returns the unsubscribe function. */
export function onSiblingStrategy(apply: (strategy: string) => void): () => void {
  const listener = (message: unknown): void => {
    if (isSiblingMessage(message) && message.type === 'infergate:strategy') apply(message.strategy);
  };
  process.on('message', listener);
  return () => process.off('message', listener);
}
