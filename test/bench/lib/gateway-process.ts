/**
 * Starts `infergate gateway` for benchmarks the way a user runs it (the CLI, its default log level,
 * access log on), with its stdout going to a log file rather than to a pipe this process parses:
 * test/helpers/processes.ts keeps every log line in memory, which at thousands of requests per second
 * would put JSON parsing on the load generator's CPU. The file is opened for appending, so it can be
 * truncated between cells while the gateway keeps writing.
 *
 * Clients authenticate as in production: by default a fresh API key in a throw-away key file (the
 * embedded key store), created with `infergate keys create`; `authHeaders` carries it. Other ways
 * (`auth`): 'anonymous' (--allow-anonymous), 'jwt-hs256' / 'jwt-rs256' (a secret or an RSA key pair
 * made here, the token signed here), 'api-key+redis' (the key in Redis with a rate of its own, so
 * every request also takes one EVALSHA of the token bucket; needs `redisUrl`).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync, readFileSync, statSync, truncateSync, readSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { CLI, REPO_ROOT, waitFor } from '../../helpers/processes.ts';
import { freePort } from './ports.ts';
import { SERVER_NODE_FLAGS } from '../../../shared/cli/node-flags.ts';

export interface GatewayProcess {
  url: string;
  adminUrl: string;
  pid: number;
  child: ChildProcess;
  /** performance.now() of this process when the gateway was spawned (for profile windows). */
  spawnedAt: number;
  logFile: string;
  /** Headers that authenticate a client (the API key), {} for an anonymous gateway. */
  authHeaders: Record<string, string>;
  admin(path: string, init?: RequestInit): Promise<Response>;
  /** PUT /admin/strategy; throws unless the gateway accepted it. */
  setStrategy(name: string): Promise<void>;
  /** Current size of the log file, bytes. */
  logSize(): number;
  /** Lines of the log file between two byte offsets, and how many of them are access lines (msg "request"). */
  countLogLines(from: number, to: number): { lines: number; accessLines: number };
  /** Empties the log file (the gateway appends, so it just carries on). */
  truncateLog(): void;
  stop(graceMs?: number): Promise<void>;
}

export type GatewayAuth = 'api-key' | 'anonymous' | 'jwt-hs256' | 'jwt-rs256' | 'api-key+redis';

/** An API key's own rate for 'api-key+redis': far above anything a benchmark reaches, so nothing is refused. */
export const UNREACHABLE_RATE_PER_SEC = 1_000_000_000;

export interface GatewayStartOptions {
  workers: string[];
  strategy: string;
  /** Node flags before the CLI, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/p']. */
  nodeArgs?: readonly string[];
  /** Extra environment (the child otherwise gets this process's, minus LOG_LEVEL and INFERGATE_*). */
  env?: Record<string, string>;
  /** How clients authenticate: an API key (default, the production path), a JWT, or not at all. */
  auth?: GatewayAuth;
  /** Redis for 'api-key+redis': key store and rate-limit buckets. */
  redisUrl?: string;
  /** The 'api-key' key's own rate plan (`keys create --rate --burst`); none = not throttled. */
  keyRate?: { perSecond: number; burst: number };
  /** Merged into the gateway's config file (JSON), e.g. { throttle: { enabled: false } }. */
  config?: Record<string, unknown>;
  timeoutMs?: number;
}

/** Tries with fresh ports when another process took a chosen one first (a shared machine). */
const PORT_ATTEMPTS = 3;

