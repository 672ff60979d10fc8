/**
 * Throttle stage: a token bucket per principal (and per model, by config), from the principal's own
 * plan (an API key's rate and burst, a JWT's plan claim) or the config default; a principal with no
 * plan is not throttled. Every answer carries RateLimit-Limit/-Remaining/-Reset; a denial is 429
 * with Retry-After and takes nothing from the bucket. The limiter applies the store-failure policy
 * (fail open onto a local bucket, or fail closed: 503 here).
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import { InfergateError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Principal, RatePlan } from '../auth/principal.ts';
import type { GatewayConfig } from '../config/schema.ts';
import { requestCost } from '../throttle/cost.ts';
import { rateLimitHeaders, setRateLimitHeaders } from '../throttle/headers.ts';
import { BUCKET_PREFIX, bucketKey, bucketPrefix, neverAdmissible, StoreUnavailableError, type Decision, type RateLimiter } from '../throttle/limiter.ts';
import type { RequestContext } from './context.ts';
import type { Stage } from './pipeline.ts';

/**
 * The body to read the batch size from. The gateway forwards compressed bodies as they came, but a
 * compressed body must cost what it carries: it is inflated here, within the body limit, for
 * costing only. One that will not inflate costs 1 (the worker refuses it anyway).
 */
function costingBody(mode: 'request' | 'batch', body: Buffer, encoding: string | undefined, limit: number): Buffer {
  if (mode !== 'batch' || encoding === undefined || encoding === 'identity') return body;
  try {
    const options = { maxOutputLength: limit };
    return /gzip/i.test(encoding) ? gunzipSync(body, options) : /deflate/i.test(encoding) ? inflateSync(body, options) : body;
  } catch {
    return EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);

/** Unknown plan names warned about once each, up to this many (the names come from credentials). */
const MAX_WARNED_PLANS = 100;

export function throttleStage(options: GatewayConfig['throttle'], deps: { limiter: RateLimiter; logger: Logger; bodyLimitBytes: number; namespace?: string }): Stage {
  const prefix = deps.namespace === undefined ? BUCKET_PREFIX : bucketPrefix(deps.namespace);
  const bodyLimit = deps.bodyLimitBytes;
  // Own properties only: a credential naming "constructor" or "__proto__" must not find Object's.
  const namedPlan = (name: string): RatePlan | undefined => (Object.hasOwn(options.plans, name) ? options.plans[name] : undefined);
  if (options.defaultPlan !== undefined && namedPlan(options.defaultPlan) === undefined) {
    throw new Error(`throttle.defaultPlan '${options.defaultPlan}' is not one of throttle.plans (${Object.keys(options.plans).join(', ') || 'none'})`);
  }
  const warned = new Set<string>();
  const planOf = (principal: Principal): RatePlan | undefined => {
    const plan = principal.plan ?? options.defaultPlan;
    if (plan === undefined || typeof plan === 'object') return plan;
    const named = namedPlan(plan);
    if (named === undefined && !warned.has(plan) && warned.size < MAX_WARNED_PLANS) {
      warned.add(plan);
      deps.logger.warn({ plan, subject: principal.subject }, 'unknown rate plan named by a credential; the default plan applies');
    }
    return named ?? (options.defaultPlan === undefined ? undefined : namedPlan(options.defaultPlan));
  };
  const storeDown = (err: unknown): never => {
    if (err instanceof StoreUnavailableError) throw new InfergateError('GW_ERR_RATE_LIMIT_UNAVAILABLE', 'the rate limit cannot be checked right now', { 'Retry-After': '1' });
    throw err;
  };
  const apply = (ctx: RequestContext, decision: Decision, cost: number, plan: RatePlan): void => {
    if (decision.allowed) {
      setRateLimitHeaders(ctx.res, decision);
      return;
    }
    const message = neverAdmissible(decision)
      ? `this request costs ${cost}, more than the rate plan's burst of ${plan.burst}: it can never be admitted`
      : 'rate limit exceeded';
    throw new InfergateError('GW_ERR_RATE_LIMITED', message, rateLimitHeaders(decision));
  };
  const { limiter } = deps;
  // Synchronous when there is nothing to take (no plan) or the limiter decides at once (in memory
  // always, a Redis limiter when its lease covers the take).
  return (ctx) => {
    const principal = ctx.principal;
    if (principal === undefined) return undefined;
    const plan = planOf(principal);
    if (plan === undefined) return undefined;
    const cost = requestCost(options.cost, ctx.route.protocol, costingBody(options.cost, ctx.body, ctx.req.headers['content-encoding'], bodyLimit), ctx.req.headers);
    // A call for no model in particular (the repository index) takes from the principal's own bucket.
    const key = bucketKey(bucketOwner(principal), options.perModel && ctx.route.model !== '' ? ctx.route.model : undefined, prefix);
    const decided = limiter.takeNow !== undefined ? limiter.takeNow(key, cost, plan) : limiter.take(key, cost, plan);
    if (!(decided instanceof Promise)) return apply(ctx, decided, cost, plan);
    return decided.then((decision) => apply(ctx, decision, cost, plan), storeDown);
  };
}

/**
 * Whose bucket a principal spends: API keys are `key:<id>` and anonymous callers `anonymous`
 * already; a JWT's subject is whatever its issuer wrote, so it gets `jwt:` in front, or a token
 * with `sub: "anonymous"` or `sub: "key:<id>"` would share that caller's bucket.
 */
function bucketOwner(principal: Principal): string {
  return principal.kind === 'jwt' ? `jwt:${principal.subject}` : principal.subject;
}
