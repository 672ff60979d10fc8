/**
 * Builds the gateway: pool + strategy + inference pipeline + public and admin routes. Never listens
 * and never reads the environment: gateway/main.ts does both; tests build their own.
 *
 * @example
 *   const gateway = buildGateway(config, { logger, now: () => performance.now(), rng: Math.random });
 *   await gateway.start();
 *   http.createServer(gateway.handlePublic).listen(config.listen.port);
 *   http.createServer(gateway.handleAdmin).listen(config.admin.port, config.admin.host);
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { InfergateError, toInfergateError } from '../shared/errors.ts';
import { sendError } from '../shared/http/respond.ts';
import { accessLoggerOf, type Logger } from '../shared/logger.ts';
import { HEADER_REQUEST_ID } from '../shared/protocol/headers.ts';
import { adminRouter } from './admin/admin-app.ts';
import { adminTokenChecker } from './admin/admin-auth.ts';
import { poolSnapshot } from './admin/pool-snapshot.ts';
import { PoolStats } from './admin/pool-stats.ts';
import { PoolStream } from './admin/pool-stream.ts';
import { createJwtVerifier, type AsymmetricAlgorithm, type HmacAlgorithm, type JwtKeyConfig } from './auth/jwt-verifier.ts';
import { KeyStoreUnavailableError, type KeyStore } from './auth/key-store.ts';
import { createApiKeyVerifier } from './auth/key-verifier.ts';
import { authenticateStage, authorizeStage } from './pipeline/authenticate.ts';
import { throttleStage } from './pipeline/throttle.ts';
import type { RateLimiter } from './throttle/limiter.ts';
import { createStrategy } from './balancing/registry.ts';
import type { BalancingStrategy } from './balancing/strategy.ts';
import type { GatewayConfig } from './config/schema.ts';
import { createGatewayMetrics, UNKNOWN_MODEL_LABEL, type GatewayMetrics } from './metrics.ts';
import type { RequestContext } from './pipeline/context.ts';
import { createForwarder } from './pipeline/forward.ts';
import { allowedInferenceMethods, matchInferenceRoute, originFormOf } from './pipeline/inference-route.ts';
import { buildInferencePipeline, type Stage } from './pipeline/pipeline.ts';
import { requestIdOf } from './pipeline/request-id.ts';
import { RetryBudget } from './pipeline/retry-budget.ts';
import { createSelector } from './pipeline/select-upstream.ts';
import { applyCors, applySecurityHeaders } from './routes/browser-headers.ts';
import { callerAuth } from './routes/caller-auth.ts';
import { methodNotAllowed } from './routes/method-not-allowed.ts';
import { publicRoutes } from './routes/public-routes.ts';
import { Pool } from './upstreams/pool.ts';
import { openApiDocument } from './web/openapi.ts';
import { DEFAULT_WEB_ROOT, webRoutes } from './web/web-routes.ts';

export interface GatewayDeps {
  logger: Logger;
  now: () => number;
  rng: () => number;
  /** API-key store (file or Redis), opened by main.ts; required when auth.apiKeys.enabled. */
  keyStore?: KeyStore;
  /** Rate limiter (memory, or Redis with failover), made by main.ts; required when throttling. */
  limiter?: RateLimiter;
  version?: string;
  /** Called after the admin API changed the strategy, to tell the other replicas (main.ts: Redis pub/sub). */
  strategyChangedByAdmin?: (strategy: string) => void;
  /** Admin token (config admin.token, which INFERGATE_ADMIN_TOKEN overrides in main.ts). */
  adminToken?: string | undefined;
  /** The web application's directory (default gateway/web/public/). */
  webRoot?: string;
  /** Wall-clock epoch milliseconds, for the pool dashboard's timestamps (default Date.now). */
  wallClock?: () => number;
}

