import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { InfergateError } from '../../shared/errors.ts';

/** What a request's `Authorization` header says about the admin token. */
export type AdminTokenCheck = 'valid' | 'missing' | 'invalid';

/**
 * Checks `Authorization: Bearer <admin token>` in constant time (both sides hashed first so their
 * lengths cannot leak). No token configured: nothing is ever valid.
 *
 * @example
 *   const check = adminTokenChecker(process.env.INFERGATE_ADMIN_TOKEN);
 *   check(req.headers); // 'valid' | 'missing' | 'invalid'
 */
export function adminTokenChecker(token: string | undefined): (headers: IncomingHttpHeaders) => AdminTokenCheck {
  const expected = token === undefined ? undefined : createHash('sha256').update(token).digest();
  return (headers) => {
    const given = /^Bearer (.+)$/i.exec(headers.authorization ?? '')?.[1];
    if (given === undefined) return 'missing';
    return expected !== undefined && timingSafeEqual(createHash('sha256').update(given).digest(), expected) ? 'valid' : 'invalid';
  };
}

/** Admin API authentication: the admin token or 401. No token configured: everything is refused. */
export function requireAdminToken(token: string | undefined): (req: Request, res: Response, next: NextFunction) => void {
  const check = adminTokenChecker(token);
  return (req, res, next) => {
    const result = check(req.headers);
    if (result === 'valid') {
      next();
      return;
    }
    res.setHeader('www-authenticate', result === 'missing' ? 'Bearer realm="infergate-admin"' : 'Bearer realm="infergate-admin", error="invalid_token"');
    throw new InfergateError('GW_ERR_ADMIN_UNAUTHORIZED', token === undefined ? 'the admin API is disabled: no admin token is configured' : 'a valid admin token is required');
  };
}
