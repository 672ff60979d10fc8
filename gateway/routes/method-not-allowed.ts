/**
 * 405 for a path the app serves with other methods (POST /v2/health/live, GET /v2/repository/index,
 * DELETE /openapi.json), instead of the 404 a method-blind fallthrough would give: RFC 9110 §15.5.6
 * asks for 405 with an `Allow` header naming the methods the path has.
 *
 * It asks the app's own router which routes match the path — the routes declared with
 * express, recursing into mounted routers — so a route added later is covered without a list to
 * keep in step. It runs only after every route has declined the request (right before the 404
 * fallback), so the routes' cost is unchanged. Inference paths are not express routes and have
 * their own check (`allowedInferenceMethods`).
 */
import type { Express, NextFunction, Request, Response } from 'express';
import { InfergateError } from '../../shared/errors.ts';

/** The parts of express 5's router (the `router` package) read here. */
interface RouterLayer {
  match(path: string): { path: string } | false;
  route?: { _methods(): string[] };
  handle?: { stack?: RouterLayer[] };
}

/** Methods of every route under `stack` that matches `path` (HEAD comes with GET). */
function methodsFor(stack: readonly RouterLayer[], path: string, into: Set<string>): void {
  for (const layer of stack) {
    const matched = layer.match(path);
    if (matched === false) continue;
    if (layer.route !== undefined) {
      for (const method of layer.route._methods()) into.add(method);
    } else if (layer.handle?.stack !== undefined) {
      // A mounted router sees the path without its mount prefix.
      methodsFor(layer.handle.stack, path.slice(matched.path.length) || '/', into);
    }
  }
}

/** Middleware for the end of `app`'s chain: 405 + Allow when the path has routes for other methods, else next(). */
export function methodNotAllowed(app: Express) {
  const stack = (): readonly RouterLayer[] => (app as unknown as { router: { stack: RouterLayer[] } }).router.stack;
  return (req: Request, _res: Response, next: NextFunction): void => {
    const methods = new Set<string>();
    methodsFor(stack(), req.path, methods);
    if (methods.size === 0 || methods.has(req.method)) return next();
    throw new InfergateError('ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${req.path}`, { Allow: [...methods].sort().join(', ') });
  };
}
