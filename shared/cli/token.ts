/**
 * `infergate token`: mints an HS-signed JWT for local testing, with the secret the gateway verifies
 * with (see signingKey below). Prints the token alone on stdout.
 */
import { parseArgs } from 'node:util';
import jwt from 'jsonwebtoken';
import { parseDuration, UsageError } from './keys.ts';

export const TOKEN_USAGE = `infergate token --sub <subject> [--models a,b | '*'] [--ttl 1h] [--plan <name>]
                [--iss <issuer>] [--aud <audience>] [--kid <key id>]
                [--secret <s> | --config <gateway config>]
  Mints an HS256 JWT (or the configured key's HS algorithm) for local testing and prints it.
  The secret: --secret, else INFERGATE_JWT_SECRET, else the config's first HS key (auth.jwt.keys);
  with --config, that key's kid and algorithm and auth.jwt.issuer/audience are used too.`;

interface SigningKey {
  secret: string;
  algorithm: 'HS256' | 'HS384' | 'HS512';
  kid?: string;
  issuer?: string;
  audience?: string;
  maxLifetimeSec?: number;
}

export async function runToken(argv: string[], env: NodeJS.ProcessEnv = process.env, now: () => number = Date.now): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        sub: { type: 'string' }, models: { type: 'string' }, ttl: { type: 'string' }, plan: { type: 'string' },
        iss: { type: 'string' }, aud: { type: 'string' }, kid: { type: 'string' },
        secret: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`infergate token: ${(err as Error).message}\n\n${TOKEN_USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(TOKEN_USAGE);
    return 0;
  }
  const flag = (name: string): string | undefined => values[name] as string | undefined;
  try {
    const sub = flag('sub');
    if (sub === undefined || sub === '') throw new UsageError('--sub is required');
    const ttlSec = Math.floor(parseDuration(flag('ttl') ?? '1h') / 1000);
    if (ttlSec < 1) throw new UsageError('--ttl must be at least 1s');
    const key = await signingKey(flag('secret'), env.INFERGATE_JWT_SECRET, flag('config'));
    if (Buffer.byteLength(key.secret) < 32) console.error('infergate token: warning: the secret is shorter than 32 bytes; the gateway refuses such HS256 keys (RFC 7518 §3.2)');
    if (key.maxLifetimeSec !== undefined && ttlSec > key.maxLifetimeSec) console.error(`infergate token: warning: --ttl exceeds auth.jwt.maxLifetimeSec (${key.maxLifetimeSec}s); the gateway will refuse this token`);
    const iat = Math.floor(now() / 1000);
    const models = flag('models')?.split(',').map((m) => m.trim()).filter(Boolean);
    const issuer = flag('iss') ?? key.issuer;
    const audience = flag('aud') ?? key.audience;
    const kid = flag('kid') ?? key.kid;
    const plan = flag('plan');
    const payload = {
      sub, iat, exp: iat + ttlSec,
      ...(models !== undefined && { models: models.includes('*') ? ['*'] : models }),
      ...(plan !== undefined && { plan }),
      ...(issuer !== undefined && { iss: issuer }),
      ...(audience !== undefined && { aud: audience }),
    };
    console.log(jwt.sign(payload, key.secret, { algorithm: key.algorithm, ...(kid !== undefined && { keyid: kid }) }));
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`infergate token: ${err.message}\n\n${TOKEN_USAGE}`);
      return 2;
    }
    console.error(`infergate token: ${(err as Error).message}`);
    return 1;
  }
}

/**
 * The secret the gateway would verify with: --secret; else INFERGATE_JWT_SECRET, which (as in
 * gateway/main.ts) replaces the secret of the config's first HS* key; else that key's secret. The
 * config also gives the key's kid and algorithm, and auth.jwt.issuer / audience.
 */
async function signingKey(flagSecret: string | undefined, envSecret: string | undefined, configPath: string | undefined): Promise<SigningKey> {
  if (flagSecret !== undefined) return { secret: flagSecret, algorithm: 'HS256' };
  const fromEnv = envSecret !== undefined && envSecret !== '' ? envSecret : undefined;
  if (configPath === undefined) {
    if (fromEnv !== undefined) return { secret: fromEnv, algorithm: 'HS256' };
    throw new UsageError('no secret: give --secret, set INFERGATE_JWT_SECRET, or --config with an HS key under auth.jwt.keys');
  }
  const { readConfigFile } = await import('../../gateway/config/load.ts');
  const config = await readConfigFile(configPath) as { auth?: { jwt?: Record<string, unknown> } } | null;
  const jwtConfig = config?.auth?.jwt ?? {};
  const keys = Array.isArray(jwtConfig.keys) ? (jwtConfig.keys as Array<Record<string, unknown>>) : [];
  const entry = keys.find((k) => Array.isArray(k.algorithms) && (k.algorithms as unknown[]).some((a) => typeof a === 'string' && a.startsWith('HS')));
  const secret = fromEnv ?? (typeof entry?.secret === 'string' ? entry.secret : undefined);
  if (secret === undefined || secret === '') throw new Error(`${configPath} has no HS key secret (auth.jwt.keys[].secret) and INFERGATE_JWT_SECRET is not set`);
  const algorithms = Array.isArray(entry?.algorithms) ? (entry.algorithms as unknown[]) : [];
  const algorithm = (['HS256', 'HS384', 'HS512'] as const).find((a) => algorithms.includes(a)) ?? 'HS256';
  const first = (value: unknown): string | undefined => (typeof value === 'string' ? value : Array.isArray(value) && typeof value[0] === 'string' ? value[0] : undefined);
  const issuer = first(jwtConfig.issuer);
  const audience = first(jwtConfig.audience);
  return {
    secret,
    algorithm,
    ...(typeof entry?.kid === 'string' && { kid: entry.kid }),
    ...(issuer !== undefined && { issuer }),
    ...(audience !== undefined && { audience }),
    ...(typeof jwtConfig.maxLifetimeSec === 'number' && { maxLifetimeSec: jwtConfig.maxLifetimeSec }),
  };
}
