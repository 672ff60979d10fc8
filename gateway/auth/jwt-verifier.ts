/**
 * JWT → Principal, with jsonwebtoken doing the signature and time checks and everything an attacker
 * could steer decided here first, from the header, before any key is touched:
 *
 * - `alg` must be one of HS/RS/PS/ES 256/384/512: `none` in any spelling never gets further.
 * - Each configured key pins its algorithms, and the algorithm list passed to jsonwebtoken is the
 *   token's `alg` only if that key allows it. A secret only ever verifies HS*, a public key only
 *   RS/PS/ES of its own type and curve, so an HS256 token "signed" with an RSA public key as the
 *   HMAC secret (the RS↔HS confusion attack, CVE-2015-9235 and kin) finds no key to verify against.
 *   jsonwebtoken 9 refuses the same mismatch again on its own.
 * - `jku`, `x5u`, `jwk`, `x5c` are rejected, not ignored: keys come from config only, never from the
 *   token. `crit` is rejected: we understand no extension, and RFC 7515 §4.1.11 says to fail then.
 * - `kid` selects the key; a token without `kid` is tried against the keys allowing its `alg`.
 * - `exp` is required and `exp − (iat ?? now)` may not exceed `maxLifetimeSec`; `nbf` and `iat` may be
 *   ahead of our clock by `clockToleranceSec` at most; `iss`/`aud` are checked when configured.
 * - Failure messages are fixed strings: they never echo the expected issuer or audience (jsonwebtoken's
 *   own messages do, so they are never passed on).
 *
 * Verified tokens are cached by their SHA-256 until min(exp, now + cacheTtlMs), at most
 * `maxCacheEntries` (least recently used dropped first): measured verify costs are 4 µs (HS256) to
 * 55 µs (ES256), a cache hit is one hash.
 *
 * @example
 *   const verifier = createJwtVerifier({ keys: [{ kid: 'k1', algorithms: ['RS256'], publicKeyFile: 'jwt.pem' }], issuer: 'https://idp', audience: 'infergate' });
 *   const result = verifier.verify(token);
 *   if (!result.ok) reply401(result.message); else use(result.principal);
 */
