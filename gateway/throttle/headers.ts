/**
 * Rate-limit response headers, per draft-ietf-httpapi-ratelimit-headers-06 (the last revision with
 * separate fields; -07 folds them into one structured `RateLimit` field):
 * - `RateLimit-Limit`: the bucket's capacity (the plan's burst);
 * - `RateLimit-Remaining`: whole tokens left after this request;
 * - `RateLimit-Reset`: delta-seconds until the bucket is full again, rounded up (0 = full now);
 * - `Retry-After` on a denial (RFC 9110 §10.2.3): delta-seconds until the request's cost is
 *   available, rounded up and at least 1, since 0 would invite an immediate retry. Left out when no
 *   wait will help (cost above the burst): the error message says so instead.
 *
 * @example
 *   rateLimitHeaders({ allowed: false, limit: 20, remaining: 0, resetMs: 3900, retryAfterMs: 150 })
 *   // { 'RateLimit-Limit': '20', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '4', 'Retry-After': '1' }
 */
import type { ServerResponse } from 'node:http';
import type { Decision } from './limiter.ts';

export function rateLimitHeaders(decision: Decision): Record<string, string> {
  const headers: Record<string, string> = {
    'RateLimit-Limit': String(decision.limit),
    'RateLimit-Remaining': String(decision.remaining),
    'RateLimit-Reset': String(seconds(decision.resetMs)),
  };
  if (!decision.allowed && Number.isFinite(decision.retryAfterMs)) headers['Retry-After'] = String(Math.max(1, seconds(decision.retryAfterMs)));
  return headers;
}

/** The headers of an admitted request, set straight on the response (no intermediate object). */
export function setRateLimitHeaders(res: Pick<ServerResponse, 'setHeader'>, decision: Decision): void {
  res.setHeader('RateLimit-Limit', String(decision.limit));
  res.setHeader('RateLimit-Remaining', String(decision.remaining));
  res.setHeader('RateLimit-Reset', String(seconds(decision.resetMs)));
}

function seconds(ms: number): number {
  return Number.isFinite(ms) ? Math.max(0, Math.ceil(ms / 1000)) : 0;
}
