/**
 * `infergate keys create|list|revoke|rotate`: API-key management against the same store the gateway
 * uses (gateway/auth/open-key-store.ts decides which: --file, --redis, or the --config file's
 * `auth.apiKeys.store`, `redis.url` / `redis.sentinel` / `redis.cluster` with `auth.apiKeys.redisKeyPrefix`,
 * or `auth.apiKeys.file`; else `.infergate/keys.json`). A new key's secret is printed once
 * and never stored; only its SHA-256 is.
 */
import { parseArgs } from 'node:util';
import type { KeyRecord, KeyStore } from '../../gateway/auth/key-store.ts';
import type { KeyStoreLocation } from '../../gateway/auth/open-key-store.ts';

export const KEYS_USAGE = `infergate keys <command> [store] [options]
  create --name <n> [--models a,b | '*'] [--rate <per-second>] [--burst <n>] [--plan <name>] [--expires <duration>] [--json]
         makes a key and prints it ONCE (models default '*': all)
  list [--json]               every key: id, name, prefix, models, plan, created, last used, status
  revoke <id> [--json]        the key stops working on every gateway within seconds
  rotate <id> [--grace <duration>] [--json]
                              a new key replaces <id>; <id> keeps working for the grace period (default 24h)
store: --file <path> | --redis <url> | --config <gateway config>
       (default: REDIS_URL when set, else .infergate/keys.json — the store the gateway uses)
       <url>: redis://host:port, redis+sentinel://host:26379,.../<master-name> or
       redis+cluster://host:port,host:port (docs/redis.md)
durations: 90s, 15m, 12h, 30d, 2w`;

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30d" → milliseconds; "0" is zero. Throws on anything else. */
export function parseDuration(text: string): number {
  if (text === '0') return 0;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (match === null) throw new UsageError(`'${text}' is not a duration (e.g. 90s, 15m, 12h, 30d, 2w)`);
  return Math.round(Number(match[1]) * UNITS_MS[match[2]!]!);
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * The key store named by --file or --redis; else the one the gateway would use with the same
 * --config and environment (REDIS_URL overrides the config's redis.url, as for the gateway).
 */
export async function storeLocationFromFlags(flags: { file?: string; redis?: string; config?: string }, env: NodeJS.ProcessEnv, cwd: string): Promise<KeyStoreLocation> {
  const { keyStoreLocation } = await import('../../gateway/auth/open-key-store.ts');
  if ([flags.file, flags.redis, flags.config].filter((f) => f !== undefined).length > 1) throw new UsageError('give one of --file, --redis, --config');
  if (flags.file !== undefined) return keyStoreLocation({ auth: { apiKeys: { file: flags.file } } }, cwd);
  if (flags.redis !== undefined) {
    const { parseRedisUrl } = await import('../redis/topology.ts');
    try {
      parseRedisUrl(flags.redis);
    } catch (err) {
      throw new UsageError(`--redis: ${(err as Error).message}`);
    }
    return { kind: 'redis', url: flags.redis };
  }
  const { overrideRedisUrl, readConfigFile } = await import('../../gateway/config/load.ts');
  const raw = (flags.config !== undefined ? (await readConfigFile(flags.config)) ?? {} : {}) as Record<string, unknown>;
  if (env.REDIS_URL) overrideRedisUrl(raw, env.REDIS_URL);
  return keyStoreLocation(raw, cwd);
}

export async function runKeys(argv: string[], env: NodeJS.ProcessEnv = process.env, now: () => number = Date.now): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        file: { type: 'string' }, redis: { type: 'string' }, config: { type: 'string' },
        name: { type: 'string' }, models: { type: 'string' }, rate: { type: 'string' }, burst: { type: 'string' },
        plan: { type: 'string' }, expires: { type: 'string' }, grace: { type: 'string' },
        json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`infergate keys: ${(err as Error).message}\n\n${KEYS_USAGE}`);
    return 2;
  }
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    console.log(KEYS_USAGE);
    return values.help ? 0 : 2;
  }
  const flag = (name: string): string | undefined => values[name] as string | undefined;
  const json = values.json === true;

  let store: KeyStore | undefined;
  try {
    const request = parseCommand(command, args, flag, now);
    const location = await storeLocationFromFlags({ file: flag('file'), redis: flag('redis'), config: flag('config') }, env, process.cwd());
    const { openKeyStore } = await import('../../gateway/auth/open-key-store.ts');
    // One-shot use: no file watching, and last-used times are never touched from here.
    store = await openKeyStore(location, { watchIntervalMs: false, connectTimeoutMs: 3000, commandTimeoutMs: 1000, now });
    return await request(store, json, location);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`infergate keys: ${err.message}\n\n${KEYS_USAGE}`);
      return 2;
    }
    console.error(`infergate keys: ${(err as Error).message}`);
    return 1;
  } finally {
    await store?.close();
  }
}

type Request = (store: KeyStore, json: boolean, location: KeyStoreLocation) => Promise<number>;

