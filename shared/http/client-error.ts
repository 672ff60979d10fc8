/**
 * Answers a request Node's HTTP parser refused (CL+TE smuggling, bad syntax, oversized headers, slow
 * headers) with the JSON error of DESIGN.md, then closes the connection. Both servers use it:
 * `server.on('clientError', (err, socket) => answerClientError(err, socket, logger))`.
 *
 * A malformed request pipelined behind one still being answered waits for that answer: responses
 * go out in request order (RFC 9112 §9.3.2), so the 400 must not land before or inside it. A body
 * the parser refuses part-way is the current request's own fault, answered at once.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody, InfergateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { HEADER_REQUEST_ID } from '../protocol/headers.ts';
import { sendError } from './respond.ts';

export function answerClientError(err: NodeJS.ErrnoException, socket: Socket, logger: Logger): void {
  if (!socket.writable || (err as { code?: string }).code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  // node:http's own marker of the response it is writing on this socket (its default clientError
  // handler checks it too).
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (inFlight != null && !inFlight.writableFinished) {
    if (inFlight.req.complete) {
      // The broken request came after the one being answered: answer it after that one.
      inFlight.once('close', () => {
        if (inFlight.writableFinished) answerClientError(err, socket, logger);
        else socket.destroy();
      });
      return;
    }
    // The error is in the body of the request being answered (a Transfer-Encoding the parser
    // refused after the headers): it cannot be answered normally. Refuse it now, unless its answer
    // has begun, which only a cut connection can end.
    if (inFlight.headersSent) {
      socket.destroy();
      return;
    }
  }
  const error = err.code === 'HPE_HEADER_OVERFLOW'
    ? new InfergateError('ERR_HEADERS_TOO_LARGE', 'the request headers are too large')
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new InfergateError('ERR_BAD_REQUEST', 'the request took too long to arrive')
      : new InfergateError('ERR_BAD_REQUEST', 'the request is not valid HTTP/1.1');
  // No request could be parsed, so no client id to echo: a fresh one still ties the answer to the log.
  const requestId = randomUUID();
  logger.info({ request_id: requestId, code: err.code, status: error.status }, 'refused a malformed request');
  const body = JSON.stringify(errorBody(error, requestId));
  socket.end(`HTTP/1.1 ${error.status} ${error.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * Answers an `Expect` other than `100-continue` (node:http's 'checkExpectation') with the JSON 417
 * of DESIGN.md instead of node:http's empty one, and closes: the body was never asked for.
 * `server.on('checkExpectation', (req, res) => refuseExpectation(req, res, logger))`.
 */
export function refuseExpectation(req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  const requestId = randomUUID();
  const error = new InfergateError('ERR_EXPECTATION_FAILED', `cannot meet Expect: ${String(req.headers.expect).slice(0, 64)}`);
  logger.info({ request_id: requestId, method: req.method, url: req.url, status: error.status, code: error.code }, error.message);
  res.setHeader(HEADER_REQUEST_ID, requestId);
  res.setHeader('connection', 'close');
  sendError(res, error, requestId);
}
