/** Headers the gateway and worker agree on (see docs/protocol.md). */
export const HEADER_TIMEOUT_MS = 'x-infergate-timeout-ms';
export const HEADER_QUEUE_DEPTH = 'x-infergate-queue-depth';
export const HEADER_WORKER = 'x-infergate-worker';
export const HEADER_REQUEST_ID = 'x-request-id';
export const HEADER_BINARY_LENGTH = 'inference-header-content-length';

/** Remaining time budget the caller grants, in ms; undefined when absent or not a positive integer. */
export function parseTimeoutHeader(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) return undefined;
  const ms = Number(value);
  return ms > 0 ? ms : undefined;
}