export interface Gateway {
  handlePublic(req: IncomingMessage, res: ServerResponse): void;
  handleAdmin(req: IncomingMessage, res: ServerResponse): void;
  pool: Pool;
  metrics: GatewayMetrics;
  /** Rolling request figures per worker, for the pool dashboard. */
  poolStats: PoolStats;
  /** The dashboard's event streams (open count, for tests and the metrics). */
  poolStream: PoolStream;
  /** The express apps behind handlePublic (inference paths excepted) and handleAdmin, for route introspection. */
  apps: { public: express.Express; admin: express.Express };
  readonly strategy: string;
  /** The configuration in force: the boot one until a reload replaces it. */
  readonly config: GatewayConfig;
  /** Records a reloaded configuration as the one in force (what the admin API shows). */
  setEffectiveConfig(next: GatewayConfig): void;
  /** Swaps the balancing strategy atomically; in-flight counts live in the pool and are untouched. */
  setStrategy(name: string, source: string): void;
  /** Adds the configured workers and checks each once, so the first requests find them. */
  start(): Promise<void>;
  close(): void;
}

export function buildGateway(config: GatewayConfig, deps: GatewayDeps): Gateway {
  const { logger, now, rng } = deps;
  const pool = new Pool(config, {
    logger,
    now,
    events: {
      breakerTransition: (u, state) => metrics.breakerTransitions.inc({ worker: u.id, state }),
      admissionWait: (outcome, waitedMs) => metrics.queueWait.observe({ outcome }, waitedMs / 1000),
    },
  });
  const strategyOptions = { defaultLatencyMs: config.balancing.defaultLatencyMs };
  let strategy: BalancingStrategy = createStrategy(config.balancing.strategy, strategyOptions);
  const metrics = createGatewayMetrics(pool, () => strategy.name);

  const select = createSelector({
    pool,
    strategy: () => strategy,
    pickContext: { rng, now },
    queueWaitMs: config.limits.queueWaitMs,
    onDecision: (ctx, chosen, candidates) => {
      if (logger.isLevelEnabled('debug')) logger.debug({ request_id: ctx.requestId, model: ctx.route.model, worker: chosen.id, candidates, strategy: strategy.name, inFlight: chosen.inFlight, latencyMs: chosen.latencyMs }, 'balancing decision');
    },
    onRefusal: (_ctx, reason) => metrics.admissionRefusals.inc({ reason }),
  });
  const forwarder = createForwarder({
    select,
    budget: new RetryBudget({ ratio: config.retry.budgetRatio, minPerSecond: config.retry.minRetriesPerSecond }),
    now,
    connectTimeoutMs: config.timeouts.connectMs,
    onRetry: (ctx, reason) => {
      metrics.retries.inc({ reason });
      logger.info({ request_id: ctx.requestId, worker: ctx.upstream?.id, reason }, 'retrying on another worker');
    },
    onUpstreamResponse: (_ctx, upstream, _status, ms) => metrics.recordUpstream(upstream.id, ms / 1000),
  });
  const apiKeys = config.auth.apiKeys.enabled && deps.keyStore !== undefined
    ? createApiKeyVerifier(deps.keyStore, { cacheTtlMs: config.auth.apiKeys.cacheTtlMs })
    : undefined;
  const jwt = config.auth.jwt.keys.length === 0 ? undefined : createJwtVerifier({
    keys: config.auth.jwt.keys.map(toJwtKeyConfig),
    ...(config.auth.jwt.issuer !== undefined && { issuer: config.auth.jwt.issuer }),
    ...(config.auth.jwt.audience !== undefined && { audience: config.auth.jwt.audience }),
    maxLifetimeSec: config.auth.jwt.maxLifetimeSec,
    clockToleranceSec: config.auth.jwt.clockToleranceSec,
    modelsClaim: config.auth.jwt.modelsClaim,
    planClaim: config.auth.jwt.planClaim,
  });
  if (config.throttle.enabled && deps.limiter === undefined) throw new Error('throttling is enabled but no rate limiter was given');
  const authenticate = authenticateStage(config.auth, { apiKeys, jwt });
  const throttleWith = (options: GatewayConfig['throttle']): Stage | undefined => (config.throttle.enabled
    ? throttleStage(options, { limiter: deps.limiter!, logger, bodyLimitBytes: config.limits.bodyBytes, namespace: config.redis.namespace })
    : undefined);
  const authorize = authorizeStage();
  const adminToken = deps.adminToken ?? config.admin.token;
  const poolStats = new PoolStats({ now });
  const accessLog = accessLoggerOf(logger);
  // The model label of a request's metrics: a name no worker serves is any string a client made
  // up, and one label set per made-up name would grow the registry without bound.
  const modelLabel = (ctx: RequestContext): string =>
    ctx.upstream !== undefined || pool.knowledgeOf(ctx.route.model, undefined) !== 'unknown-model' ? ctx.route.model : UNKNOWN_MODEL_LABEL;
  const inference = buildInferencePipeline(config, {
    logger,
    now,
    authenticate: [authenticate, authorize],
    throttle: throttleWith(config.throttle),
    forward: (ctx) => forwarder.forward(ctx),
    onDone: (ctx, status) => {
      const worker = ctx.upstream?.id ?? 'none';
      if (status === 401 || status === 403) metrics.authFailures.inc({ reason: String(status) });
      metrics.recordRequest(modelLabel(ctx), status, worker, (now() - ctx.startedAt) / 1000);
      poolStats.record(ctx.upstream?.id, status, ctx.startedAt);
      accessLog.info({ request_id: ctx.requestId, method: ctx.req.method, path: ctx.req.url, model: ctx.route.model, status, worker, ms: Math.round((now() - ctx.startedAt) * 100) / 100, retries: ctx.retries }, 'request');
    },
  });

  const version = deps.version ?? '0.0.0';
  const web = (side: 'public' | 'admin'): express.Router => webRoutes({
    side,
    root: deps.webRoot ?? DEFAULT_WEB_ROOT,
    openApi: openApiDocument({ side, version, listen: config.listen, admin: config.admin, tls: config.listen.tlsCertFile !== undefined && config.listen.tlsKeyFile !== undefined }),
  });

  const publicApp = express();
  publicApp.disable('x-powered-by');
  publicApp.use(publicRoutes({
    pool,
    logger,
    version,
    upstreamTimeoutMs: config.health.timeoutMs,
    metricsText: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    // The public routes express answers take one token each, like an inference request of cost 1.
    caller: callerAuth({ authenticate, authorize, throttle: throttleWith({ ...config.throttle, cost: 'request' }), adminToken: adminTokenChecker(adminToken) }),
  }));
  publicApp.use(web('public'));
  publicApp.use(inferenceMethodNotAllowed);
  publicApp.use(methodNotAllowed(publicApp));
  publicApp.use(notFound);
  publicApp.use(errorResponder(logger));

  const snapshot = () => poolSnapshot({ pool, stats: poolStats, strategy: () => strategy.name, wallClock: deps.wallClock ?? Date.now });
  const poolStream = new PoolStream({ snapshot, registry: metrics.registry });
  const adminApp = express();
  adminApp.disable('x-powered-by');
  let effectiveConfig = config;
  adminApp.use(web('admin'));
  adminApp.use(adminRouter({
    pool,
    config: () => effectiveConfig,
    adminToken,
    poolSnapshot: snapshot,
    poolStream,
    strategy: () => strategy.name,
    setStrategy: (name, source) => {
      setStrategy(name, source);
      deps.strategyChangedByAdmin?.(strategy.name);
    },
    keyStore: config.auth.apiKeys.enabled ? deps.keyStore : undefined,
  }));
  adminApp.use(methodNotAllowed(adminApp));
  adminApp.use(notFound);
  adminApp.use(errorResponder(logger));

  function setStrategy(name: string, source: string): void {
    const next = createStrategy(name, strategyOptions); // throws for an unknown name: the old one stays
    if (next.name === strategy.name) return;
    logger.info({ from: strategy.name, to: next.name, source }, 'balancing strategy switched');
    strategy = next;
  }

  return {
    handlePublic(req, res) {
      applySecurityHeaders(res);
      if (applyCors(req, res, config.cors)) return; // a preflight, answered without authentication
      const originForm = req.url === undefined ? undefined : originFormOf(req.url);
      if (originForm !== undefined) req.url = originForm; // routed, logged and forwarded in origin form
      const route = matchInferenceRoute(req.method, req.url);
      if (route !== undefined) {
        inference(req, res, route);
        return;
      }
      res.setHeader(HEADER_REQUEST_ID, requestIdOf(req));
      publicApp(req, res);
    },
    handleAdmin(req, res) {
      applySecurityHeaders(res);
      res.setHeader(HEADER_REQUEST_ID, requestIdOf(req));
      adminApp(req, res);
    },
    pool,
    metrics,
    poolStats,
    poolStream,
    apps: { public: publicApp, admin: adminApp },
    get strategy() {
      return strategy.name;
    },
    get config() {
      return effectiveConfig;
    },
    setEffectiveConfig(next) {
      effectiveConfig = next;
    },
    setStrategy,
    async start() {
      for (const worker of config.workers) pool.add(worker.url, { weight: worker.weight, source: 'static' });
      await pool.checkAll();
    },
    close() {
      poolStream.close();
      pool.close();
      forwarder.close();
      apiKeys?.close();
    },
  };
}

