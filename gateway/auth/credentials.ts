/**
 * Which credential a request carries, and the RFC 6750 challenge to answer a missing or bad one.
 *
 * - `Authorization: Bearer <token>` (scheme case-insensitive, RFC 7235 §2.1) carries a JWT or an API
 *   key; a token with the API-key prefix (`igk_`) is an API key, anything else a JWT.
 * - `X-API-Key: <key>` carries an API key.
 * - Two different credentials (Bearer and X-API-Key disagreeing, or X-API-Key sent twice with
 *   different values) are a conflict: rejected, never resolved by picking one. The same key sent
 *   both ways is just that key.
 * - Another Authorization scheme (Basic, …) is not ours: it counts as no credential.
 *
 * @example
 *   const credential = extractCredential(req.headers);
 *   if (credential.kind === 'none') res.setHeader('www-authenticate', wwwAuthenticate());
 */
import type { IncomingHttpHeaders } from 'node:http';
import { looksLikeApiKey } from './api-key.ts';

export type Credential =
  | { kind: 'none' }
  | { kind: 'bearer'; token: string }
  | { kind: 'api-key'; key: string }
  | { kind: 'conflict' };

/** Request headers that carry credentials: never forwarded to a worker, always redacted in logs. */
export const CREDENTIAL_HEADERS = ['authorization', 'x-api-key'] as const;

const BEARER = /^Bearer(?:[ \t]+(.*?))?[ \t]*$/i;
const NONE: Credential = Object.freeze({ kind: 'none' });

export function extractCredential(headers: IncomingHttpHeaders): Credential {
  const authorization = headers.authorization;
  // The usual request: one Authorization header and no X-API-Key, read without collecting a list.
  if (typeof authorization === 'string' && headers['x-api-key'] === undefined) {
    const match = BEARER.exec(authorization);
    if (match === null) return NONE;
    const token = (match[1] ?? '').trim();
    return looksLikeApiKey(token) ? { kind: 'api-key', key: token } : { kind: 'bearer', token };
  }
  const found: Array<{ kind: 'bearer' | 'api-key'; value: string }> = [];
  for (const value of headerValues(headers.authorization)) {
    const match = BEARER.exec(value);
    if (match === null) continue;
    const token = (match[1] ?? '').trim();
    found.push({ kind: looksLikeApiKey(token) ? 'api-key' : 'bearer', value: token });
  }
  // Node joins repeated X-API-Key headers with ", "; a key never contains a comma.
  for (const value of headerValues(headers['x-api-key'])) {
    for (const part of value.split(',')) found.push({ kind: 'api-key', value: part.trim() });
  }
  const [first] = found;
  if (first === undefined) return NONE;
  if (found.some((c) => c.value !== first.value || c.kind !== first.kind)) return { kind: 'conflict' };
  return first.kind === 'bearer' ? { kind: 'bearer', token: first.value } : { kind: 'api-key', key: first.value };
}

function headerValues(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

export type BearerError = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/**
 * The `WWW-Authenticate` value for a 401 or 403 (RFC 6750 §3): no `error` when the request carried
 * no credential (§3.1), else the error code and an optional description (quoted-string-safe).
 *
 * @example
 *   wwwAuthenticate()                                   // 'Bearer realm="infergate"'
 *   wwwAuthenticate('invalid_token', 'the token has expired')
 *   // 'Bearer realm="infergate", error="invalid_token", error_description="the token has expired"'
 */
export function wwwAuthenticate(error?: BearerError, description?: string, realm = 'infergate'): string {
  let value = `Bearer realm="${quoted(realm)}"`;
  if (error !== undefined) value += `, error="${error}"`;
  if (error !== undefined && description !== undefined) value += `, error_description="${quoted(description)}"`;
  return value;
}

/** RFC 6750 §3 limits error_description to %x20-21 / %x23-5B / %x5D-7E: no quote, no backslash. */
function quoted(text: string): string {
  return text.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '');
}
