/**
 * Keeps every gateway replica on the same balancing strategy: a change made through one replica's
 * admin API is published on a Redis channel, and every replica (the sender included, harmlessly)
 * applies it. Each replica's config file stays its starting point; a file reload or SIGHUP changes
 * only that replica, as an operator editing one file would expect.
 */
import type { Logger } from '../../shared/logger.ts';
import { connectRedis } from '../../shared/redis/connect.ts';
import type { RedisTarget } from '../../shared/redis/topology.ts';

/** The channel of a `redis.namespace` (`infergate:config:strategy` by default). */
export function strategyChannel(namespace: string): string {
  return `${namespace}:config:strategy`;
}

export interface StrategyBroadcast {
  publish(strategy: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Subscribes to the namespace's channel on `redis` (any topology: Cluster pub/sub reaches every
 * node) and calls `apply` for each change.
 */
export async function startStrategyBroadcast(redis: RedisTarget, namespace: string, apply: (strategy: string) => void, logger: Logger): Promise<StrategyBroadcast> {
  const channel = strategyChannel(namespace);
  const options = { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: (times: number) => Math.min(times * 100, 1000), lazyConnect: true };
  const publisher = connectRedis(redis, { ...options, connectionName: 'infergate:strategy-publisher' });
  const subscriber = connectRedis(redis, { ...options, enableOfflineQueue: true, connectionName: 'infergate:strategy-subscriber' }); // resubscribes itself after a reconnect
  for (const client of [publisher, subscriber]) client.on('error', (err: Error) => logger.debug({ err: err.message }, 'strategy broadcast: Redis error'));
  subscriber.on('message', (_channel: string, message: string) => {
    try {
      const { strategy } = JSON.parse(message) as { strategy?: unknown };
      if (typeof strategy === 'string') apply(strategy);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'strategy broadcast: ignored a bad message');
    }
  });
  await Promise.allSettled([publisher.connect(), subscriber.connect()]);
  await subscriber.subscribe(channel).catch((err: Error) => logger.warn({ err: err.message }, 'strategy broadcast: not subscribed yet; will retry on reconnect'));
  return {
    async publish(strategy) {
      await publisher.publish(channel, JSON.stringify({ strategy }));
    },
    async close() {
      publisher.disconnect();
      subscriber.disconnect();
    },
  };
}
