/**
 * Headers for browsers: standard security headers on every response, and CORS for the origins the
 * config allows. A preflight (OPTIONS with Access-Control-Request-Method) is answered here, before
 * authentication, as the Fetch standard requires: browsers never send credentials on it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/schema.ts';

const ALLOWED_HEADERS = 'authorization, x-api-key, content-type, content-encoding, x-request-id, x-infergate-timeout-ms, inference-header-content-length, traceparent';
const EXPOSED_HEADERS = 'x-request-id, x-infergate-worker, inference-header-content-length, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset';

const SECURITY_HEADERS: ReadonlyArray<[string, string]> = [
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'DENY'],
  ['referrer-policy', 'no-referrer'],
  ['cross-origin-resource-policy', 'same-origin'],
];

/** The headers applySecurityHeaders sets: the gateway's own, never taken from a worker's response. */
export const SECURITY_HEADER_NAMES: readonly string[] = SECURITY_HEADERS.map(([name]) => name);

export function applySecurityHeaders(res: ServerResponse): void {
  for (const [name, value] of SECURITY_HEADERS) res.setHeader(name, value);
}

/** Sets CORS headers for an allowed origin; returns true when it answered a preflight itself. */
export function applyCors(req: IncomingMessage, res: ServerResponse, cors: GatewayConfig['cors']): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || cors.allowedOrigins.length === 0) return false;
  const allowed = cors.allowedOrigins.includes('*') || cors.allowedOrigins.includes(origin);
  if (!allowed) return false;
  res.setHeader('access-control-allow-origin', cors.allowedOrigins.includes('*') ? '*' : origin);
  res.setHeader('vary', 'Origin');
  res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
  res.setHeader('cross-origin-resource-policy', 'cross-origin');
  if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined) return false;
  res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
  res.setHeader('access-control-allow-headers', ALLOWED_HEADERS);
  res.setHeader('access-control-max-age', String(cors.maxAgeSeconds));
  res.statusCode = 204;
  res.end();
  return true;
}
