/**
 * Same-origin calls to the gateway with `Authorization: Bearer <credential>`. Every non-2xx answer
 * becomes an ApiError carrying the gateway's `{"error","code","request_id"}` body, so pages show
 * the server's own message and the request id an operator can look up in the logs.
 */

export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }

  /** One line for the user: the message, the code and status, and the request id. */
  describe() {
    const id = this.requestId ? ` · request ${this.requestId}` : '';
    return `${this.message} (${this.code || 'HTTP'} ${this.status || ''}${id})`.replace(' )', ')');
  }
}

/**
 * fetch with the credential and JSON handling. Resolves to `{ body, response }`; `body` is parsed
 * JSON (or undefined for an empty answer).
 *
 * @example
 *   const { body, response } = await callApi('/v2/models/iris/infer', { credential, method: 'POST', json: request });
 */
export async function callApi(path, { credential, method = 'GET', json, signal } = {}) {
  const headers = { accept: 'application/json' };
  if (credential) headers.authorization = `Bearer ${credential}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: json === undefined ? undefined : JSON.stringify(json), signal, cache: 'no-store', credentials: 'omit' });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', 'the gateway cannot be reached', '');
  }
  const text = await response.text();
  let body;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const requestId = body?.request_id ?? response.headers.get('x-request-id') ?? '';
    throw new ApiError(response.status, body?.code ?? '', body?.error ?? (text.slice(0, 200) || response.statusText), requestId);
  }
  return { body, response };
}

/** A human message for any error thrown by callApi (or anything else). */
export function describeError(err) {
  return err instanceof ApiError ? err.describe() : String(err?.message ?? err);
}
