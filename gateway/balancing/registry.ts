/**
 * Strategies by name: what config, the CLI's `--strategy` and the admin API refer to. An unknown
 * name throws when the strategy is built — config validation and the admin API call this, so a typo
 * fails at startup (or is refused by the admin API), never on the first request. (Kong
 * `kong/runloop/balancer/balancers.lua`; Envoy resolves `lb_policy` when it loads the cluster.)
 *
 * @example
 *   const strategy = createStrategy(config.balancing.strategy, { defaultLatencyMs: 5 });
 *   strategy.pick(candidates, { rng: Math.random, now: () => performance.now() });
 */
import type { BalancingStrategy } from './strategy.ts';
import { LeastConnectionsStrategy } from './least-connections.ts';
import { PeakEwmaStrategy } from './peak-ewma.ts';
import { PowerOfTwoChoicesStrategy } from './power-of-two-choices.ts';
import { RandomStrategy } from './random.ts';
import { RoundRobinStrategy } from './round-robin.ts';
import { WeightedRoundRobinStrategy } from './weighted-round-robin.ts';

export const STRATEGY_NAMES = ['round-robin', 'random', 'least-connections', 'p2c', 'peak-ewma', 'weighted-round-robin'] as const;

export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface StrategyOptions {
  /** peak-ewma: latency assumed for a worker with no sample yet (see peak-ewma.ts for the default). */
  defaultLatencyMs?: number;
}

export function isStrategyName(name: unknown): name is StrategyName {
  return typeof name === 'string' && (STRATEGY_NAMES as readonly string[]).includes(name);
}

/** A fresh instance (strategies with state keep it per instance); throws on an unknown name or bad options. */
export function createStrategy(name: string, options: StrategyOptions = {}): BalancingStrategy {
  if (!isStrategyName(name)) {
    throw new Error(`unknown balancing strategy '${name}'; valid strategies: ${STRATEGY_NAMES.join(', ')}`);
  }
  switch (name) {
    case 'round-robin': return new RoundRobinStrategy();
    case 'random': return new RandomStrategy();
    case 'least-connections': return new LeastConnectionsStrategy();
    case 'p2c': return new PowerOfTwoChoicesStrategy();
    case 'peak-ewma': return new PeakEwmaStrategy(options);
    case 'weighted-round-robin': return new WeightedRoundRobinStrategy();
  }
}