import { createPublicKey, createSecretKey, hash, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import jwt from 'jsonwebtoken';
import type { Principal } from './principal.ts';

export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export type HmacAlgorithm = (typeof HMAC_ALGORITHMS)[number];
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
export type JwtAlgorithm = HmacAlgorithm | AsymmetricAlgorithm;

/** One verification key, with the algorithms it may verify. Exactly one key source per entry. */
export type JwtKeyConfig =
  | { kid?: string; algorithms: HmacAlgorithm[]; /** At least as many bytes as the hash (RFC 7518 §3.2): 32 for HS256. */ secret: string }
  | { kid?: string; algorithms: AsymmetricAlgorithm[]; /** PEM (SPKI or PKCS#1 public key, or a certificate). */ publicKey: string }
  | { kid?: string; algorithms: AsymmetricAlgorithm[]; publicKeyFile: string }
  | {
    /** A JSON Web Key Set file ({"keys": [...]}); every key needs a `kid`. */
    jwksFile: string;
    /** Algorithms for keys without an `alg` member; a key's own `alg` must be among them when given. */
    algorithms?: AsymmetricAlgorithm[];
  };

export interface JwtVerifierOptions {
  keys: JwtKeyConfig[];
  /** Accepted `iss` values; unset = not checked. */
  issuer?: string | string[];
  /** Accepted `aud` values (a token's `aud` may be a list: one match suffices); unset = not checked. */
  audience?: string | string[];
  /** Longest accepted lifetime, exp − iat (or exp − now without iat). Default 86 400 (one day). */
  maxLifetimeSec?: number;
  /** How far `nbf`/`iat` may be in the future and `exp` in the past. Default 5 s. */
  clockToleranceSec?: number;
  /** Claim holding the allowed models: a list or a space-separated string. Default `models`. */
  modelsClaim?: string;
  /** Models of a token without that claim: none (default) or all. */
  modelsWhenAbsent?: 'none' | 'all';
  /** Claim naming the rate plan. Default `plan`. */
  planClaim?: string;
  /** Longest time a verified token is trusted without verifying again (never past its exp). Default 60 000 ms. */
  cacheTtlMs?: number;
  /** Default 10 000. */
  maxCacheEntries?: number;
  /** Wall clock, epoch ms. Default Date.now. */
  now?: () => number;
  /** Called before each signature verification (tests count them; metrics may). */
  onVerify?: () => void;
}

export type JwtFailureReason =
  | 'malformed' | 'algorithm' | 'header' | 'unknown-kid' | 'signature' | 'expired' | 'not-yet-valid'
  | 'issued-in-future' | 'lifetime' | 'missing-claim' | 'issuer' | 'audience';

export type JwtVerification =
  | { ok: true; principal: Principal; /** Epoch seconds. */ expiresAt: number }
  | { ok: false; reason: JwtFailureReason; /** Safe to send to the client. */ message: string };

export interface JwtVerifier {
  /** Never throws for a bad token. */
  verify(token: string): JwtVerification;
  stats(): { verifications: number; cacheHits: number };
}

const MESSAGES: Record<JwtFailureReason, string> = {
  malformed: 'the token is not a well-formed JWT',
  algorithm: 'the token\'s signing algorithm is not accepted',
  header: 'the token\'s header carries a parameter that is not accepted (jku, x5u, jwk, x5c, crit)',
  'unknown-kid': 'the token\'s key id is not known',
  signature: 'the token\'s signature is invalid',
  expired: 'the token has expired',
  'not-yet-valid': 'the token is not valid yet',
  'issued-in-future': 'the token is issued in the future',
  lifetime: 'the token\'s lifetime is longer than accepted',
  'missing-claim': 'the token lacks a required claim (exp, sub)',
  issuer: 'the token\'s issuer is not accepted',
  audience: 'the token\'s audience is not accepted',
};

const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit'] as const;
const KNOWN_ALGORITHMS = new Set<string>([...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS]);
/** Longer than any sane bearer token; refused before base64 decoding. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const EC_CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };
const HMAC_MIN_BYTES: Record<HmacAlgorithm, number> = { HS256: 32, HS384: 48, HS512: 64 };

interface ResolvedKey {
  kid: string | undefined;
  algorithms: ReadonlySet<JwtAlgorithm>;
  key: KeyObject;
}

export class JwtConfigError extends Error {
  override name = 'JwtConfigError';
}

/** Builds a verifier; bad key material or settings throw JwtConfigError here, at boot. */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const keys = options.keys.flatMap(resolveKeys);
  if (keys.length === 0) throw new JwtConfigError('JWT authentication needs at least one key');
  const kids = keys.map((k) => k.kid).filter((kid) => kid !== undefined);
  if (new Set(kids).size !== kids.length) throw new JwtConfigError('two JWT keys share a kid');
  const byKid = new Map(keys.filter((k) => k.kid !== undefined).map((k) => [k.kid!, k]));
  const issuers = toSet(options.issuer);
  const audiences = toSet(options.audience);
  const maxLifetimeSec = options.maxLifetimeSec ?? 86_400;
  const toleranceSec = options.clockToleranceSec ?? 5;
  const modelsClaim = options.modelsClaim ?? 'models';
  const planClaim = options.planClaim ?? 'plan';
  const modelsWhenAbsent = options.modelsWhenAbsent ?? 'none';
  const cacheTtlMs = options.cacheTtlMs ?? 60_000;
  const maxEntries = options.maxCacheEntries ?? 10_000;
  const now = options.now ?? Date.now;
  if (!(maxLifetimeSec > 0)) throw new JwtConfigError('maxLifetimeSec must be > 0');
  if (!(toleranceSec >= 0 && toleranceSec <= 300)) throw new JwtConfigError('clockToleranceSec must be from 0 to 300');
  if (!(cacheTtlMs >= 0) || !(Number.isInteger(maxEntries) && maxEntries >= 1)) throw new JwtConfigError('cacheTtlMs must be ≥ 0 and maxCacheEntries ≥ 1');

  const cache = new Map<string, { principal: Principal; expiresAt: number; until: number }>();
  const stats = { verifications: 0, cacheHits: 0 };
  const fail = (reason: JwtFailureReason): JwtVerification => ({ ok: false, reason, message: MESSAGES[reason] });

  const verifyUncached = (token: string, nowMs: number): JwtVerification => {
    let decoded: jwt.Jwt | null;
    try {
      decoded = jwt.decode(token, { complete: true });
    } catch {
      decoded = null;
    }
    if (decoded === null || typeof decoded.payload !== 'object' || decoded.payload === null || Array.isArray(decoded.payload)) return fail('malformed');
    const header = decoded.header as unknown as Record<string, unknown>;
    if (typeof header.alg !== 'string' || !KNOWN_ALGORITHMS.has(header.alg)) return fail('algorithm');
    if (FORBIDDEN_HEADERS.some((name) => Object.hasOwn(header, name))) return fail('header');
    const alg = header.alg as JwtAlgorithm;
    let candidates: ResolvedKey[];
    if (header.kid !== undefined) {
      const key = typeof header.kid === 'string' ? byKid.get(header.kid) : undefined;
      if (key === undefined) return fail('unknown-kid');
      candidates = [key];
    } else {
      candidates = keys;
    }
    candidates = candidates.filter((k) => k.algorithms.has(alg));
    if (candidates.length === 0) return fail('algorithm');

    const nowSec = Math.floor(nowMs / 1000);
    let payload: jwt.JwtPayload | undefined;
    let failure: JwtFailureReason = 'signature';
    for (const candidate of candidates) {
      options.onVerify?.();
      stats.verifications++;
      try {
        payload = jwt.verify(token, candidate.key, { algorithms: [alg], clockTimestamp: nowSec, clockTolerance: toleranceSec }) as jwt.JwtPayload;
        break;
      } catch (err) {
        // The signature is checked before the times, so these two mean the signature was good.
        if (err instanceof jwt.TokenExpiredError) return fail('expired');
        if (err instanceof jwt.NotBeforeError) return fail('not-yet-valid');
        failure = err instanceof jwt.JsonWebTokenError && err.message === 'invalid signature' ? 'signature' : 'malformed';
      }
    }
    if (payload === undefined) return fail(failure);

    const { exp, iat, sub } = payload;
    if (typeof exp !== 'number' || typeof sub !== 'string' || sub === '') return fail('missing-claim');
    if (iat !== undefined && (typeof iat !== 'number' || iat > nowSec + toleranceSec)) return fail('issued-in-future');
    if (exp - (iat ?? nowSec) > maxLifetimeSec) return fail('lifetime');
    if (issuers !== undefined && (typeof payload.iss !== 'string' || !issuers.has(payload.iss))) return fail('issuer');
    if (audiences !== undefined) {
      const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
      if (!aud.some((a) => typeof a === 'string' && audiences.has(a))) return fail('audience');
    }
    const models = modelsOf(payload[modelsClaim], modelsWhenAbsent);
    if (models === undefined) return fail('malformed');
    const plan = payload[planClaim];
    const principal: Principal = { subject: sub, kind: 'jwt', models, plan: typeof plan === 'string' && plan !== '' ? plan : undefined };
    return { ok: true, principal, expiresAt: exp };
  };

  return {
    verify(token) {
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) return fail('malformed');
      const nowMs = now();
      const id = hash('sha256', token, 'base64');
      const hit = cache.get(id);
      if (hit !== undefined) {
        cache.delete(id);
        if (hit.until > nowMs) {
          stats.cacheHits++;
          cache.set(id, hit);
          return { ok: true, principal: hit.principal, expiresAt: hit.expiresAt };
        }
      }
      const result = verifyUncached(token, nowMs);
      if (result.ok) {
        // Cached until exp exactly: the tolerance granted at verification is not extended.
        const until = Math.min(result.expiresAt * 1000, nowMs + cacheTtlMs);
        if (until > nowMs) {
          cache.set(id, { principal: result.principal, expiresAt: result.expiresAt, until });
          if (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
        }
      }
      return result;
    },
    stats: () => ({ ...stats }),
  };
}

