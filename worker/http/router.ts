/**
 * A tiny method + regex router. The worker's routes are few and fixed, and a bare node:http server
 * with this table costs a fraction of a framework's per-request floor (see docs/performance.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InfergateError } from '../../shared/errors.ts';
import type { CancelSignal } from '../scheduler/scheduler.ts';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: string[];
  requestId: string;
  /** Aborted when the client goes away before the response is sent. */
  signal: CancelSignal;
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export class Router {
  readonly #routes: Route[] = [];

  add(method: string, pattern: RegExp, handler: Handler): this {
    this.#routes.push({ method, pattern, handler });
    return this;
  }

  /** Finds the handler and decoded path parameters, or throws 404/405. */
  match(method: string, path: string): { handler: Handler; params: string[] } {
    let pathMatched = false;
    for (const route of this.#routes) {
      const m = route.pattern.exec(path);
      if (m === null) continue;
      pathMatched = true;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) {
        try {
          return { handler: route.handler, params: m.slice(1).map((p) => (p === undefined ? '' : decodeURIComponent(p))) };
        } catch {
          throw new InfergateError('ERR_BAD_REQUEST', 'the path is not valid percent-encoding');
        }
      }
    }
    if (pathMatched) throw new InfergateError('ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
    throw new InfergateError('ERR_NOT_FOUND', `no route for ${method} ${path}`);
  }
}
