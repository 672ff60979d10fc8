/**
 * Select-upstream stage: model-aware candidates from the pool, then the current strategy picks.
 * Unknown model or version: 404. Known but nobody can take it: 503 at once. Everybody who could
 * take it is at the in-flight cap: wait in the pool's bounded FIFO (limits.maxQueued) for a slot,
 * at most limits.queueWaitMs and never past the deadline; a full queue or a wait that runs out is
 * 503 GW_ERR_OVERLOADED with Retry-After (docs/gateway.md#admission-control).
 */
import { InfergateError } from '../../shared/errors.ts';
import type { BalancingStrategy, PickContext } from '../balancing/strategy.ts';
import type { Pool, Refusal } from '../upstreams/pool.ts';
import type { Upstream } from '../upstreams/upstream.ts';
import type { RequestContext } from './context.ts';

export interface SelectDeps {
  pool: Pool;
  /** The strategy in force now: read per request, so a swap takes effect atomically. */
  strategy: () => BalancingStrategy;
  pickContext: PickContext;
  queueWaitMs: number;
  onDecision?(ctx: RequestContext, chosen: Upstream, candidates: number): void;
  /** A request refused for want of a slot: queue full, its wait ran out, or no worker can serve it. */
  onRefusal?(ctx: RequestContext, reason: Refusal): void;
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

  /** Every worker that could take it is at its in-flight cap: wait in line for a slot. */
  async function waitAndPick(ctx: RequestContext): Promise<Upstream> {
    const { model, version } = ctx.route;
    const queueWaitEnds = pickContext.now() + deps.queueWaitMs;
    // Which limit ends the wait is decided here, not by reading the clock when the timer fires: a
    // timer may fire a fraction of a millisecond early, and the deadline must still read as one.
    const deadlineBinds = ctx.deadline <= queueWaitEnds;
    const waitUntil = deadlineBinds ? ctx.deadline : queueWaitEnds;
    const outcome = await pool.waitForSlot({ model, version, exclude: ctx.excluded(), waitUntil, client: ctx });
    if (typeof outcome !== 'string') {
      deps.onDecision?.(ctx, outcome, 1);
      return outcome;
    }
    if (outcome === 'queue_timeout' && (deadlineBinds || ctx.expired)) {
      // The request's own deadline ended the wait, not limits.queueWaitMs: a timeout, not a refusal.
      throw new InfergateError('GW_ERR_DEADLINE_EXCEEDED', 'the deadline passed while waiting for a worker slot');
    }
    // No slot came because no worker would take one (its breaker half-open with the trial under
    // way, or open by now), not because every worker was busy: that is "no worker", not "overloaded".
    const refusal = outcome === 'queue_timeout' && !pool.anyAdmitting(model, version, ctx.excluded()) ? 'no_worker' : outcome;
    if (refusal !== 'client_gone') deps.onRefusal?.(ctx, refusal);
    if (refusal === 'no_worker') throw noWorker(model);
    const why = outcome === 'queue_full' ? 'and the wait queue is full' : 'and none freed up in time';
    throw new InfergateError('GW_ERR_OVERLOADED', `every worker serving '${model}' is at capacity ${why}`, { 'Retry-After': '1' });
  }

  return function select(ctx) {
    const { model, version } = ctx.route;
    const knowledge = pool.knowledgeOf(model, version);
    if (knowledge === 'unknown-model') throw new InfergateError('GW_ERR_MODEL_NOT_FOUND', `model '${model}' is not served by any worker`);
    if (knowledge === 'unknown-version') throw new InfergateError('GW_ERR_VERSION_NOT_FOUND', `model '${model}' has no version '${version}' on any worker`);
    const chosen = pickNow(ctx);
    if (chosen !== undefined) return chosen;
    if (!pool.hasCapacityLater(model, version, ctx.excluded())) {
      deps.onRefusal?.(ctx, 'no_worker');
      throw noWorker(model);
    }
    return waitAndPick(ctx);
  };
}
