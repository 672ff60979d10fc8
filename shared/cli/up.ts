/**
 * `infergate up` (what `npm start` runs): one gateway in this process and N local workers as
 * supervised child processes serving the demo models (or --models). Embedded defaults: no Redis
 * needed. Once the gateway listens, prints its real URLs (the web UI's playground and dashboard
 * too), the admin token, a freshly created API key and a ready-to-paste curl; Ctrl-C drains and
 * stops everything.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { keyStoreLocation, openKeyStore } from '../../gateway/auth/open-key-store.ts';
import { overrideRedisUrl, readConfigFile } from '../../gateway/config/load.ts';
import { runGateway, type GatewayUrls } from '../../gateway/main.ts';
import { WorkerSupervisor } from './supervisor.ts';

export const UP_USAGE = `infergate up [--port 8080] [--admin-port 8081] [--workers <n>] [--models <dir>] [--config <file>] [--host 127.0.0.1]
            [--redis <url>] [--gateway-processes <n>]
  A gateway and <n> local workers (default: one per CPU core, at least 2) serving <dir> (default: the demo models).
  --redis shares keys and buckets through Redis (any form of docs/redis.md); --gateway-processes runs
  the gateway as n processes on the same ports (infergate gateway --processes).`;

/** Creates an API key in the store the gateway will use (the local key file, or Redis). */
async function createLocalKey(configPath: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  const raw = ((configPath === undefined ? {} : await readConfigFile(configPath)) ?? {}) as Record<string, unknown>;
  if (env.REDIS_URL) overrideRedisUrl(raw, env.REDIS_URL);
  const store = await openKeyStore(keyStoreLocation(raw, process.cwd()));
  try {
    return (await store.create({ name: `infergate up ${new Date().toISOString()}`, models: '*' })).key;
  } finally {
    await store.close();
  }
}

interface Welcome {
  gateway: GatewayUrls;
  workers: readonly string[];
  adminToken: string;
  apiKey: string;
}

/** For people, not logs: the key and the admin token are shown once, here, and never logged. */
function welcome({ gateway, workers, adminToken, apiKey }: Welcome): string {
  return [
    '',
    `infergate is up: gateway ${gateway.url} in front of ${workers.length} worker${workers.length === 1 ? '' : 's'} (${workers.join(', ')})`,
    `playground (web UI): ${gateway.url}/ui/`,
    `admin API: ${gateway.admin}  token: ${adminToken}`,
    `dashboard: ${gateway.admin}/ui/dashboard.html  (it asks for the admin token above)`,
    `a fresh API key for you: ${apiKey}`,
    'try:',
    `  curl -s ${gateway.url}/v2/models/iris/infer -H 'Authorization: Bearer ${apiKey}' \\`,
    `    -H 'content-type: application/json' -d '{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}'`,
    '',
  ].join('\n');
}

export async function runUp(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8080' }, 'admin-port': { type: 'string', default: '8081' }, host: { type: 'string', default: '127.0.0.1' },
      workers: { type: 'string' }, models: { type: 'string' }, config: { type: 'string' }, redis: { type: 'string' },
      'gateway-processes': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(UP_USAGE);
    return 0;
  }
  const count = values.workers === undefined ? Math.max(2, availableParallelism()) : Number(values.workers);
  if (!Number.isInteger(count) || count < 1 || count > 64) {
    console.error('infergate up: --workers must be a whole number from 1 to 64');
    return 2;
  }
  const models = resolve(values.models ?? fileURLToPath(new URL('../../models/', import.meta.url)));
  const log = (fields: Record<string, unknown>, msg: string): void => console.log(JSON.stringify({ name: 'infergate-up', ...fields, msg }));
  const supervisor = new WorkerSupervisor({ count, modelsDir: models, host: '127.0.0.1', log });
  const urls = await supervisor.start();

  const adminToken = env.INFERGATE_ADMIN_TOKEN ?? randomBytes(18).toString('base64url');
  const apiKey = await createLocalKey(values.config, values.redis === undefined ? env : { ...env, REDIS_URL: values.redis });
  const gatewayArgs = [
    '--port', values.port!, '--admin-port', values['admin-port']!, '--host', values.host!, '--workers', urls.join(','),
    ...(values.config ? ['--config', values.config] : []),
    ...(values.redis ? ['--redis', values.redis] : []),
    ...(values['gateway-processes'] ? ['--processes', values['gateway-processes']] : []),
  ];
  // The gateway's own handlers drain it; the workers are told to stop after it (and not restarted
  // if the signal reached them first, as Ctrl-C does for the whole process group).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => supervisor.stopping());
  const code = await runGateway(gatewayArgs, { ...env, INFERGATE_ADMIN_TOKEN: adminToken }, {
    // Printed once the gateway listens, so the URLs carry the real ports (--port 0 included).
    onListening: (gateway) => process.stdout.write(welcome({
      gateway,
      workers: urls,
      adminToken: env.INFERGATE_ADMIN_TOKEN ? '(from INFERGATE_ADMIN_TOKEN)' : adminToken,
      apiKey,
    })),
  });
  await supervisor.stop();
  return code;
}
