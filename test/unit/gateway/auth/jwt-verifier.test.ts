/**
 * The JWT accept/reject matrix (gateway/auth/jwt-verifier.ts): each attack its own case. Times are
 * a manual clock; tokens are signed by jsonwebtoken or, for the forgeries jsonwebtoken refuses to
 * make, assembled by hand.
 */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import jwt from 'jsonwebtoken';
import { createJwtVerifier, JwtConfigError, type JwtVerification, type JwtVerifierOptions } from '../../../../gateway/auth/jwt-verifier.ts';

const NOW_SEC = 1_800_000_000;
const clock = { ms: NOW_SEC * 1000 };
const now = (): number => clock.ms;
const SECRET = 'a-test-secret-that-is-long-enough-for-hs256!';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

const dir = mkdtempSync(join(tmpdir(), 'infergate-jwt-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const jwksFile = join(dir, 'jwks.json');
writeFileSync(jwksFile, JSON.stringify({
  keys: [
    { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-jwks', alg: 'RS256', use: 'sig' },
    { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'pss-jwks', alg: 'PS256' },
    { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-jwks', alg: 'ES256' },
  ],
}));
const pemFile = join(dir, 'rsa.pem');
writeFileSync(pemFile, rsaPem);

/** The standard set-up: an HS key, an RS key by PEM, an ES key by PEM file... and a JWKS. */
function verifier(extra: Partial<JwtVerifierOptions> = {}): ReturnType<typeof createJwtVerifier> {
  return createJwtVerifier({
    keys: [
      { kid: 'hs', algorithms: ['HS256'], secret: SECRET },
      { kid: 'rsa', algorithms: ['RS256', 'PS256'], publicKey: rsaPem },
      { kid: 'ec', algorithms: ['ES256'], publicKey: ecPem },
      { kid: 'rsa-file', algorithms: ['RS256'], publicKeyFile: pemFile },
      { jwksFile },
    ],
    issuer: 'https://issuer.example',
    audience: 'infergate',
    maxLifetimeSec: 3600,
    clockToleranceSec: 30,
    now,
    ...extra,
  });
}

/** Good claims; an `undefined` in `extra` removes that claim. */
const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => Object.fromEntries(Object.entries({
  sub: 'alice', iat: NOW_SEC, exp: NOW_SEC + 600, iss: 'https://issuer.example', aud: 'infergate', models: ['iris', 'mnist'], plan: 'gold', ...extra,
}).filter(([, value]) => value !== undefined));

function sign(payload: Record<string, unknown>, key: string | KeyObject, algorithm: jwt.Algorithm, header: Record<string, unknown> = {}): string {
  // jsonwebtoken adds iat = real time when absent (noTimestamp stops that, but also drops a given iat).
  return jwt.sign(payload, key, { algorithm, noTimestamp: !('iat' in payload), header: { alg: algorithm, ...header } as jwt.JwtHeader });
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token jsonwebtoken would refuse to make: header and payload as given, HMAC over them with `secret`. */
function forgeHmac(header: Record<string, unknown>, payload: Record<string, unknown>, secret: string | Buffer, hash = 'sha256'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}

function rejected(result: JwtVerification, reason: string): void {
  assert.equal(result.ok, false, `expected rejection (${reason}), got ${JSON.stringify(result)}`);
  if (!result.ok) assert.equal(result.reason, reason, result.message);
}

function accepted(result: JwtVerification): asserts result is Extract<JwtVerification, { ok: true }> {
  assert.equal(result.ok, true, result.ok ? '' : `${result.reason}: ${result.message}`);
}

describe('valid tokens', () => {
  test('HS256 with a secret → principal with subject, models and plan', () => {
    const result = verifier().verify(sign(claims(), SECRET, 'HS256', { kid: 'hs' }));
    accepted(result);
    assert.deepEqual(result.principal, { subject: 'alice', kind: 'jwt', models: ['iris', 'mnist'], plan: 'gold' });
    assert.equal(result.expiresAt, NOW_SEC + 600);
  });

  for (const [name, alg, key, kid] of [
    ['RS256 via PEM', 'RS256', rsa.privateKey, 'rsa'],
    ['PS256 via PEM', 'PS256', rsa.privateKey, 'rsa'],
    ['ES256 via PEM', 'ES256', ec.privateKey, 'ec'],
    ['RS256 via PEM file', 'RS256', rsa.privateKey, 'rsa-file'],
    ['RS256 via JWKS', 'RS256', rsa.privateKey, 'rsa-jwks'],
    ['PS256 via JWKS', 'PS256', rsa.privateKey, 'pss-jwks'],
    ['ES256 via JWKS', 'ES256', ec.privateKey, 'ec-jwks'],
  ] as const) {
    test(`${name} is accepted`, () => {
      accepted(verifier().verify(sign(claims(), key, alg, { kid })));
    });
  }

  test('a token without kid is tried against the keys that allow its algorithm', () => {
    accepted(verifier().verify(sign(claims(), SECRET, 'HS256')));
    accepted(verifier().verify(sign(claims(), ec.privateKey, 'ES256')));
  });

  test('models: space-separated string, "*" for all; absent = none unless configured', () => {
    const v = verifier();
    const models = (value: unknown, extra: Partial<JwtVerifierOptions> = {}): unknown => {
      const result = (Object.keys(extra).length ? verifier(extra) : v).verify(sign(claims({ models: value, jti: Math.random() }), SECRET, 'HS256'));
      accepted(result);
      return result.principal.models;
    };
    assert.deepEqual(models('iris mnist'), ['iris', 'mnist']);
    assert.equal(models('*'), '*');
    assert.equal(models(['iris', '*']), '*');
    assert.deepEqual(models(undefined), []);
    assert.equal(models(undefined, { modelsWhenAbsent: 'all' }), '*');
    const custom = verifier({ modelsClaim: 'scope_models' }).verify(sign(claims({ models: undefined, scope_models: ['iris'] }), SECRET, 'HS256'));
    accepted(custom);
    assert.deepEqual(custom.principal.models, ['iris']);
    rejected(v.verify(sign(claims({ models: 42 }), SECRET, 'HS256')), 'malformed');
  });

  test('aud may be a list: one accepted value suffices; several issuers may be configured', () => {
    accepted(verifier().verify(sign(claims({ aud: ['other', 'infergate'] }), SECRET, 'HS256')));
    accepted(verifier({ issuer: ['a', 'https://issuer.example'] }).verify(sign(claims(), SECRET, 'HS256')));
  });

  test('iss and aud are not checked when not configured', () => {
    const v = createJwtVerifier({ keys: [{ algorithms: ['HS256'], secret: SECRET }], now });
    accepted(v.verify(sign(claims({ iss: 'anyone', aud: 'anything' }), SECRET, 'HS256')));
  });
});

describe('alg none, in any spelling', () => {
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    test(`alg "${alg}" is rejected`, () => {
      const unsigned = `${b64({ alg, typ: 'JWT' })}.${b64(claims())}.`;
      rejected(verifier().verify(unsigned), 'algorithm');
      rejected(verifier().verify(`${b64({ alg, kid: 'hs' })}.${b64(claims())}.`), 'algorithm');
    });
  }
});

describe('RS↔HS confusion', () => {
  test('an HS256 token whose HMAC secret is the RSA public key (kid of the RSA key) is rejected', () => {
    const token = forgeHmac({ alg: 'HS256', typ: 'JWT', kid: 'rsa' }, claims(), rsaPem);
    rejected(verifier().verify(token), 'algorithm');
  });

  test('the same forgery without kid finds no key: HS tokens only meet HS secrets', () => {
    const onlyRsa = createJwtVerifier({ keys: [{ algorithms: ['RS256'], publicKey: rsaPem }], now });
    rejected(onlyRsa.verify(forgeHmac({ alg: 'HS256', typ: 'JWT' }, claims(), rsaPem)), 'algorithm');
    // With an HS key configured too, the forgery is checked against that secret and fails.
    rejected(verifier().verify(forgeHmac({ alg: 'HS256', typ: 'JWT' }, claims(), rsaPem)), 'signature');
  });

  test('the forgery with the key as DER or JWK-derived bytes fares no better', () => {
    const der = rsa.publicKey.export({ type: 'spki', format: 'der' });
    rejected(verifier().verify(forgeHmac({ alg: 'HS256', kid: 'rsa-jwks' }, claims(), der)), 'algorithm');
    rejected(verifier().verify(forgeHmac({ alg: 'HS512', kid: 'rsa' }, claims(), rsaPem, 'sha512')), 'algorithm');
  });

  test('an RS256 token sent with the HS key\'s kid is rejected', () => {
    rejected(verifier().verify(sign(claims(), rsa.privateKey, 'RS256', { kid: 'hs' })), 'algorithm');
  });

  test('an algorithm the key does not pin (RS384 on an RS256/PS256 key) is rejected', () => {
    rejected(verifier().verify(sign(claims(), rsa.privateKey, 'RS384', { kid: 'rsa' })), 'algorithm');
  });

  test('a key refuses algorithms of another family at build time', () => {
    assert.throws(() => createJwtVerifier({ keys: [{ algorithms: ['HS256' as 'RS256'], publicKey: rsaPem }] }), JwtConfigError);
    assert.throws(() => createJwtVerifier({ keys: [{ algorithms: ['RS256' as 'HS256'], secret: SECRET }] }), JwtConfigError);
    assert.throws(() => createJwtVerifier({ keys: [{ algorithms: ['ES256'], publicKey: rsaPem }] }), JwtConfigError);
    assert.throws(() => createJwtVerifier({ keys: [{ algorithms: ['RS256'], publicKey: ecPem }] }), JwtConfigError);
    assert.throws(() => createJwtVerifier({ keys: [{ algorithms: ['ES384'], publicKey: ecPem }] }), JwtConfigError, 'curve mismatch');
    assert.throws(() => createJwtVerifier({ keys: [{ algorithms: [], secret: SECRET }] }), JwtConfigError, 'no pinned algorithm');
    assert.throws(() => createJwtVerifier({ keys: [{ algorithms: ['HS256'], secret: 'short' }] }), JwtConfigError, 'short secret');
    assert.throws(() => createJwtVerifier({ keys: [] }), JwtConfigError);
  });
});

describe('header tricks', () => {
  for (const name of ['jku', 'x5u', 'jwk', 'x5c']) {
    test(`a "${name}" header is rejected, even on an otherwise valid token`, () => {
      const value = name === 'jwk' ? rsa.publicKey.export({ format: 'jwk' }) : name === 'x5c' ? ['MIIB...'] : 'https://attacker.example/keys';
      rejected(verifier().verify(sign(claims(), SECRET, 'HS256', { kid: 'hs', [name]: value })), 'header');
    });
  }

  test('a "crit" header is rejected', () => {
    rejected(verifier().verify(sign(claims(), SECRET, 'HS256', { kid: 'hs', crit: ['exp'] })), 'header');
    rejected(verifier().verify(sign(claims(), SECRET, 'HS256', { kid: 'hs', crit: [] })), 'header');
  });

  test('an unknown kid is rejected', () => {
    rejected(verifier().verify(sign(claims(), SECRET, 'HS256', { kid: 'nope' })), 'unknown-kid');
    rejected(verifier().verify(sign(claims(), SECRET, 'HS256', { kid: 42 })), 'unknown-kid');
  });

  test('an unknown algorithm name is rejected', () => {
    rejected(verifier().verify(forgeHmac({ alg: 'HS1' }, claims(), SECRET)), 'algorithm');
    rejected(verifier().verify(forgeHmac({ alg: 'EdDSA' }, claims(), SECRET)), 'algorithm');
    rejected(verifier().verify(forgeHmac({}, claims(), SECRET)), 'algorithm');
  });
});

describe('signatures', () => {
  test('a wrong HMAC secret is rejected', () => {
    rejected(verifier().verify(sign(claims(), `${SECRET}-but-not-quite`, 'HS256', { kid: 'hs' })), 'signature');
  });

  test('a token signed by another RSA key is rejected', () => {
    rejected(verifier().verify(sign(claims(), otherRsa.privateKey, 'RS256', { kid: 'rsa' })), 'signature');
    rejected(verifier().verify(sign(claims(), otherRsa.privateKey, 'RS256', { kid: 'rsa-jwks' })), 'signature');
  });

  test('a payload changed after signing is rejected', () => {
    const [h, , s] = sign(claims(), SECRET, 'HS256', { kid: 'hs' }).split('.');
    rejected(verifier().verify(`${h}.${b64(claims({ sub: 'mallory' }))}.${s}`), 'signature');
  });

  test('garbage is malformed, never an exception', () => {
    for (const token of ['', 'abc', 'a.b.c', 'a.b', '...', `${b64({ alg: 'HS256' })}.!!!.x`, `${b64({ alg: 'HS256' })}.${Buffer.from('"str"').toString('base64url')}.x`, 'x'.repeat(20_000)]) {
      const result = verifier().verify(token);
      assert.equal(result.ok, false, token.slice(0, 40));
    }
    rejected(verifier().verify('a.b.c'), 'malformed');
    rejected(verifier().verify(`${b64({ alg: 'HS256' })}.${Buffer.from('[1,2]').toString('base64url')}.x`), 'malformed');
  });
});

describe('time and lifetime', () => {
  test('a token without exp is rejected', () => {
    rejected(verifier().verify(sign(claims({ exp: undefined }), SECRET, 'HS256')), 'missing-claim');
  });

  test('a token without sub is rejected', () => {
    rejected(verifier().verify(sign(claims({ sub: undefined }), SECRET, 'HS256')), 'missing-claim');
    rejected(verifier().verify(sign(claims({ sub: '' }), SECRET, 'HS256')), 'missing-claim');
  });

  test('a lifetime over the cap is rejected: exp − iat, or exp − now without iat', () => {
    rejected(verifier().verify(sign(claims({ exp: NOW_SEC + 3601 }), SECRET, 'HS256')), 'lifetime');
    accepted(verifier().verify(sign(claims({ exp: NOW_SEC + 3600 }), SECRET, 'HS256')));
    rejected(verifier().verify(sign(claims({ iat: undefined, exp: NOW_SEC + 3601 }), SECRET, 'HS256')), 'lifetime');
    accepted(verifier().verify(sign(claims({ iat: undefined, exp: NOW_SEC + 3599 }), SECRET, 'HS256')));
    // An old iat with a far exp: exp − iat counts, not the time left.
    rejected(verifier().verify(sign(claims({ iat: NOW_SEC - 3000, exp: NOW_SEC + 1000 }), SECRET, 'HS256')), 'lifetime');
  });

  test('an expired token is rejected; within the clock tolerance it still passes', () => {
    rejected(verifier().verify(sign(claims({ iat: NOW_SEC - 700, exp: NOW_SEC - 31 }), SECRET, 'HS256')), 'expired');
    accepted(verifier().verify(sign(claims({ iat: NOW_SEC - 700, exp: NOW_SEC - 29 }), SECRET, 'HS256')));
  });

  test('nbf in the future beyond the tolerance is rejected; within it, accepted', () => {
    rejected(verifier().verify(sign(claims({ nbf: NOW_SEC + 31 }), SECRET, 'HS256')), 'not-yet-valid');
    accepted(verifier().verify(sign(claims({ nbf: NOW_SEC + 29 }), SECRET, 'HS256')));
  });

  test('iat in the future beyond the tolerance is rejected; within it, accepted', () => {
    rejected(verifier().verify(sign(claims({ iat: NOW_SEC + 31, exp: NOW_SEC + 600 }), SECRET, 'HS256')), 'issued-in-future');
    accepted(verifier().verify(sign(claims({ iat: NOW_SEC + 29, exp: NOW_SEC + 600 }), SECRET, 'HS256')));
    rejected(verifier().verify(forgeHmac({ alg: 'HS256' }, claims({ iat: 'yesterday' }), SECRET)), 'issued-in-future');
  });

  test('a bad signature on an expired token reports the signature, not the time', () => {
    rejected(verifier().verify(sign(claims({ exp: NOW_SEC - 1000, iat: NOW_SEC - 2000 }), 'wrong-secret-wrong-secret-wrong-secret', 'HS256', { kid: 'hs' })), 'signature');
  });
});

describe('issuer and audience', () => {
  test('a wrong issuer is rejected without naming the expected one', () => {
    const result = verifier().verify(sign(claims({ iss: 'https://evil.example' }), SECRET, 'HS256'));
    rejected(result, 'issuer');
    assert.ok(!result.ok && !result.message.includes('issuer.example'), result.ok ? '' : result.message);
    rejected(verifier().verify(sign(claims({ iss: undefined }), SECRET, 'HS256')), 'issuer');
  });

  test('a wrong audience is rejected without naming the expected one', () => {
    const result = verifier().verify(sign(claims({ aud: 'someone-else' }), SECRET, 'HS256'));
    rejected(result, 'audience');
    assert.ok(!result.ok && !result.message.includes('infergate'), result.ok ? '' : result.message);
    rejected(verifier().verify(sign(claims({ aud: undefined }), SECRET, 'HS256')), 'audience');
    rejected(verifier().verify(sign(claims({ aud: ['a', 'b'] }), SECRET, 'HS256')), 'audience');
  });

  test('no failure message ever contains the configured issuer or audience', () => {
    const v = verifier({ issuer: 'SECRET-ISSUER', audience: 'SECRET-AUD' });
    for (const token of [sign(claims(), SECRET, 'HS256'), sign(claims({ iss: 'SECRET-ISSUER' }), SECRET, 'HS256'), 'x.y.z']) {
      const result = v.verify(token);
      assert.ok(!result.ok && !/SECRET-(ISSUER|AUD)/.test(result.message));
    }
  });
});

describe('cache', () => {
  test('a verified token is cached: the second use does not verify again', () => {
    let verifications = 0;
    const v = verifier({ onVerify: () => verifications++ });
    const token = sign(claims(), rsa.privateKey, 'RS256', { kid: 'rsa' });
    accepted(v.verify(token));
    accepted(v.verify(token));
    accepted(v.verify(token));
    assert.equal(verifications, 1);
    assert.deepEqual(v.stats(), { verifications: 1, cacheHits: 2 });
  });

  test('a cached token stops verifying at its exp (no tolerance added), and at the cache TTL it is verified again', () => {
    let verifications = 0;
    const v = verifier({ onVerify: () => verifications++, cacheTtlMs: 60_000, clockToleranceSec: 0 });
    const token = sign(claims({ exp: NOW_SEC + 100 }), SECRET, 'HS256');
    accepted(v.verify(token));
    clock.ms += 61_000; // past the cache TTL: verified again
    accepted(v.verify(token));
    assert.equal(verifications, 2);
    clock.ms += 40_000; // now past exp (cached until min(exp, now + TTL) = exp)
    rejected(v.verify(token), 'expired');
    assert.equal(verifications, 3);
    clock.ms = NOW_SEC * 1000;
  });

  test('rejections are not cached as successes, and the cache is bounded', () => {
    let verifications = 0;
    const v = verifier({ onVerify: () => verifications++, maxCacheEntries: 2 });
    const bad = sign(claims(), 'wrong-secret-wrong-secret-wrong-secret', 'HS256', { kid: 'hs' });
    rejected(v.verify(bad), 'signature');
    rejected(v.verify(bad), 'signature');
    assert.equal(verifications, 2);
    const tokens = [1, 2, 3].map((n) => sign(claims({ jti: String(n) }), SECRET, 'HS256'));
    for (const token of tokens) accepted(v.verify(token));
    assert.equal(verifications, 5);
    accepted(v.verify(tokens[2]!)); // recent: cached
    accepted(v.verify(tokens[1]!)); // recent: cached
    assert.equal(verifications, 5);
    accepted(v.verify(tokens[0]!)); // the least recently used was dropped
    assert.equal(verifications, 6);
  });
});

describe('configuration', () => {
  test('JWKS keys need a kid and a pinned algorithm; private keys are refused', () => {
    const write = (keys: unknown[]): string => {
      const path = join(dir, `jwks-${Math.random()}.json`);
      writeFileSync(path, JSON.stringify({ keys }));
      return path;
    };
    const jwk = rsa.publicKey.export({ format: 'jwk' });
    assert.throws(() => createJwtVerifier({ keys: [{ jwksFile: write([{ ...jwk, alg: 'RS256' }]) }] }), /kid/);
    assert.throws(() => createJwtVerifier({ keys: [{ jwksFile: write([{ ...jwk, kid: 'a' }]) }] }), /alg/);
    accepted(createJwtVerifier({ keys: [{ jwksFile: write([{ ...jwk, kid: 'a' }]), algorithms: ['RS256'] }], now }).verify(sign(claims(), rsa.privateKey, 'RS256', { kid: 'a' })));
    assert.throws(() => createJwtVerifier({ keys: [{ jwksFile: write([{ ...rsa.privateKey.export({ format: 'jwk' }), kid: 'a', alg: 'RS256' }]) }] }), /private/);
    assert.throws(() => createJwtVerifier({ keys: [{ jwksFile: write([{ ...jwk, kid: 'a', alg: 'HS256' }]) }] }), JwtConfigError);
    assert.throws(() => createJwtVerifier({ keys: [{ jwksFile: join(dir, 'missing.json') }] }), JwtConfigError);
  });

  test('RSA keys under 2048 bits and duplicate kids are refused', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.throws(() => createJwtVerifier({ keys: [{ algorithms: ['RS256'], publicKey: small }] }), /2048/);
    assert.throws(() => createJwtVerifier({ keys: [{ kid: 'a', algorithms: ['HS256'], secret: SECRET }, { kid: 'a', algorithms: ['RS256'], publicKey: rsaPem }] }), /kid/);
  });
});
