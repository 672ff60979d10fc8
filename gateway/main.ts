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
import { answerClientError, refuseExpectation } from '../shared/http/client-error.ts';
import { gracefulCloser } from '../shared/http/graceful-close.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { PACKAGE_VERSION } from '../shared/version.ts';
import { buildGateway } from './app.ts';
import { describeTopology, topologyOf, type RedisTopology } from '../shared/redis/topology.ts';
import { ConfigError, deepFreeze, overrideRedisUrl, parseGatewayConfig, readConfigFile, setPath } from './config/load.ts';
import { applyReload } from './config/reload.ts';
import { applySecurityHeaders } from './routes/browser-headers.ts';
import { startDiscovery, type RunningDiscovery } from './upstreams/discovery/start-discovery.ts';
import { startStrategyBroadcast, type StrategyBroadcast } from './config/strategy-broadcast.ts';
import { inProcessGroup, leaveProcessGroup, onSiblingStrategy, tellPrimary } from './processes/messages.ts';
import { runGatewayPrimary } from './processes/primary.ts';
import type { KeyStore } from './auth/key-store.ts';
import { keyStoreLocation, openKeyStore, type KeyStoreLocation } from './auth/open-key-store.ts';
import { DEFAULT_REDIS_KEY_PREFIX } from './auth/redis-key-store.ts';
import { FailoverLimiter } from './throttle/failover-limiter.ts';
import type { RateLimiter } from './throttle/limiter.ts';
import { MemoryLimiter } from './throttle/memory-limiter.ts';
import { RedisLimiter } from './throttle/redis-limiter.ts';
import type { GatewayConfig } from './config/schema.ts';

export const GATEWAY_USAGE = `infergate gateway [--config <file>] [--port <p>] [--host <h>] [--admin-port <p>]
                  [--workers <url,url,...>] [--strategy <name>] [--redis <url>] [--processes <n>] [--allow-anonymous]
  The public endpoint: authenticates, throttles and balances inference requests across workers.
  --redis: redis://host:port, redis+sentinel://host:26379,.../<master-name> or
  redis+cluster://host:port,host:port (docs/redis.md). --processes: n gateway processes sharing
  the ports (node:cluster; default 1); limits stay exact across them only with Redis.
  Flags override the environment (INFERGATE_ADMIN_TOKEN, INFERGATE_WORKERS, INFERGATE_PORT,
  INFERGATE_ADMIN_PORT, INFERGATE_JWT_SECRET, REDIS_URL), which overrides the config file.
  --allow-anonymous serves requests without credentials (local trials). See docs/configuration.md.`;

const FLAG_PATHS: Record<string, string> = { port: 'listen.port', host: 'listen.host', 'admin-port': 'admin.port', strategy: 'balancing.strategy', processes: 'processes' };

/** Config file + environment + flags → validated, frozen config. Exported for `up` and tests. */
export async function resolveGatewayConfig(flags: Record<string, string | undefined>, env: NodeJS.ProcessEnv): Promise<GatewayConfig> {
  const raw = (flags.config !== undefined ? await readConfigFile(flags.config) : {}) as Record<string, unknown> ?? {};
  const source = flags.config ?? 'command line';
  const numeric = (v: string): number | string => (/^\d+$/.test(v) ? Number(v) : v);
  if (env.INFERGATE_PORT) setPath(raw, 'listen.port', numeric(env.INFERGATE_PORT));
  if (env.INFERGATE_ADMIN_PORT) setPath(raw, 'admin.port', numeric(env.INFERGATE_ADMIN_PORT));
  if (env.INFERGATE_WORKERS) raw.workers = env.INFERGATE_WORKERS.split(',').filter(Boolean).map((url) => ({ url: url.trim() }));
  if (env.LOG_LEVEL) raw.logLevel = env.LOG_LEVEL;
  if (env.REDIS_URL) overrideRedisUrl(raw, env.REDIS_URL);
  // Through the schema like the file's token, so a short one is refused the same way.
  if (env.INFERGATE_ADMIN_TOKEN) setPath(raw, 'admin.token', env.INFERGATE_ADMIN_TOKEN);
  if (env.INFERGATE_JWT_SECRET) applyJwtSecret(raw, env.INFERGATE_JWT_SECRET);
  if (flags.redis !== undefined) overrideRedisUrl(raw, flags.redis);
  if (flags['allow-anonymous'] !== undefined) setPath(raw, 'auth.anonymous.enabled', true);
  for (const [flag, path] of Object.entries(FLAG_PATHS)) {
    const value = flags[flag];
    if (value !== undefined) setPath(raw, path, path.endsWith('port') || path === 'processes' ? numeric(value) : value);
  }
  if (flags.workers !== undefined) raw.workers = flags.workers.split(',').filter(Boolean).map((url) => ({ url: url.trim() }));
  return deepFreeze(parseGatewayConfig(raw, source));
}

