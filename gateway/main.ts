/**
 * The gateway process: reads flags, environment and the config file, builds the app, serves the
 * public port (HTTP or HTTPS) and the admin port, reloads on config-file change or SIGHUP, and
 * drains on SIGTERM.
 */
import { watchFile, unwatchFile, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { errorBody, InfergateError } from '../shared/errors.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { PACKAGE_VERSION } from '../shared/version.ts';
import { buildGateway } from './app.ts';
import { ConfigError, deepFreeze, parseGatewayConfig, readConfigFile, setPath } from './config/load.ts';
import { applyReload } from './config/reload.ts';
import type { GatewayConfig } from './config/schema.ts';

export const GATEWAY_USAGE = `infergate gateway [--config <file>] [--port <p>] [--host <h>] [--admin-port <p>]
                  [--workers <url,url,...>] [--strategy <name>]
  The public endpoint: authenticates, throttles and balances inference requests across workers.
  Flags override the config file; INFERGATE_ADMIN_TOKEN, INFERGATE_WORKERS, INFERGATE_PORT and
  INFERGATE_ADMIN_PORT override both. See docs/configuration.md for every key.`;

const FLAG_PATHS: Record<string, string> = { port: 'listen.port', host: 'listen.host', 'admin-port': 'admin.port', strategy: 'balancing.strategy' };

/** Config file + environment + flags → validated, frozen config. Exported for `up` and tests. */
export async function resolveGatewayConfig(flags: Record<string, string | undefined>, env: NodeJS.ProcessEnv): Promise<GatewayConfig> {
  const raw = (flags.config !== undefined ? await readConfigFile(flags.config) : {}) as Record<string, unknown> ?? {};
  const source = flags.config ?? 'command line';
  const numeric = (v: string): number | string => (/^\d+$/.test(v) ? Number(v) : v);
  if (env.INFERGATE_PORT) setPath(raw, 'listen.port', numeric(env.INFERGATE_PORT));
  if (env.INFERGATE_ADMIN_PORT) setPath(raw, 'admin.port', numeric(env.INFERGATE_ADMIN_PORT));
  if (env.INFERGATE_WORKERS) raw.workers = env.INFERGATE_WORKERS.split(',').filter(Boolean).map((url) => ({ url: url.trim() }));
  if (env.LOG_LEVEL) raw.logLevel = env.LOG_LEVEL;
  for (const [flag, path] of Object.entries(FLAG_PATHS)) {
    const value = flags[flag];
    if (value !== undefined) setPath(raw, path, path.endsWith('port') ? numeric(value) : value);
  }
  if (flags.workers !== undefined) raw.workers = flags.workers.split(',').filter(Boolean).map((url) => ({ url: url.trim() }));
  return deepFreeze(parseGatewayConfig(raw, source));
}

export async function runGateway(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, 'admin-port': { type: 'string' },
      workers: { type: 'string' }, strategy: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(GATEWAY_USAGE);
    return 0;
  }
  const flags = values as Record<string, string | undefined>;
  let config: GatewayConfig;
  try {
    config = await resolveGatewayConfig(flags, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`infergate gateway: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ name: 'infergate-gateway', level: config.logLevel });
  const gateway = buildGateway(config, { logger, now: () => performance.now(), rng: Math.random, version: PACKAGE_VERSION, adminToken: env.INFERGATE_ADMIN_TOKEN ?? config.admin.token });
  await gateway.start();

  const serverOptions = {
    maxHeaderSize: config.limits.maxHeaderBytes,
    headersTimeout: config.timeouts.clientHeadersMs,
    requestTimeout: config.timeouts.clientRequestMs,
    keepAliveTimeout: config.timeouts.keepAliveMs,
  };
  const tls = config.listen.tlsCertFile !== undefined && config.listen.tlsKeyFile !== undefined;
  const readTls = (): { cert: Buffer; key: Buffer } => ({ cert: readFileSync(config.listen.tlsCertFile!), key: readFileSync(config.listen.tlsKeyFile!) });
  const publicServer: Server | HttpsServer = tls
    ? createHttpsServer({ ...serverOptions, ...readTls() }, gateway.handlePublic)
    : createHttpServer(serverOptions, gateway.handlePublic);
  const adminServer = createHttpServer(serverOptions, gateway.handleAdmin);
  for (const server of [publicServer, adminServer]) server.on('clientError', (err, socket) => answerClientError(err as NodeJS.ErrnoException, socket as Socket, logger));

  const publicUrl = await listen(publicServer, config.listen.port, config.listen.host, tls ? 'https' : 'http');
  const adminUrl = await listen(adminServer, config.admin.port, config.admin.host, 'http');
  logger.info({ url: publicUrl, admin: adminUrl, strategy: gateway.strategy, workers: gateway.pool.list().map((u) => u.url.origin) }, 'gateway listening');

  let current = config;
  const reload = async (why: string): Promise<void> => {
    if (flags.config === undefined) return;
    try {
      const next = await resolveGatewayConfig(flags, env);
      applyReload(gateway, current, next, logger);
      current = next;
      logger.info({ why }, 'configuration reloaded');
    } catch (err) {
      logger.error({ why, err: (err as Error).message }, 'configuration reload rejected; the running configuration stays');
    }
  };
  if (flags.config !== undefined) watchFile(flags.config, { interval: 500 }, () => void reload('config file changed'));
  process.on('SIGHUP', () => {
    if (tls && 'setSecureContext' in publicServer) {
      try {
        publicServer.setSecureContext(readTls());
        logger.info('TLS certificate reloaded');
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'TLS certificate reload failed; the old one stays');
      }
    }
    void reload('SIGHUP');
  });

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'gateway draining: no new connections, in-flight requests finish');
      if (flags.config !== undefined) unwatchFile(flags.config);
      const closed = Promise.all([publicServer, adminServer].map((s) => new Promise<void>((r) => s.close(() => r()))));
      publicServer.closeIdleConnections();
      adminServer.closeIdleConnections();
      const force = setTimeout(() => {
        publicServer.closeAllConnections();
        adminServer.closeAllConnections();
      }, config.timeouts.requestMs);
      force.unref();
      void closed.then(() => {
        clearTimeout(force);
        gateway.close();
        logger.info('gateway stopped');
        resolve();
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

async function listen(server: Server | HttpsServer, port: number, host: string, scheme: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `${scheme}://${shown}:${actual}`;
}

/** A request Node's HTTP parser refused (CL+TE smuggling, bad syntax, oversized headers): JSON error, then close. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, logger: Logger): void {
  if (!socket.writable || (err as { code?: string }).code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const error = err.code === 'HPE_HEADER_OVERFLOW'
    ? new InfergateError('ERR_HEADERS_TOO_LARGE', 'the request headers are too large')
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new InfergateError('ERR_BAD_REQUEST', 'the request took too long to arrive')
      : new InfergateError('ERR_BAD_REQUEST', 'the request is not valid HTTP/1.1');
  logger.info({ code: err.code, status: error.status }, 'refused a malformed request');
  const body = JSON.stringify(errorBody(error, undefined));
  socket.end(`HTTP/1.1 ${error.status} ${error.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

