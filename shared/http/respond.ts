/** Writing JSON and error responses on a bare node:http response. */
import type { ServerResponse } from 'node:http';
import { errorBody, type InfergateError } from '../errors.ts';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendRaw(res, status, Buffer.from(JSON.stringify(body)), 'application/json', headers);
}

export function sendRaw(res: ServerResponse, status: number, body: Buffer | string, contentType: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('content-type', contentType);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}

export function sendError(res: ServerResponse, error: InfergateError, requestId: string | undefined): void {
  sendJson(res, error.status, errorBody(error, requestId), error.headers as Record<string, string>);
}