function parseCommand(command: string, args: string[], flag: (name: string) => string | undefined, now: () => number): Request {
  const id = (): string => {
    if (args.length !== 1) throw new UsageError(`keys ${command} takes one key id`);
    return args[0]!;
  };
  const noArgs = (): void => {
    if (args.length > 0) throw new UsageError(`keys ${command} takes no arguments (got ${args.join(' ')})`);
  };
  switch (command) {
    case 'create': {
      noArgs();
      const name = flag('name');
      if (name === undefined || name.trim() === '') throw new UsageError('keys create needs --name');
      const models = parseModels(flag('models') ?? '*');
      const rate = flag('rate') === undefined ? undefined : Number(flag('rate'));
      const burst = flag('burst') === undefined ? undefined : Number(flag('burst'));
      if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) throw new UsageError('--rate must be a positive number (requests per second)');
      if (burst !== undefined && !(Number.isInteger(burst) && burst >= 1)) throw new UsageError('--burst must be a whole number ≥ 1');
      if (burst !== undefined && rate === undefined) throw new UsageError('--burst needs --rate');
      const expires = flag('expires');
      const expiresAt = expires === undefined ? undefined : now() + parseDuration(expires);
      const plan = flag('plan');
      return async (store, json) => {
        const { record, key } = await store.create({
          name, models, ...(rate !== undefined && { ratePerSec: rate }), ...(burst !== undefined && { burst }),
          ...(plan !== undefined && { plan }), ...(expiresAt !== undefined && { expiresAt }),
        });
        if (json) console.log(JSON.stringify({ key, record: publicRecord(record) }, null, 2));
        else printNewKey('created', record, key);
        return 0;
      };
    }
    case 'list':
      noArgs();
      return async (store, json, location) => {
        const records = await store.list();
        if (json) {
          console.log(JSON.stringify(records.map(publicRecord), null, 2));
          return 0;
        }
        if (records.length === 0) {
          console.log(`no keys in ${location.kind === 'file' ? location.path : 'Redis'}`);
          return 0;
        }
        const at = now();
        const rows = records.map((r) => [r.id, r.name, `${r.displayPrefix}…`, r.models === '*' ? '*' : r.models.join(','), planOf(r), iso(r.createdAt), iso(r.lastUsedAt), statusOf(r, at)]);
        printTable(['ID', 'NAME', 'PREFIX', 'MODELS', 'PLAN', 'CREATED', 'LAST USED', 'STATUS'], rows);
        return 0;
      };
    case 'revoke': {
      const keyId = id();
      return async (store, json) => {
        const record = await store.revoke(keyId);
        if (record === undefined) {
          console.error(`infergate keys: no key with id ${keyId}`);
          return 1;
        }
        if (json) console.log(JSON.stringify(publicRecord(record), null, 2));
        else console.log(`revoked key ${record.id} "${record.name}" at ${iso(record.revokedAt)}`);
        return 0;
      };
    }
    case 'rotate': {
      const keyId = id();
      const graceMs = parseDuration(flag('grace') ?? '24h');
      return async (store, json) => {
        const rotated = await store.rotate(keyId, graceMs);
        if (rotated === undefined) {
          console.error(`infergate keys: no key with id ${keyId}`);
          return 1;
        }
        if (json) {
          console.log(JSON.stringify({ key: rotated.key, record: publicRecord(rotated.record), replaces: keyId, oldKeyValidUntil: now() + graceMs }, null, 2));
        } else {
          printNewKey('rotated', rotated.record, rotated.key);
          console.log(`the old key ${keyId} stays valid until ${iso(now() + graceMs)}`);
        }
        return 0;
      };
    }
    default:
      throw new UsageError(`unknown keys command '${command}'`);
  }
}

function parseModels(text: string): readonly string[] | '*' {
  const models = text.split(',').map((m) => m.trim()).filter(Boolean);
  if (models.length === 0) throw new UsageError("--models needs model names (a,b) or '*'");
  return models.includes('*') ? '*' : models;
}

/** A record as shown: the digest is not secret, but nobody reading a list needs it. */
function publicRecord(record: KeyRecord): Omit<KeyRecord, 'digest'> {
  const { digest: _digest, ...rest } = record;
  return rest;
}

function printNewKey(verb: string, record: KeyRecord, key: string): void {
  const details = [
    `models ${record.models === '*' ? '* (all)' : record.models.join(', ')}`,
    `plan ${planOf(record)}`,
    ...(record.expiresAt !== undefined ? [`expires ${iso(record.expiresAt)}`] : []),
  ];
  console.log(`${verb} key ${record.id} "${record.name}" (${details.join('; ')})\n\n  ${key}\n\nThis is the only time the key is shown: store it now. Send it as "Authorization: Bearer <key>" or "X-API-Key: <key>".`);
}

function planOf(record: KeyRecord): string {
  if (record.ratePerSec !== undefined) return `${record.ratePerSec}/s burst ${record.burst ?? Math.max(1, Math.ceil(record.ratePerSec))}`;
  return record.plan ?? 'default';
}

function statusOf(record: KeyRecord, now: number): string {
  if (record.revokedAt !== undefined && record.revokedAt <= now) return 'revoked';
  if (record.expiresAt !== undefined && record.expiresAt <= now) return 'expired';
  if (record.graceUntil !== undefined) return record.graceUntil <= now ? `rotated (${record.replacedBy ?? '?'})` : `rotating until ${iso(record.graceUntil)}`;
  return record.expiresAt !== undefined ? `active until ${iso(record.expiresAt)}` : 'active';
}

function iso(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}