function toSet(value: string | string[] | undefined): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  const values = Array.isArray(value) ? value : [value];
  if (values.length === 0 || values.some((v) => typeof v !== 'string' || v === '')) throw new JwtConfigError('issuer and audience must be non-empty strings');
  return new Set(values);
}

/** The models claim as a list ('*' alone, or in the list, means all); undefined when it has a wrong type. */
function modelsOf(claim: unknown, whenAbsent: 'none' | 'all'): Principal['models'] | undefined {
  if (claim === undefined || claim === null) return whenAbsent === 'all' ? '*' : [];
  const list = typeof claim === 'string' ? claim.split(' ').filter(Boolean) : claim;
  if (!Array.isArray(list) || !list.every((m) => typeof m === 'string')) return undefined;
  return list.includes('*') ? '*' : Object.freeze([...new Set(list as string[])]);
}

function resolveKeys(config: JwtKeyConfig): ResolvedKey[] {
  if ('jwksFile' in config) return resolveJwks(config.jwksFile, config.algorithms);
  const kid = config.kid;
  const where = kid === undefined ? 'a JWT key' : `JWT key '${kid}'`;
  if (!Array.isArray(config.algorithms) || config.algorithms.length === 0) throw new JwtConfigError(`${where} needs its algorithms listed (they are pinned per key)`);
  if ('secret' in config) {
    for (const alg of config.algorithms) {
      if (!(HMAC_ALGORITHMS as readonly string[]).includes(alg)) throw new JwtConfigError(`${where}: a secret verifies HS256/384/512 only, not ${alg}`);
      if (Buffer.byteLength(config.secret) < HMAC_MIN_BYTES[alg]) throw new JwtConfigError(`${where}: an ${alg} secret needs at least ${HMAC_MIN_BYTES[alg]} bytes (RFC 7518 §3.2)`);
    }
    return [{ kid, algorithms: new Set(config.algorithms), key: createSecretKey(Buffer.from(config.secret)) }];
  }
  let pem: string;
  if ('publicKeyFile' in config) {
    try {
      pem = readFileSync(config.publicKeyFile, 'utf8');
    } catch (err) {
      throw new JwtConfigError(`${where}: cannot read ${config.publicKeyFile}: ${(err as Error).message}`);
    }
  } else {
    pem = config.publicKey;
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new JwtConfigError(`${where}: not a PEM public key: ${(err as Error).message}`);
  }
  checkAsymmetric(key, config.algorithms, where);
  return [{ kid, algorithms: new Set(config.algorithms), key }];
}

