/**
 * Where the worker registry lives in Redis, shared by the worker (which writes it) and the gateway
 * (which reads it), so the two can never disagree on a name.
 *
 *   `{<ns>:workers}:worker:<id>`  string, the worker's record as JSON, with a TTL (`SET ... PX`)
 *   `{<ns>:workers}:index`        sorted set of worker ids (score: the expiry the worker last wrote,
 *                                 its own clock, informative only), so a gateway lists the registry
 *                                 in O(workers) instead of SCANning the whole keyspace
 *   `<ns>:workers`                pub/sub channel: join and leave messages
 *
 * Every key carries the same `{hash tag}`, so they all live in one Redis Cluster slot and a MULTI or
 * MGET over them is legal there. Pub/sub channels are cluster-wide and need no tag.
 *
 * @example
 *   const keys = registryKeys();            // namespace 'infergate'
 *   keys.record('w-1');                     // '{infergate:workers}:worker:w-1'
 *   keys.index;                             // '{infergate:workers}:index'
 *   keys.channel;                           // 'infergate:workers'
 */

export const DEFAULT_REGISTRY_NAMESPACE = 'infergate';

/** A record lives this long after the heartbeat that wrote it: three heartbeats may be missed. */
export const DEFAULT_REGISTRY_TTL_MS = 6000;
export const DEFAULT_HEARTBEAT_MS = 2000;

export interface RegistryKeys {
  readonly namespace: string;
  /** The record key of one worker. */
  record(id: string): string;
  /** The sorted set of registered worker ids. */
  readonly index: string;
  /** The join/leave channel. */
  readonly channel: string;
}

const NAMESPACE = /^[\w.:-]{1,64}$/;

export function registryKeys(namespace: string = DEFAULT_REGISTRY_NAMESPACE): RegistryKeys {
  // Braces would break the hash tag; keep namespaces to a safe alphabet.
  if (!NAMESPACE.test(namespace)) throw new Error(`registry namespace '${namespace}' must match ${NAMESPACE}`);
  const tag = `{${namespace}:workers}`;
  return {
    namespace,
    record: (id) => `${tag}:worker:${id}`,
    index: `${tag}:index`,
    channel: `${namespace}:workers`,
  };
}
