/**
 * Starts the discovery sources the gateway config asks for — the Redis worker registry and any
 * number of DNS names — around one shared DiscoveryMembership, so a worker seen by several of them
 * stays while any still sees it, and static or admin workers are never touched (membership.ts).
 *
 * Called by gateway/main.ts after `gateway.start()` has added the static workers: a URL listed
 * statically is then already in the pool as 'static' and discovery leaves it alone.
 *
 * @example
 *   await gateway.start();
 *   const discovery = await startDiscovery(config.discovery, { pool: gateway.pool, redisUrl: topologyOf(config.redis), logger });
 *   await gateway.pool.checkAll(); // the first requests find the discovered workers too
 *   // on shutdown:
 *   await discovery.stop();
 */
import type { Logger } from '../../../shared/logger.ts';
import type { RedisTarget } from '../../../shared/redis/topology.ts';
import { DnsDiscovery } from './dns-discovery.ts';
import { DiscoveryMembership, type DiscoveryPool } from './membership.ts';
import { RegistryDiscovery } from './registry-discovery.ts';

/** The `discovery` section of the gateway config (see docs/discovery.md for the schema). */
export interface DiscoveryConfig {
  registry: {
    enabled: boolean;
    namespace: string;
    resyncMs: number;
    ttlMs: number;
    weightByCapacity: boolean;
  };
  dns: ReadonlyArray<{
    name: string;
    port?: number | undefined;
    srv: boolean;
    family: 4 | 6 | 'any';
    scheme: 'http' | 'https';
    intervalMs: number;
    removeAfterMisses: number;
    servers?: readonly string[] | undefined;
    timeoutMs: number;
    weight: number;
  }>;
}

export interface RunningDiscovery {
  readonly membership: DiscoveryMembership;
  readonly registry: RegistryDiscovery | undefined;
  readonly dns: readonly DnsDiscovery[];
  /** Stops every source; the pool keeps its workers. */
  stop(): Promise<void>;
}

/**
 * Builds and starts every configured source; resolves once each has made its first attempt. Throws
 * only for configuration errors (the registry enabled without a Redis URL, a bad DNS entry), never
 * because Redis or DNS is unreachable.
 */
export async function startDiscovery(config: DiscoveryConfig, deps: { pool: DiscoveryPool; redisUrl: RedisTarget | undefined; logger: Logger }): Promise<RunningDiscovery> {
  const membership = new DiscoveryMembership(deps.pool, deps.logger);
  let registry: RegistryDiscovery | undefined;
  if (config.registry.enabled) {
    if (deps.redisUrl === undefined || deps.redisUrl === '') throw new Error('discovery.registry.enabled needs redis.url, redis.sentinel or redis.cluster (or REDIS_URL)');
    registry = new RegistryDiscovery({
      pool: deps.pool,
      membership,
      redisUrl: deps.redisUrl,
      namespace: config.registry.namespace,
      resyncMs: config.registry.resyncMs,
      ttlMs: config.registry.ttlMs,
      ...(config.registry.weightByCapacity && { weightOf: (r) => Math.min(r.capacity, 1000) }),
      logger: deps.logger,
    });
  }
  const dns = config.dns.map((entry) => new DnsDiscovery({
    name: entry.name,
    ...(entry.port !== undefined && { port: entry.port }),
    srv: entry.srv,
    family: entry.family,
    scheme: entry.scheme,
    intervalMs: entry.intervalMs,
    removeAfterMisses: entry.removeAfterMisses,
    ...(entry.servers !== undefined && { servers: entry.servers }),
    timeoutMs: entry.timeoutMs,
    weight: entry.weight,
    pool: deps.pool,
    membership,
    logger: deps.logger,
  }));
  await Promise.all([registry?.start(), ...dns.map((d) => d.start())]);
  return {
    membership,
    registry,
    dns,
    async stop() {
      await Promise.all([registry?.stop(), ...dns.map((d) => d.stop())]);
    },
  };
}
