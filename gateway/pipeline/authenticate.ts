/**
 * Authenticate and authorize stages. One credential per request — `Authorization: Bearer` (a JWT,
 * or an API key by its `igk_` prefix) or `X-API-Key`; two different ones are refused rather than
 * one picked. The result is one Principal, whatever the credential. 401s carry `WWW-Authenticate`
 * per RFC 6750 (no `error` when no credential was sent), 403s `error="insufficient_scope"`.
 * An unreachable key store refuses new or uncached keys with 503: it never lets them through.
 */
import { InfergateError } from '../../shared/errors.ts';
import { extractCredential, wwwAuthenticate, type BearerError } from '../auth/credentials.ts';
import type { JwtVerification, JwtVerifier } from '../auth/jwt-verifier.ts';
import type { ApiKeyVerification, ApiKeyVerifier } from '../auth/key-verifier.ts';
import { mayUseModel, type Principal } from '../auth/principal.ts';
import type { GatewayConfig } from '../config/schema.ts';
import type { RequestContext } from './context.ts';
import type { Stage } from './pipeline.ts';

export interface AuthDeps {
  apiKeys: ApiKeyVerifier | undefined;
  jwt: JwtVerifier | undefined;
}

function unauthenticated(message: string, error?: BearerError): InfergateError {
  return new InfergateError('GW_ERR_UNAUTHENTICATED', message, { 'WWW-Authenticate': wwwAuthenticate(error, error === undefined ? undefined : message) });
}

export function authenticateStage(options: GatewayConfig['auth'], deps: AuthDeps): Stage {
  if (options.apiKeys.enabled && deps.apiKeys === undefined) throw new Error('authenticate stage: API keys are enabled but no key verifier was given');
  const anonymous: Principal | undefined = options.anonymous.enabled
    ? { subject: 'anonymous', kind: 'anonymous', models: options.anonymous.models.length > 0 ? options.anonymous.models : '*', plan: options.anonymous.plan }
    : undefined;
  const accept = (ctx: RequestContext, result: ApiKeyVerification | JwtVerification): void => {
    if (!result.ok) throw unauthenticated(result.message, 'invalid_token');
    ctx.principal = result.principal;
  };
  const storeDown = (): never => {
    throw new InfergateError('GW_ERR_KEY_STORE_UNAVAILABLE', 'API keys cannot be checked right now', { 'Retry-After': '1' });
  };
  // Synchronous unless an API key has to be looked up in the store: a cached key or a JWT (whose
  // verifier caches too) costs no promise.
  return (ctx) => {
    const credential = extractCredential(ctx.req.headers);
    switch (credential.kind) {
      case 'none':
        if (anonymous === undefined) throw unauthenticated('a credential is required: Authorization: Bearer <token or API key>, or X-API-Key');
        ctx.principal = anonymous;
        return undefined;
      case 'conflict':
        throw unauthenticated('the request carries two different credentials; send one', 'invalid_request');
      case 'api-key': {
        const apiKeys = deps.apiKeys;
        if (!options.apiKeys.enabled || apiKeys === undefined) throw unauthenticated('API keys are not accepted here', 'invalid_token');
        const known = apiKeys.verifyCached(credential.key);
        if (known !== undefined) return accept(ctx, known);
        return apiKeys.verify(credential.key).then((result) => accept(ctx, result), storeDown);
      }
      case 'bearer':
        if (deps.jwt === undefined) throw unauthenticated('bearer tokens are not accepted here', 'invalid_token');
        return accept(ctx, deps.jwt.verify(credential.token));
    }
  };
}

/** 403 when the principal may not use the requested model. */
export function authorizeStage(): Stage {
  return (ctx) => {
    const principal = ctx.principal;
    if (principal === undefined || mayUseModel(principal, ctx.route.model)) return;
    throw new InfergateError('GW_ERR_FORBIDDEN', `this credential may not use model '${ctx.route.model}'`, {
      'WWW-Authenticate': wwwAuthenticate('insufficient_scope', 'the credential does not cover this model'),
    });
  };
}
