/**
 * The one place an ioredis client is made (the only file in shared/ that imports ioredis, so the
 * gateway, the worker and the CLI connect the same way): a topology (shared/redis/topology.ts) plus
 * the connection behaviour a caller needs → a `Redis` (one node, or a master found through Sentinel)
 * or a `Cluster`.
 *
 * Callers describe behaviour in single-node ioredis terms (`enableOfflineQueue`, `commandTimeout`,
 * `retryStrategy`, ...); for a Cluster they are placed where ioredis reads them:
 * - `enableOfflineQueue`, `lazyConnect`, `enableAutoPipelining` are cluster-level options (ioredis
 *   forces the per-node offline queue on and reconnects lost nodes only through slot refreshes);
 * - `retryStrategy` becomes `clusterRetryStrategy` (reconnecting when every node is gone);
 * - everything else (timeouts, retries per request, credentials, TLS) goes to every node's options;
 * - a caller that never wants a command resent (`autoResendUnfulfilledCommands: false`: the rate
 *   limiter, whose late EVALSHA would spend tokens for a request already decided) also gets no
 *   resend after a lost node or CLUSTERDOWN (`retryDelayOnFailover` / `retryDelayOnClusterDown` 0):
 *   the command fails at once and the caller's policy applies. MOVED and ASK are still followed —
 *   the command has not run anywhere then.
 * Node connections are opened as soon as a node is known, not on its first command (see below).
 * Reads always go to masters (`scaleReads: 'master'`): a replica may lag, and every read here
 * (buckets, key records, the registry) must see the last write.
 *
 * Sentinel: ioredis asks the sentinels for the master, reconnects to the new one after a failover,
 * and with `failoverDetector` also learns of a failover from the sentinels' +switch-master message
 * instead of waiting for the old master's connection to break.
 *
 * @example
 *   const client = connectRedis('redis+cluster://10.0.0.1:7000,10.0.0.2:7000', { enableOfflineQueue: false, commandTimeout: 200 });
 *   client.on('error', (err) => logger.debug({ err: err.message }, 'Redis connection error'));
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseRedisUrl, type RedisTarget, type RedisTopology } from './topology.ts';

export type RedisClient = Redis | Cluster;

/** Options that apply to a Cluster as a whole rather than to each of its nodes. */
const CLUSTER_LEVEL = ['enableOfflineQueue', 'lazyConnect', 'enableAutoPipelining', 'retryStrategy'] as const;

/** A client for `target` (a URL of any supported form, or a topology) with the caller's `options`. */
export function connectRedis(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  const topology: RedisTopology = typeof target === 'string' ? parseRedisUrl(target) : target;
  switch (topology.kind) {
    case 'single':
      return new Redis(topology.url, options);
    case 'sentinel':
      return new Redis({
        ...options,
        sentinels: topology.sentinels,
        name: topology.name,
        db: topology.db,
        role: 'master',
        failoverDetector: true,
        ...credentials(topology),
        ...(topology.sentinelPassword !== undefined && { sentinelPassword: topology.sentinelPassword }),
        ...(topology.tls && { tls: {}, enableTLSForSentinelMode: true }),
        // Keep asking the sentinels for ever, like a single node's reconnects.
        sentinelRetryStrategy: options.retryStrategy ?? ((times: number) => Math.min(times * 100, 1000)),
      });
    case 'cluster': {
      const nodeOptions: RedisOptions = { ...options, ...credentials(topology), ...(topology.tls && { tls: {} }) };
      for (const key of CLUSTER_LEVEL) delete nodeOptions[key];
      const neverResend = options.autoResendUnfulfilledCommands === false;
      const clusterOptions: ClusterOptions = {
        redisOptions: nodeOptions,
        scaleReads: 'master',
        enableReadyCheck: true,
        ...(options.enableOfflineQueue !== undefined && { enableOfflineQueue: options.enableOfflineQueue }),
        ...(options.lazyConnect !== undefined && { lazyConnect: options.lazyConnect }),
        ...(options.enableAutoPipelining !== undefined && { enableAutoPipelining: options.enableAutoPipelining }),
        ...(options.retryStrategy !== undefined && { clusterRetryStrategy: (times: number) => options.retryStrategy!(times) ?? null }),
        ...(neverResend && { retryDelayOnFailover: 0, retryDelayOnClusterDown: 0 }),
      };
      const cluster = new Cluster(topology.nodes, clusterOptions);
      // ioredis opens a node's connection on its first command, and without an offline queue the
      // commands that arrive while it connects are refused: a burst on a fresh (or just promoted)
      // master would fail where one node would not. So once the cluster is ready, every node known
      // (and every node learnt later, after a failover) is connected at once. Not before: the
      // cluster's own ready check relies on a node still waiting for its first command.
      const connectNow = (node: Redis): void => {
        if (cluster.status === 'ready' && node.status === 'wait') node.connect().catch(() => undefined); // failures surface through commands
      };
      cluster.on('+node', connectNow);
      cluster.on('ready', () => cluster.nodes().forEach(connectNow));
      return cluster;
    }
  }
}

/**
 * Resolves once `client` takes commands — for a Cluster, once every master's connection is up too,
 * since a fail-fast client refuses a command for a node still connecting — or after `timeoutMs`,
 * whichever is first. For one-shot users (the CLI) whose first commands must not meet that window.
 */
export async function whenUsable(client: RedisClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const usable = (): boolean => client.status === 'ready' && (!(client instanceof Cluster) || client.nodes('master').every((node) => node.status === 'ready'));
  while (!usable() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

/**
 * Closes politely (QUIT lets pending replies arrive) when connected, at once otherwise. The final
 * `disconnect` also closes what QUIT leaves open: a Sentinel client's connections to the sentinels
 * (its failover detector), which would keep the process alive.
 */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => undefined);
  client.disconnect();
}

function credentials(topology: { username?: string; password?: string }): Pick<RedisOptions, 'username' | 'password'> {
  return { ...(topology.username !== undefined && { username: topology.username }), ...(topology.password !== undefined && { password: topology.password }) };
}
