/**
 * Select-upstream stage: model-aware candidates from the pool, then the current strategy picks.
 * Unknown model or version: 404. Known but nobody can take it: 503 at once. Everybody who could
 * take it is at the in-flight cap: wait (bounded by limits.queueWaitMs and the deadline) for a slot.
 */
import { InfergateError } from '../../shared/errors.ts';
import type { BalancingStrategy, PickContext } from '../balancing/strategy.ts';
import type { Pool } from '../upstreams/pool.ts';
import type { Upstream } from '../upstreams/upstream.ts';
import type { RequestContext } from './context.ts';

export interface SelectDeps {
  pool: Pool;
  /** The strategy in force now: read per request, so a swap takes effect atomically. */
  strategy: () => BalancingStrategy;
  pickContext: PickContext;
  queueWaitMs: number;
  onDecision?(ctx: RequestContext, chosen: Upstream, candidates: number): void;
}

/** The chosen worker; a promise only when every candidate is at its cap and the request must wait. */
export type Selector = (ctx: RequestContext) => Upstream | Promise<Upstream>;

export function createSelector(deps: SelectDeps): Selector {
  const { pool, pickContext } = deps;

  const pickNow = (ctx: RequestContext): Upstream | undefined => {
    const { model, version } = ctx.route;
    const candidates = pool.candidates(model, version, ctx.excluded());
    const chosen = deps.strategy().pick(candidates, pickContext) as Upstream | undefined;
    if (chosen !== undefined) deps.onDecision?.(ctx, chosen, candidates.length);
    return chosen;
  };

  const noWorker = (model: string): InfergateError =>
    new InfergateError('GW_ERR_NO_WORKER', `no ready worker can serve model '${model}' now`, { 'Retry-After': '1' });

  /** Every worker that could take it is at its in-flight cap: wait for a slot, within limits.queueWaitMs and the deadline. */
  async function waitAndPick(ctx: RequestContext): Promise<Upstream> {
    const { model, version } = ctx.route;
    const waitUntil = Math.min(pickContext.now() + deps.queueWaitMs, ctx.deadline);
    for (;;) {
      const waitMs = waitUntil - pickContext.now();
      if (!(await pool.waitForCapacity(waitMs, ctx))) {
        throw new InfergateError('GW_ERR_OVERLOADED', `every worker serving '${model}' is at capacity`, { 'Retry-After': '1' });
      }
      const chosen = pickNow(ctx);
      if (chosen !== undefined) return chosen;
      if (!pool.hasCapacityLater(model, version, ctx.excluded())) throw noWorker(model);
    }
  }

  return function select(ctx) {
    const { model, version } = ctx.route;
    const knowledge = pool.knowledgeOf(model, version);
    if (knowledge === 'unknown-model') throw new InfergateError('GW_ERR_MODEL_NOT_FOUND', `model '${model}' is not served by any worker`);
    if (knowledge === 'unknown-version') throw new InfergateError('GW_ERR_VERSION_NOT_FOUND', `model '${model}' has no version '${version}' on any worker`);
    const chosen = pickNow(ctx);
    if (chosen !== undefined) return chosen;
    if (!pool.hasCapacityLater(model, version, ctx.excluded())) throw noWorker(model);
    return waitAndPick(ctx);
  };
}
