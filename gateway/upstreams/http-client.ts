/**
 * Small JSON requests from the gateway to a worker (health checks, index refresh, repository
 * fan-out), over a keep-alive agent of the caller's choice, each with a hard timeout.
 */
import { request as httpRequest, type Agent } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface JsonReply {
  status: number;
  headers: import('node:http').IncomingHttpHeaders;
  body: unknown;
}

export function requestJson(base: URL, agent: Agent, method: string, path: string, body: unknown, timeoutMs: number, headers: Record<string, string> = {}): Promise<JsonReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const send = base.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(new URL(path, base), {
      method,
      agent,
      headers: { accept: 'application/json', ...headers, ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) },
      signal: AbortSignal.timeout(timeoutMs),
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > 16 * 1024 * 1024) req.destroy(new Error('reply too large'));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = text.length > 0 ? JSON.parse(text) : undefined;
        } catch {
          // keep the text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}
