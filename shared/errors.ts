/**
 * The error catalogue: every error a client can receive from infergate, with a stable code and its
 * HTTP status. Codes are never reused once retired; docs/errors.md lists the same table and
 * test/unit/shared/errors.test.ts keeps the two in step.
 *
 * @example
 *   throw new InfergateError('WK_ERR_MODEL_NOT_FOUND', `model 'iris' is not served`);
 */
export const ERROR_CATALOGUE = {
  // Shared by both processes.
  ERR_BAD_JSON: { status: 400, summary: 'the body is not valid JSON' },
  ERR_BAD_REQUEST: { status: 400, summary: 'the request is malformed (wrong fields or values)' },
  ERR_NOT_FOUND: { status: 404, summary: 'no such route' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, summary: 'the route exists but not for this method' },
  ERR_BODY_TOO_LARGE: { status: 413, summary: 'the body is over the size limit' },
  ERR_HEADERS_TOO_LARGE: { status: 431, summary: 'the request headers are over the size limit' },
  ERR_EXPECTATION_FAILED: { status: 417, summary: 'an Expect header other than 100-continue' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'unsupported Content-Type or Content-Encoding' },
  ERR_INTERNAL: { status: 500, summary: 'an unexpected fault; details are in the log under the request id' },
  // Worker.
  WK_ERR_BAD_TENSOR: { status: 400, summary: 'an input tensor does not match the model (name, datatype, shape, data)' },
  WK_ERR_BATCH_TOO_LARGE: { status: 400, summary: 'the batch dimension exceeds the model\'s max batch size' },
  WK_ERR_MODEL_NOT_FOUND: { status: 404, summary: 'unknown model' },
  WK_ERR_VERSION_NOT_FOUND: { status: 404, summary: 'unknown version of a known model' },
  WK_ERR_MODEL_NOT_READY: { status: 503, summary: 'the model exists but no version is ready (loading, unloading or failed)' },
  WK_ERR_QUEUE_FULL: { status: 503, summary: 'the model\'s queue is full' },
  WK_ERR_DEADLINE_EXCEEDED: { status: 504, summary: 'the request\'s deadline passed before it was answered' },
  WK_ERR_INFERENCE_FAILED: { status: 500, summary: 'the runtime failed to run the model on valid input' },
  WK_ERR_LOAD_FAILED: { status: 400, summary: 'a repository load request failed; the reason says why' },
  // Gateway.
  GW_ERR_MODEL_NOT_FOUND: { status: 404, summary: 'no worker in the pool serves this model' },
  GW_ERR_VERSION_NOT_FOUND: { status: 404, summary: 'no worker in the pool serves this version of the model' },
  GW_ERR_NO_WORKER: { status: 503, summary: 'no ready worker for the model, or every candidate\'s breaker is open' },
  GW_ERR_OVERLOADED: { status: 503, summary: 'every candidate worker is at its in-flight cap and the admission queue is full or none freed up in time' },
  GW_ERR_UPSTREAM_UNREACHABLE: { status: 503, summary: 'the request could not reach any worker (connection refused or reset before sending)' },
  GW_ERR_UPSTREAM_BROKEN: { status: 502, summary: 'the worker answered with a broken response or dropped the connection' },
  GW_ERR_DEADLINE_EXCEEDED: { status: 504, summary: 'the request\'s deadline passed before the worker answered' },
  GW_ERR_ADMIN_UNAUTHORIZED: { status: 401, summary: 'the admin API needs a valid admin token' },
  GW_ERR_CONFLICT: { status: 409, summary: 'the admin change conflicts with the current state (e.g. the worker already exists)' },
  GW_ERR_UNAUTHENTICATED: { status: 401, summary: 'no credential, or an invalid one (unknown, revoked, expired, malformed API key or JWT)' },
  GW_ERR_FORBIDDEN: { status: 403, summary: 'the credential is valid but may not use this model' },
  GW_ERR_ADMIN_REQUIRED: { status: 403, summary: 'the operation (repository load or unload) needs the admin token, not an ordinary credential' },
  GW_ERR_KEY_STORE_UNAVAILABLE: { status: 503, summary: 'the API-key store cannot be reached and the key is not cached (fail closed)' },
  GW_ERR_RATE_LIMITED: { status: 429, summary: 'the principal\'s rate limit is spent; Retry-After says when to come back' },
  GW_ERR_RATE_LIMIT_UNAVAILABLE: { status: 503, summary: 'the rate-limit store cannot be reached in time and the policy is fail closed' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** An error meant for the client: its message is safe to show, its code stable. */
export class InfergateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers, e.g. Retry-After on 503. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'InfergateError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.headers = headers;
  }
}

export interface ErrorBody {
  error: string;
  code: ErrorCode;
  request_id?: string;
}

/** The JSON body every error response carries (V2 and TF clients read `error` as a string). */
export function errorBody(error: InfergateError, requestId: string | undefined): ErrorBody {
  return requestId === undefined
    ? { error: error.message, code: error.code }
    : { error: error.message, code: error.code, request_id: requestId };
}

/** Anything thrown that is not an InfergateError becomes a 500 whose detail stays in the log. */
export function toInfergateError(err: unknown): InfergateError {
  return err instanceof InfergateError ? err : new InfergateError('ERR_INTERNAL', 'internal error');
}