function resolveJwks(path: string, algorithms: AsymmetricAlgorithm[] | undefined): ResolvedKey[] {
  let set: unknown;
  try {
    set = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new JwtConfigError(`cannot read the JWKS file ${path}: ${(err as Error).message}`);
  }
  const jwks = (set as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(jwks)) throw new JwtConfigError(`${path}: a JWKS file holds {"keys": [...]}`);
  return jwks.map((jwk: JsonWebKey & { kid?: unknown; alg?: unknown; use?: unknown }, i) => {
    const where = `${path} key ${typeof jwk.kid === 'string' ? `'${jwk.kid}'` : `#${i}`}`;
    if (typeof jwk.kid !== 'string' || jwk.kid === '') throw new JwtConfigError(`${where}: every JWKS key needs a kid`);
    if (jwk.use !== undefined && jwk.use !== 'sig') throw new JwtConfigError(`${where}: "use" is ${String(jwk.use)}, not sig`);
    if (jwk.d !== undefined) throw new JwtConfigError(`${where}: is a private key; the gateway needs only the public part`);
    let pinned: AsymmetricAlgorithm[];
    if (jwk.alg !== undefined) {
      if (typeof jwk.alg !== 'string' || !(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(jwk.alg)) throw new JwtConfigError(`${where}: alg ${String(jwk.alg)} is not supported`);
      if (algorithms !== undefined && !algorithms.includes(jwk.alg as AsymmetricAlgorithm)) throw new JwtConfigError(`${where}: alg ${jwk.alg} is not among the configured algorithms`);
      pinned = [jwk.alg as AsymmetricAlgorithm];
    } else if (algorithms !== undefined && algorithms.length > 0) {
      pinned = algorithms;
    } else {
      throw new JwtConfigError(`${where}: has no alg; list the algorithms for this JWKS in the config`);
    }
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk, format: 'jwk' });
    } catch (err) {
      throw new JwtConfigError(`${where}: not a usable public key: ${(err as Error).message}`);
    }
    checkAsymmetric(key, pinned, where);
    return { kid: jwk.kid, algorithms: new Set(pinned), key };
  });
}

/** RS/PS need an RSA key of ≥ 2048 bits, ESnnn an EC key on its own curve. */
function checkAsymmetric(key: KeyObject, algorithms: readonly string[], where: string): void {
  for (const alg of algorithms) {
    if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) throw new JwtConfigError(`${where}: a public key verifies RS/PS/ES algorithms only, not ${alg}`);
    const type = key.asymmetricKeyType;
    const details = key.asymmetricKeyDetails;
    if (alg.startsWith('RS') || alg.startsWith('PS')) {
      if (type !== 'rsa' && !(type === 'rsa-pss' && alg.startsWith('PS'))) throw new JwtConfigError(`${where}: ${alg} needs an RSA key, this is ${type}`);
      if ((details?.modulusLength ?? 0) < 2048) throw new JwtConfigError(`${where}: RSA keys under 2048 bits are refused`);
    } else if (type !== 'ec' || details?.namedCurve !== EC_CURVES[alg]) {
      throw new JwtConfigError(`${where}: ${alg} needs an EC key on ${EC_CURVES[alg]}, this is ${type}${details?.namedCurve ? ` on ${details.namedCurve}` : ''}`);
    }
  }
}