function toJwtKeyConfig(key: GatewayConfig['auth']['jwt']['keys'][number]): JwtKeyConfig {
  const kid = key.kid === undefined ? {} : { kid: key.kid };
  if (key.secret !== undefined) return { ...kid, algorithms: key.algorithms as HmacAlgorithm[], secret: key.secret };
  if (key.publicKeyFile !== undefined) return { ...kid, algorithms: key.algorithms as AsymmetricAlgorithm[], publicKeyFile: key.publicKeyFile };
  return { jwksFile: key.jwksFile!, algorithms: key.algorithms as AsymmetricAlgorithm[] };
}

/** An inference path with a method its route lacks (GET …:predict, POST /v1/models/m): 405, no worker asked. */
function inferenceMethodNotAllowed(req: Request, _res: Response, next: NextFunction): void {
  const allowed = allowedInferenceMethods(req.url);
  if (allowed === undefined) return next();
  throw new InfergateError('ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${req.path}`, { Allow: allowed.join(', ') });
}

function notFound(req: Request): never {
  throw new InfergateError('ERR_NOT_FOUND', `no route for ${req.method} ${req.path}`);
}

/** Express error middleware: every error is the JSON body of DESIGN.md, details only in the log. */
function errorResponder(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    let error = err instanceof KeyStoreUnavailableError
      ? new InfergateError('GW_ERR_KEY_STORE_UNAVAILABLE', 'the API-key store cannot be reached right now', { 'Retry-After': '1' })
      : toInfergateError(err);
    const status = (err as { status?: number; type?: string }).status;
    if (!(err instanceof InfergateError) && status === 413) error = new InfergateError('ERR_BODY_TOO_LARGE', 'the body is over the limit');
    else if (!(err instanceof InfergateError) && (err as { type?: string }).type === 'entity.parse.failed') error = new InfergateError('ERR_BAD_JSON', 'the body is not valid JSON');
    else if (!(err instanceof InfergateError) && status === 415) error = new InfergateError('ERR_UNSUPPORTED_MEDIA_TYPE', 'unsupported content type or encoding');
    else if (!(err instanceof InfergateError) && status === 400) error = new InfergateError('ERR_BAD_REQUEST', 'the request path or body is malformed');
    const requestId = String(res.getHeader(HEADER_REQUEST_ID) ?? '');
    if (error.status >= 500) logger.error({ request_id: requestId, path: req.path, err }, error.message);
    else logger.info({ request_id: requestId, path: req.path, status: error.status, code: error.code }, error.message);
    sendError(res, error, requestId);
  };
}
