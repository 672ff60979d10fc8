/**
 * Who may call the public routes express answers (model metadata and readiness, the repository
 * extension): the inference pipeline's own authenticate and authorize stages, run on a context built
 * for the route, so a credential means the same everywhere on the public port. Repository load and
 * unload change what every worker serves, so they take the admin token instead: an ordinary
 * credential is 403 `insufficient_scope`, none is 401. Every call but those takes a token from the
 * caller's rate plan, as an inference request of cost 1 does (the index reaches every worker).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InfergateError } from '../../shared/errors.ts';
import { HEADER_REQUEST_ID } from '../../shared/protocol/headers.ts';
import type { AdminTokenCheck } from '../admin/admin-auth.ts';
import { extractCredential, wwwAuthenticate } from '../auth/credentials.ts';
import type { Principal } from '../auth/principal.ts';
import { RequestContext } from '../pipeline/context.ts';
import type { Stage } from '../pipeline/pipeline.ts';

export interface CallerAuthDeps {
  /** The pipeline's authenticate stage (401, or 503 when the key store is down). */
  authenticate: Stage;
  /** The pipeline's authorize stage (403 for a model outside the principal's scope). */
  authorize: Stage;
  /** The pipeline's throttle stage at cost 1 (429); undefined when throttling is off. */
  throttle?: Stage | undefined;
  /** The admin-token check of gateway/admin/admin-auth.ts. */
  adminToken: (headers: IncomingMessage['headers']) => AdminTokenCheck;
}

export interface CallerAuth {
  /** The caller's principal; throws what the authenticate stage throws. */
  principal(req: IncomingMessage, res: ServerResponse): Promise<Principal>;
  /** Authenticates, then refuses (403) a model outside the principal's scope. */
  authorizeModel(req: IncomingMessage, res: ServerResponse, model: string): Promise<void>;
  /** Lets only the admin token through: 401 without a credential or with a bad one, 403 with an ordinary one. */
  requireAdmin(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export function callerAuth(deps: CallerAuthDeps): CallerAuth {
  async function authenticated(req: IncomingMessage, res: ServerResponse, model: string): Promise<RequestContext> {
    const ctx = routeContext(req, res, model);
    await deps.authenticate(ctx);
    return ctx;
  }
  return {
    async principal(req, res) {
      const ctx = await authenticated(req, res, '');
      if (ctx.principal === undefined) throw new Error('the authenticate stage set no principal');
      await deps.throttle?.(ctx);
      return ctx.principal;
    },
    async authorizeModel(req, res, model) {
      const ctx = await authenticated(req, res, model);
      await deps.authorize(ctx);
      await deps.throttle?.(ctx);
    },
    async requireAdmin(req, res) {
      if (deps.adminToken(req.headers) === 'valid') return;
      if (extractCredential(req.headers).kind === 'none') {
        throw new InfergateError('GW_ERR_UNAUTHENTICATED', 'this operation needs the admin token: Authorization: Bearer <admin token>', { 'WWW-Authenticate': wwwAuthenticate() });
      }
      await authenticated(req, res, ''); // a bad credential is 401 invalid_token, as everywhere else
      throw new InfergateError('GW_ERR_ADMIN_REQUIRED', 'loading and unloading models changes every worker and needs the admin token', {
        'WWW-Authenticate': wwwAuthenticate('insufficient_scope', 'only the admin token may load or unload models'),
      });
    },
  };
}

/** A pipeline context for a route answered by the gateway itself: nothing is forwarded from it. */
function routeContext(req: IncomingMessage, res: ServerResponse, model: string): RequestContext {
  const requestId = String(res.getHeader(HEADER_REQUEST_ID) ?? '');
  return new RequestContext(req, res, { protocol: 'v2', model, version: undefined }, requestId, 0, Infinity);
}
