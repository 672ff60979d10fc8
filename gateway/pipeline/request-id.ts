import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HEADER_REQUEST_ID } from '../../shared/protocol/headers.ts';

/** What a client may send as X-Request-Id: short, printable, nothing that could forge a log line. */
const VALID_REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** The client's X-Request-Id when valid, else a fresh UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers[HEADER_REQUEST_ID];
  return typeof incoming === 'string' && VALID_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}
