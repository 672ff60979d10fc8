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
  /**
   * The headers every response carries (request id, worker, queue depth...), as [name, value, ...].
   * Already set on `res`, unless the route was added with `deferHeaders`: its handler then sends
   * them itself, in one `res.writeHead(status, [...headers, ...its own])` (see RouteOptions).
   */
  headers: string[];
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

export interface RouteOptions {
  /**
   * The handler writes `ctx.headers` itself on success; on an error the app sets them before the
   * error response. For the hot path: `writeHead` with an array and nothing set before takes
   * node:http's fast path, skipping the per-header `setHeader` bookkeeping.
   */
  deferHeaders?: boolean;
}

export interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
  deferHeaders: boolean;
}

export interface RouteMatch {
  handler: Handler;
  params: string[];
  deferHeaders: boolean;
}

export class Router {
  readonly #routes: Route[] = [];

  add(method: string, pattern: RegExp, handler: Handler, options: RouteOptions = {}): this {
    this.#routes.push({ method, pattern, handler, deferHeaders: options.deferHeaders ?? false });
    return this;
  }

  /** Finds the handler and decoded path parameters, or throws 404/405. */
  match(method: string, path: string): RouteMatch {
    let pathMatched = false;
    for (const route of this.#routes) {
      const m = route.pattern.exec(path);
      if (m === null) continue;
      pathMatched = true;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) {
        try {
          const params = new Array<string>(m.length - 1);
          for (let i = 1; i < m.length; i++) params[i - 1] = m[i] === undefined ? '' : decodeURIComponent(m[i]!);
          return { handler: route.handler, params, deferHeaders: route.deferHeaders };
        } catch {
          throw new InfergateError('ERR_BAD_REQUEST', 'the path is not valid percent-encoding');
        }
      }
    }
    if (pathMatched) throw new InfergateError('ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
    throw new InfergateError('ERR_NOT_FOUND', `no route for ${method} ${path}`);
  }
}
