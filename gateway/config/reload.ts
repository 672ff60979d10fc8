/**
 * What a configuration reload (file change or SIGHUP) may change while running: the balancing
 * strategy and the static worker list. Anything else that differs is reported as needing a restart,
 * and stays as it is in the configuration in force (what /admin/config shows), which is returned.
 */
import type { Logger } from '../../shared/logger.ts';
import type { Gateway } from '../app.ts';
import type { GatewayConfig } from './schema.ts';

export function applyReload(gateway: Gateway, current: GatewayConfig, next: GatewayConfig, logger: Logger): GatewayConfig {
  if (next.balancing.strategy !== gateway.strategy) gateway.setStrategy(next.balancing.strategy, 'config reload');
  const wanted = new Map(next.workers.map((w) => [new URL(w.url).origin, w.weight]));
  for (const upstream of gateway.pool.list()) {
    if (upstream.source !== 'static') continue;
    const weight = wanted.get(upstream.url.origin);
    if (weight === undefined) gateway.pool.remove(upstream.id);
    else upstream.weight = weight;
  }
  for (const [url, weight] of wanted) gateway.pool.add(url, { weight, source: 'static' });
  const restartOnly = Object.keys(next).filter((key) => !['balancing', 'workers'].includes(key)
    && JSON.stringify(next[key as keyof GatewayConfig]) !== JSON.stringify(current[key as keyof GatewayConfig]));
  const balancingRest = JSON.stringify({ ...next.balancing, strategy: '' }) !== JSON.stringify({ ...current.balancing, strategy: '' });
  if (balancingRest) restartOnly.push('balancing (other than strategy)');
  if (restartOnly.length > 0) logger.warn({ keys: restartOnly }, 'config changes that take effect only after a restart');
  const inForce: GatewayConfig = { ...current, workers: next.workers, balancing: { ...current.balancing, strategy: next.balancing.strategy } };
  gateway.setEffectiveConfig(inForce);
  return inForce;
}