/** INFERGATE_JWT_SECRET: the secret of the configured HS* key, or a new HS256 key when there is none. */
function applyJwtSecret(raw: Record<string, unknown>, secret: string): void {
  const auth = (raw.auth ??= {}) as Record<string, unknown>;
  const jwt = (auth.jwt ??= {}) as Record<string, unknown>;
  const keys = (Array.isArray(jwt.keys) ? jwt.keys : []) as Array<Record<string, unknown>>;
  const hmac = keys.find((k) => Array.isArray(k.algorithms) && (k.algorithms as string[]).some((a) => a.startsWith('HS')));
  if (hmac !== undefined) hmac.secret = secret;
  else keys.push({ algorithms: ['HS256'], secret });
  jwt.keys = keys;
}

/** The real URLs a gateway listens on: with port 0 in the config, only known once it listens. */
export interface GatewayUrls {
  url: string;
  admin: string;
}

/** For a program that runs the gateway in its own process (`infergate up`). */
export interface GatewayHooks {
  /** Called once the public and admin ports listen (every process's, with --processes). */
  onListening?(urls: GatewayUrls): void;
}

export async function runGateway(argv: string[], env: NodeJS.ProcessEnv = process.env, hooks: GatewayHooks = {}): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, 'admin-port': { type: 'string' },
      workers: { type: 'string' }, strategy: { type: 'string' }, redis: { type: 'string' }, processes: { type: 'string' }, 'allow-anonymous': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(GATEWAY_USAGE);
    return 0;
  }
  const { help: _help, ...stringFlags } = values;
  const flags: Record<string, string | undefined> = { ...stringFlags, 'allow-anonymous': values['allow-anonymous'] ? 'yes' : undefined };
  // A SIGHUP before this process can reload (an operator's, or one its primary passes on to a
  // process still starting) would end it: node's default. Remembered instead, and acted on once
  // the reload handler is in place.
  let hupWhileStarting = false;
  const holdHup = (): void => {
    hupWhileStarting = true;
  };
  process.on('SIGHUP', holdHup);
  let config: GatewayConfig;
  try {
    config = await resolveGatewayConfig(flags, env);
  } catch (err) {
    process.off('SIGHUP', holdHup);
    if (err instanceof ConfigError) {
      console.error(`infergate gateway: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ name: 'infergate-gateway', level: config.logLevel });
  const redis = topologyOf(config.redis);
  if (config.processes > 1 && !inProcessGroup()) {
    warnAboutPerProcessState(config, redis, logger);
    process.off('SIGHUP', holdHup); // the primary passes SIGHUP on to its processes
    return runGatewayPrimary({ count: config.processes, argv, env, logger, ...(hooks.onListening !== undefined && { onListening: hooks.onListening }) });
  }
  const shared = await openSharedState(config, redis, logger);
  let broadcast: StrategyBroadcast | undefined;
  const gateway = buildGateway(config, {
    strategyChangedByAdmin: (strategy) => {
      // Redis reaches every replica and sibling process; without it, the primary relays to siblings.
      // The primary hears of it either way, for processes it starts later.
      tellPrimary({ type: 'infergate:strategy', strategy, relay: broadcast === undefined });
      broadcast?.publish(strategy).catch((err: Error) => logger.warn({ err: err.message }, 'strategy change not broadcast to the other replicas'));
    },
    logger,
    now: () => performance.now(),
    rng: Math.random,
    version: PACKAGE_VERSION,
    adminToken: config.admin.token,
    ...(shared.keyStore !== undefined && { keyStore: shared.keyStore }),
    ...(shared.limiter !== undefined && { limiter: shared.limiter }),
  });
  shared.onFallback = () => gateway.metrics.rateLimitFallbacks.inc();
  await gateway.start(); // static workers first: discovery never removes what config lists
  let discovery: RunningDiscovery;
  try {
    discovery = await startDiscovery(config.discovery, { pool: gateway.pool, redisUrl: redis, logger });
  } catch (err) {
    console.error(`infergate gateway: ${(err as Error).message}`);
    gateway.close();
    await shared.close();
    process.off('SIGHUP', holdHup);
    return 2;
  }
  await gateway.pool.checkAll(); // so the first requests also find discovered workers
  const applyStrategyFrom = (who: string) => (strategy: string): void => {
    try {
      gateway.setStrategy(strategy, who);
    } catch (err) {
      logger.warn({ strategy, err: (err as Error).message }, 'ignored a broadcast strategy this gateway does not know');
    }
  };
  if (redis !== undefined) broadcast = await startStrategyBroadcast(redis, config.redis.namespace, applyStrategyFrom('another replica'), logger);
  const stopFollowingSiblings = inProcessGroup() ? onSiblingStrategy(applyStrategyFrom('a sibling process')) : () => undefined;

  const serverOptions = {
    maxHeaderSize: config.limits.maxHeaderBytes,
    headersTimeout: config.timeouts.clientHeadersMs,
    requestTimeout: config.timeouts.clientRequestMs,
    keepAliveTimeout: config.timeouts.keepAliveMs,
    // Node checks those two timeouts only every connectionsCheckingInterval (30 s by default): a
    // slowloris would outlive clientHeadersMs by up to that much.
    connectionsCheckingInterval: Math.min(1000, config.timeouts.clientHeadersMs),
  };
  const tls = config.listen.tlsCertFile !== undefined && config.listen.tlsKeyFile !== undefined;
  const readTls = (): { cert: Buffer; key: Buffer } => ({ cert: readFileSync(config.listen.tlsCertFile!), key: readFileSync(config.listen.tlsKeyFile!) });
  const publicServer: Server | HttpsServer = tls
    ? createHttpsServer({ ...serverOptions, ...readTls() }, gateway.handlePublic)
    : createHttpServer(serverOptions, gateway.handlePublic);
  const adminServer = createHttpServer(serverOptions, gateway.handleAdmin);
  // In-flight answers say `Connection: close` once a drain starts (shared/http/graceful-close.ts).
  const closer = gracefulCloser([publicServer, adminServer]);
  for (const server of [publicServer, adminServer]) {
    server.on('clientError', (err, socket) => answerClientError(err as NodeJS.ErrnoException, socket as Socket, logger));
    server.on('checkExpectation', (req, res) => {
      applySecurityHeaders(res);
      refuseExpectation(req, res, logger);
    });
  }

  const publicUrl = await listen(publicServer, config.listen.port, config.listen.host, tls ? 'https' : 'http');
  const adminUrl = await listen(adminServer, config.admin.port, config.admin.host, 'http');
  logger.info({ url: publicUrl, admin: adminUrl, strategy: gateway.strategy, workers: gateway.pool.list().map((u) => u.url.origin) }, 'gateway listening');
  tellPrimary({ type: 'infergate:listening', url: publicUrl, admin: adminUrl });
  hooks.onListening?.({ url: publicUrl, admin: adminUrl });

  let current = config;
  const reload = async (why: string): Promise<void> => {
    if (flags.config === undefined) return;
    try {
      const next = await resolveGatewayConfig(flags, env);
      current = applyReload(gateway, current, next, logger);
      logger.info({ why }, 'configuration reloaded');
    } catch (err) {
      logger.error({ why, err: (err as Error).message }, 'configuration reload rejected; the running configuration stays');
    }
  };
  if (flags.config !== undefined) watchFile(flags.config, { interval: 500 }, () => void reload('config file changed'));
  const onHup = (): void => {
    if (tls && 'setSecureContext' in publicServer) {
      try {
        publicServer.setSecureContext(readTls());
        logger.info('TLS certificate reloaded');
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'TLS certificate reload failed; the old one stays');
      }
    }
    void reload('SIGHUP');
  };
  // On before off: with no listener at all, even for a moment, a SIGHUP would end the process.
  process.on('SIGHUP', onHup);
  process.off('SIGHUP', holdHup);
  if (hupWhileStarting) onHup();

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, drainMs: config.timeouts.drainMs }, 'gateway draining: no new connections, in-flight requests finish');
      if (flags.config !== undefined) unwatchFile(flags.config);
      stopFollowingSiblings();
      const closed = closer.close(config.timeouts.drainMs, () => logger.warn({ drainMs: config.timeouts.drainMs }, 'drain timeout: closing the connections still open'));
      void closed.then(async () => {
        await discovery.stop();
        await broadcast?.close();
        gateway.close();
        await shared.close();
        logger.info('gateway stopped');
        leaveProcessGroup();
        resolve();
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

/** Logged by the primary of `--processes <n>`: what is per process rather than shared. */
function warnAboutPerProcessState(config: GatewayConfig, redis: RedisTopology | undefined, logger: Logger): void {
  if (redis === undefined && config.throttle.enabled) {
    logger.warn({ processes: config.processes }, `rate-limit buckets are in memory, one set per process: a principal gets up to ${config.processes} times its plan. Configure Redis for exact limits`);
  }
  if (['least-connections', 'peak-ewma'].includes(config.balancing.strategy)) {
    logger.info({ strategy: config.balancing.strategy }, 'in-flight counts are per process: each process balances on its own share of the load (p2c copes best)');
  }
}

interface SharedState {
  keyStore: KeyStore | undefined;
  limiter: RateLimiter | undefined;
  onFallback: () => void;
  close(): Promise<void>;
}

/**
 * The key store and rate limiter: in Redis when one is configured (shared by every replica), else
 * embedded — keys in a local file, buckets in memory — which is logged, so nobody runs several
 * replicas on embedded state by mistake. The key store is found exactly as `infergate keys --config`
 * finds it (auth.apiKeys.store, auth.apiKeys.redisKeyPrefix), so a key the CLI makes is one this accepts.
 */
async function openSharedState(config: GatewayConfig, redis: RedisTopology | undefined, logger: Logger): Promise<SharedState> {
  const state: SharedState = { keyStore: undefined, limiter: undefined, onFallback: () => undefined, close: async () => undefined };
  let keys: KeyStoreLocation | undefined;
  if (config.auth.apiKeys.enabled) {
    keys = keyStoreLocation(config, process.cwd());
    if (keys.kind === 'file' && redis !== undefined) {
      logger.warn({ keys: keys.path }, "auth.apiKeys.store is 'file' although Redis is configured: every replica has its own keys");
    }
    state.keyStore = await openKeyStore(keys, {
      onError: (err: Error) => logger.warn({ err: err.message }, 'API-key store problem'),
    });
  }
  let redisLimiter: RedisLimiter | undefined;
  if (config.throttle.enabled) {
    if (redis === undefined) {
      state.limiter = new MemoryLimiter();
    } else {
      redisLimiter = new RedisLimiter({ url: redis, deadlineMs: config.redis.decisionDeadlineMs, leaseMs: config.throttle.leaseMs, onConnectionError: (err) => logger.debug({ err: err.message }, 'rate-limit Redis connection error') });
      state.limiter = new FailoverLimiter(redisLimiter, {
        policy: config.throttle.onStoreFailure,
        onFallback: () => state.onFallback(),
        onStateChange: (change, err) => {
          if (change === 'degraded') logger.error({ err: err?.message, policy: config.throttle.onStoreFailure }, 'rate-limit store unavailable: deciding locally (fail open) or refusing (fail closed)');
          else logger.info('rate-limit store answering again: shared limiting resumed');
        },
      });
    }
  }
  const keysAt = keys === undefined ? 'disabled' : keys.kind === 'file' ? keys.path : `redis ${keys.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX}*`;
  logger.info(redis === undefined
    ? { keys: keysAt, buckets: 'memory' }
    : { redis: describeTopology(redis), keys: keysAt, onStoreFailure: config.throttle.onStoreFailure }, redis === undefined ? 'embedded state: API keys in a local file, rate-limit buckets in memory (one replica only)' : 'shared state in Redis');
  state.close = async () => {
    await state.keyStore?.close();
    await redisLimiter?.close();
  };
  return state;
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


