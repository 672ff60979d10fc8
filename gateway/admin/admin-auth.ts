import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { InfergateError } from '../../shared/errors.ts';

/**
 * Admin API authentication: `Authorization: Bearer <admin token>`, compared in constant time
 * (both sides hashed first so their lengths cannot leak). No token configured: everything is refused.
 */
export function requireAdminToken(token: string | undefined): (req: Request, res: Response, next: NextFunction) => void {
  const expected = token === undefined ? undefined : createHash('sha256').update(token).digest();
  return (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const given = /^Bearer (.+)$/i.exec(header)?.[1];
    const ok = expected !== undefined && given !== undefined && timingSafeEqual(createHash('sha256').update(given).digest(), expected);
    if (ok) {
      next();
      return;
    }
    res.setHeader('www-authenticate', given === undefined ? 'Bearer realm="infergate-admin"' : 'Bearer realm="infergate-admin", error="invalid_token"');
    throw new InfergateError('GW_ERR_ADMIN_UNAUTHORIZED', expected === undefined ? 'the admin API is disabled: no admin token is configured' : 'a valid admin token is required');
  };
}