export async function startGatewayProcess(options: GatewayStartOptions, attempt = 1): Promise<GatewayProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'infergate-bench-gateway-'));
  const logFile = join(dir, 'gateway.log');
  const token = randomBytes(16).toString('hex');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // The gateway's own default log level (info: one access line per request), not the caller's.
    if (k === 'LOG_LEVEL' || k === 'REDIS_URL' || k.startsWith('INFERGATE_')) continue;
    env[k] = v;
  }
  Object.assign(env, { INFERGATE_ADMIN_TOKEN: token }, options.env);
  const auth = options.auth ?? 'api-key';
  const { authHeaders, config: authConfig } = await credentials(auth, dir, env, options.redisUrl, options.keyRate);
  const configFile = join(dir, 'gateway.json');
  await writeFile(configFile, JSON.stringify({ ...options.config, ...authConfig }, null, 2));
  // Ports chosen here rather than 0 + the "gateway listening" log line, so a run with a log level that
  // hides that line (an experiment with LOG_LEVEL=warn) starts all the same.
  const port = await freePort();
  const adminPort = await freePort();
  const fd = openSync(logFile, 'a');
  const spawnedAt = performance.now();
  const command = [
    ...SERVER_NODE_FLAGS,
    ...(options.nodeArgs ?? []),
    CLI,
    'gateway',
    '--port', String(port),
    '--host', '127.0.0.1',
    '--admin-port', String(adminPort),
    '--workers', options.workers.join(','),
    '--strategy', options.strategy,
    '--config', configFile,
    ...(auth === 'anonymous' ? ['--allow-anonymous'] : []),
  ];
  const child = spawn(process.execPath, command, { cwd: REPO_ROOT, env, stdio: ['ignore', fd, 'pipe'] });
  closeSync(fd);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-16_000);
  });
  const exited = once(child, 'exit');
  const pid = child.pid;
  if (pid === undefined) throw new Error('gateway has no pid');

  const timeoutMs = options.timeoutMs ?? 30_000;
  const url = `http://127.0.0.1:${port}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const admin = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(adminUrl + path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) } });
  try {
    await waitFor(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return true;
      const body = (await (await admin('/admin/workers')).json()) as { workers: Array<{ ready: boolean }> };
      return body.workers.length === options.workers.length && body.workers.every((w) => w.ready);
    }, timeoutMs);
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('exited');
  } catch {
    child.kill('SIGKILL');
    const message = `the gateway did not start or admit its workers (exit ${child.exitCode ?? child.signalCode})\n${stderr}\n${safeRead(logFile).slice(-4000)}`;
    await rm(dir, { recursive: true, force: true });
    if (stderr.includes('EADDRINUSE') && attempt < PORT_ATTEMPTS) return startGatewayProcess(options, attempt + 1);
    throw new Error(message);
  }

  return {
    url,
    adminUrl,
    pid,
    child,
    spawnedAt,
    logFile,
    authHeaders,
    admin,
    async setStrategy(name) {
      const res = await admin('/admin/strategy', { method: 'PUT', body: JSON.stringify({ strategy: name }) });
      if (res.status !== 200) throw new Error(`PUT /admin/strategy ${name}: ${res.status} ${await res.text()}`);
    },
    logSize: () => statSync(logFile).size,
    countLogLines: (from, to) => {
      const { lines, matches } = countLines(logFile, from, to, '"msg":"request"');
      return { lines, accessLines: matches };
    },
    truncateLog: () => truncateSync(logFile, 0),
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The gateway config that makes `auth` the way clients authenticate, and the headers a client then sends. */
async function credentials(
  auth: GatewayAuth,
  dir: string,
  env: NodeJS.ProcessEnv,
  redisUrl: string | undefined,
  keyRate: GatewayStartOptions['keyRate'],
): Promise<{ authHeaders: Record<string, string>; config: Record<string, unknown> }> {
  const keysFile = join(dir, 'keys.json');
  const fileStore = { auth: { apiKeys: { file: keysFile } } };
  const createKey = async (store: string[]): Promise<Record<string, string>> => {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'keys', 'create', ...store, '--name', 'bench', '--json'], { cwd: REPO_ROOT, env });
    const key = (JSON.parse(stdout) as { key?: string }).key;
    if (typeof key !== 'string') throw new Error(`infergate keys create printed no key: ${stdout}`);
    return { authorization: `Bearer ${key}` };
  };
  const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
  switch (auth) {
    case 'anonymous':
      return { authHeaders: {}, config: fileStore };
    case 'api-key':
      return { authHeaders: await createKey(['--file', keysFile, ...(keyRate ? ['--rate', String(keyRate.perSecond), '--burst', String(keyRate.burst)] : [])]), config: fileStore };
    case 'api-key+redis': {
      if (redisUrl === undefined) throw new Error("auth 'api-key+redis' needs redisUrl");
      const rate = String(UNREACHABLE_RATE_PER_SEC);
      return { authHeaders: await createKey(['--redis', redisUrl, '--rate', rate, '--burst', rate]), config: { ...fileStore, redis: { url: redisUrl } } };
    }
    case 'jwt-hs256': {
      const secret = randomBytes(32).toString('hex');
      const token = jwt.sign({ sub: 'bench', models: ['*'] }, secret, { algorithm: 'HS256', expiresIn: '12h' });
      return { authHeaders: bearer(token), config: { auth: { apiKeys: { file: keysFile }, jwt: { keys: [{ algorithms: ['HS256'], secret }] } } } };
    }
    case 'jwt-rs256': {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const publicKeyFile = join(dir, 'jwt-public.pem');
      await writeFile(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
      const token = jwt.sign({ sub: 'bench', models: ['*'] }, privateKey, { algorithm: 'RS256', expiresIn: '12h' });
      return { authHeaders: bearer(token), config: { auth: { apiKeys: { file: keysFile }, jwt: { keys: [{ algorithms: ['RS256'], publicKeyFile }] } } } };
    }
  }
}

/** Newlines in bytes [from, to) of a file, and how many times `needle` occurs there. */
export function countLines(file: string, from: number, to: number, needle?: string): { lines: number; matches: number } {
  const length = Math.max(0, to - from);
  const buffer = Buffer.alloc(length);
  const handle = openSync(file, 'r');
  try {
    readSync(handle, buffer, 0, length, from);
  } finally {
    closeSync(handle);
  }
  let lines = 0;
  for (let i = buffer.indexOf(10); i >= 0; i = buffer.indexOf(10, i + 1)) lines++;
  let matches = 0;
  if (needle !== undefined) for (let i = buffer.indexOf(needle); i >= 0; i = buffer.indexOf(needle, i + 1)) matches++;
  return { lines, matches };
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
