/**
 * The gateway's configuration: one strict schema (an unknown key fails startup with a message naming
 * it), units in key names, defaults here and in docs/configuration.md (a test keeps them in step).
 * Validated once at boot and frozen; gateway/main.ts applies environment overrides before that.
 */
import { z } from 'zod';
import { parseNode, parseRedisUrl } from '../../shared/redis/topology.ts';
import { STRATEGY_NAMES } from '../balancing/registry.ts';

const WorkerSchema = z.strictObject({
  /** Base URL of a worker, e.g. http://127.0.0.1:9001 */
  url: z.url({ protocol: /^https?$/ }),
  /** Relative share for weighted round-robin. */
  weight: z.number().positive().max(1000).default(1),
});

const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;

/** One JWT verification key with the algorithms pinned to it: HMAC keys never verify RS/ES tokens and vice versa. */
const JwtKeySchema = z.strictObject({
  /** Matched against the token header's `kid`; a key without one matches tokens without one. */
  kid: z.string().min(1).optional(),
  algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1),
  /** HS*: the shared secret (INFERGATE_JWT_SECRET overrides it). At least 32 characters. */
  secret: z.string().min(32).optional(),
  /** RS*, PS*, ES*: a PEM public key... */
  publicKeyFile: z.string().optional(),
  /** ...or a JWKS file whose keys are selected by `kid`. */
  jwksFile: z.string().optional(),
}).superRefine((key, ctx) => {
  const hmac = key.algorithms.filter((a) => a.startsWith('HS'));
  if (hmac.length > 0 && hmac.length < key.algorithms.length) ctx.addIssue({ code: 'custom', message: 'a key is either HMAC (HS*) or public-key (RS/PS/ES*), never both', path: ['algorithms'] });
  if (hmac.length > 0 && key.secret === undefined) ctx.addIssue({ code: 'custom', message: 'HS* algorithms need a secret', path: ['secret'] });
  if (hmac.length > 0 && (key.publicKeyFile ?? key.jwksFile) !== undefined) ctx.addIssue({ code: 'custom', message: 'an HS* key takes a secret, not a public key', path: ['publicKeyFile'] });
  if (hmac.length === 0 && (key.publicKeyFile === undefined) === (key.jwksFile === undefined)) ctx.addIssue({ code: 'custom', message: 'RS/PS/ES* keys need exactly one of publicKeyFile or jwksFile', path: ['publicKeyFile'] });
});

const RatePlanSchema = z.strictObject({
  ratePerSec: z.number().positive(),
  burst: z.number().int().positive(),
});

const DnsDiscoverySchema = z.strictObject({
  /** Fully qualified name to resolve, e.g. a Kubernetes headless Service. */
  name: z.string().min(1),
  port: z.number().int().min(1).max(65_535).optional(),
  /** Resolve SRV records (which carry the port) instead of A/AAAA. */
  srv: z.boolean().default(false),
  family: z.union([z.literal(4), z.literal(6), z.literal('any')]).default('any'),
  scheme: z.enum(['http', 'https']).default('http'),
  intervalMs: z.number().int().min(50).default(5000),
  /** An address leaves the pool after this many answers in a row without it. */
  removeAfterMisses: z.number().int().min(1).default(2),
  /** DNS servers to ask instead of the system's. */
  servers: z.array(z.string().min(1)).optional(),
  timeoutMs: z.number().int().min(10).default(2000),
  weight: z.number().positive().max(1000).default(1),
}).refine((d) => d.srv || d.port !== undefined, { message: 'a DNS entry needs a port unless srv is true', path: ['port'] });

/** A string that `parse` accepts; its error message becomes the config error. */
function parsedBy(parse: (text: string) => unknown): z.ZodString {
  return z.string().superRefine((text, ctx) => {
    try {
      parse(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
}

const HostPortSchema = parsedBy((text) => parseNode(text, 6379));

/** `redis.sentinel`: a master found through Sentinel. */
export const RedisSentinelSchema = z.strictObject({
  /** The master's name in the sentinels' configuration. */
  name: z.string().min(1),
  /** Sentinels to ask for the master, host:port. */
  nodes: z.array(HostPortSchema).min(1),
  /** The master's (and replicas') ACL user and password. */
  username: z.string().optional(),
  password: z.string().optional(),
  /** The sentinels' own password, when they have one. */
  sentinelPassword: z.string().optional(),
  db: z.number().int().min(0).max(15).default(0),
  tls: z.boolean().default(false),
});

/** `redis.cluster`: a Redis Cluster. */
export const RedisClusterSchema = z.strictObject({
  /** A few cluster nodes to discover the rest from, host:port. */
  nodes: z.array(HostPortSchema).min(1),
  username: z.string().optional(),
  password: z.string().optional(),
  tls: z.boolean().default(false),
});

/** `auth.apiKeys.store`: where API keys live; absent = Redis when one is configured, else the key file. */
export const ApiKeyStoreSchema = z.enum(['redis', 'file']);

/**
 * `auth.apiKeys.redisKeyPrefix`: the key records, their index and their invalidation channel all
 * start with it, so environments sharing one Redis keep separate keys. Every key operation touches
 * several of them at once, which Redis Cluster allows only within one slot: hence the {hash tag}.
 */
export const ApiKeyRedisPrefixSchema = z.string()
  .max(64)
  .regex(/^\S+$/, 'no whitespace')
  .regex(/\{[^{}]+\}/, "needs a {hash tag}, e.g. '{infergate-staging}:', so every key record shares one Redis Cluster slot");

const REGISTRY_DEFAULTS = { enabled: false, namespace: 'infergate', resyncMs: 1000, ttlMs: 6000, weightByCapacity: false };

export const GatewayConfigSchema = z.strictObject({
  listen: z.strictObject({
    host: z.string().default('0.0.0.0'),
    port: z.number().int().min(0).max(65_535).default(8080),
    /** Serve HTTPS when both are set; reloaded on SIGHUP. */
    tlsCertFile: z.string().optional(),
    tlsKeyFile: z.string().optional(),
  }).default({ host: '0.0.0.0', port: 8080 }),
  admin: z.strictObject({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(8081),
    /** Bearer token for the admin API; INFERGATE_ADMIN_TOKEN overrides it. Absent = admin API refuses everything. */
    token: z.string().min(16).optional(),
  }).default({ host: '127.0.0.1', port: 8081 }),
  /** Static workers; discovery (registry, DNS) adds more at run time. */
  workers: z.array(WorkerSchema).default([]),
  balancing: z.strictObject({
    strategy: z.enum(STRATEGY_NAMES).default('p2c'),
    /** Latency assumed for a worker with no sample yet (peak-EWMA). */
    defaultLatencyMs: z.number().positive().default(5),
    /** Decay time of the latency EWMA. */
    ewmaDecayMs: z.number().positive().default(10_000),
  }).default({ strategy: 'p2c', defaultLatencyMs: 5, ewmaDecayMs: 10_000 }),
  health: z.strictObject({
    /** Active readiness check period per worker. */
    intervalMs: z.number().int().min(50).default(1000),
    timeoutMs: z.number().int().min(10).default(1000),
    /** Consecutive failed checks before a worker leaves the candidates. */
    unhealthyThreshold: z.number().int().min(1).default(2),
    /** Consecutive passed checks before it comes back. */
    healthyThreshold: z.number().int().min(1).default(1),
    /** How often each worker's model index (models, versions, metadata) is refreshed. */
    indexRefreshMs: z.number().int().min(100).default(5000),
  }).default({ intervalMs: 1000, timeoutMs: 1000, unhealthyThreshold: 2, healthyThreshold: 1, indexRefreshMs: 5000 }),
  breaker: z.strictObject({
    /** Failure percentage within the rolling window that opens the breaker. */
    errorThresholdPercentage: z.number().min(1).max(100).default(50),
    /** Requests in the window before the percentage is judged. */
    volumeThreshold: z.number().int().min(1).default(5),
    /** Open → half-open after this long; one trial request then decides. */
    resetTimeoutMs: z.number().int().min(10).default(5000),
    rollingWindowMs: z.number().int().min(100).default(10_000),
  }).default({ errorThresholdPercentage: 50, volumeThreshold: 5, resetTimeoutMs: 5000, rollingWindowMs: 10_000 }),
  retry: z.strictObject({
    /** Retries allowed as a fraction of requests (Finagle's retry budget), plus a floor per second. */
    budgetRatio: z.number().min(0).max(1).default(0.2),
    minRetriesPerSecond: z.number().min(0).default(10),
  }).default({ budgetRatio: 0.2, minRetriesPerSecond: 10 }),
  timeouts: z.strictObject({
    /** Default per-request deadline; a client may lower it with X-Infergate-Timeout-Ms. */
    requestMs: z.number().int().min(1).default(30_000),
    connectMs: z.number().int().min(1).default(1000),
    /** Whole request, headers and body, from the client (slowloris guard). */
    clientRequestMs: z.number().int().min(100).default(60_000),
    clientHeadersMs: z.number().int().min(100).default(10_000),
    keepAliveMs: z.number().int().min(100).default(65_000),
    /** After SIGTERM, how long requests in flight may take to finish before their connections are closed. */
    drainMs: z.number().int().min(0).default(30_000),
  }).default({ requestMs: 30_000, connectMs: 1000, clientRequestMs: 60_000, clientHeadersMs: 10_000, keepAliveMs: 65_000, drainMs: 30_000 }),
  limits: z.strictObject({
    bodyBytes: z.number().int().positive().default(64 * 1024 * 1024),
    /** In-flight requests per worker per gateway process; over it, the worker is not a candidate. */
    maxInFlightPerWorker: z.number().int().positive().default(128),
    /**
     * How long a request may wait in line for a slot before 503. Tens of ms: long enough to ride out
     * a burst (slots free every service time / cap), short enough that under sustained overload the
     * excess is refused fast and clients back off, instead of every refusal costing a second.
     */
    queueWaitMs: z.number().int().min(0).default(50),
    /**
     * Adaptive LIFO: once the admission queue has not been empty for this long, a freed slot goes to
     * the newest waiter instead of the oldest, so admitted requests keep their latency under
     * sustained overload and the excess is refused. 0 = always oldest first.
     */
    adaptiveLifoMs: z.number().int().min(0).default(100),
    /** Requests waiting for a slot, across all models (Envoy's max_pending_requests); one more is refused at once. */
    maxQueued: z.number().int().min(0).default(1024),
    maxHeaderBytes: z.number().int().min(1024).default(16 * 1024),
  }).default({ bodyBytes: 64 * 1024 * 1024, maxInFlightPerWorker: 128, queueWaitMs: 50, adaptiveLifoMs: 100, maxQueued: 1024, maxHeaderBytes: 16 * 1024 }),
  upstreamTls: z.strictObject({
    /** CA bundle for workers served over HTTPS. */
    caFile: z.string().optional(),
    rejectUnauthorized: z.boolean().default(true),
  }).default({ rejectUnauthorized: true }),
  cors: z.strictObject({
    /** Origins allowed to call the public API from a browser; [] = CORS off. "*" allows any. */
    allowedOrigins: z.array(z.string()).default([]),
    maxAgeSeconds: z.number().int().min(0).default(600),
  }).default({ allowedOrigins: [], maxAgeSeconds: 600 }),
  /** Where workers come from besides `workers`: the Redis registry and DNS names. The pool dedupes by URL. */
  discovery: z.strictObject({
    registry: z.strictObject({
      /** Follow the worker registry in Redis (needs redis.url; workers run with --register). */
      enabled: z.boolean().default(false),
      namespace: z.string().regex(/^[\w.:-]{1,64}$/).default('infergate'),
      resyncMs: z.number().int().min(50).default(1000),
      ttlMs: z.number().int().min(0).default(6000),
      weightByCapacity: z.boolean().default(false),
    }).default(REGISTRY_DEFAULTS),
    dns: z.array(DnsDiscoverySchema).default([]),
  }).default({ registry: REGISTRY_DEFAULTS, dns: [] }),
  /**
   * Shared state for several gateway replicas, on one Redis node, a Sentinel-watched master or a
   * Redis Cluster (at most one of url / sentinel / cluster; docs/redis.md); none = embedded mode
   * (keys in a file, buckets in memory).
   */
  redis: z.strictObject({
    /** redis://, rediss://, redis+sentinel:// or redis+cluster:// (shared/redis/topology.ts); REDIS_URL overrides it. */
    url: parsedBy(parseRedisUrl).optional(),
    sentinel: RedisSentinelSchema.optional(),
    cluster: RedisClusterSchema.optional(),
    /** Longest a rate-limit decision waits for Redis before `throttle.onStoreFailure` applies. */
    decisionDeadlineMs: z.number().int().min(1).max(1000).default(50),
    /**
     * Starts the rate-limit bucket keys (`{<ns>:rl:…}`) and the strategy channel (`<ns>:config:strategy`):
     * environments sharing one Redis give each their own, so their limits and strategy changes stay apart.
     */
    namespace: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, '1-64 letters, digits, _ . : -').default('infergate'),
  }).refine((r) => [r.url, r.sentinel, r.cluster].filter((v) => v !== undefined).length <= 1, {
    message: 'give one of redis.url, redis.sentinel or redis.cluster',
  }).default({ decisionDeadlineMs: 50, namespace: 'infergate' }),
  auth: z.strictObject({
    anonymous: z.strictObject({
      /** Serve requests that carry no credential, as the principal `anonymous`. */
      enabled: z.boolean().default(false),
      /** Models anonymous callers may use; [] = all. */
      models: z.array(z.string()).default([]),
      /** Rate plan of anonymous callers; none = not throttled. */
      plan: z.string().optional(),
    }).default({ enabled: false, models: [] }),
    apiKeys: z.strictObject({
      enabled: z.boolean().default(true),
      /** `redis` or `file`; absent = Redis when one is configured, else `file`. The CLI decides the same way. */
      store: ApiKeyStoreSchema.optional(),
      /** The embedded key store when no Redis is configured (SHA-256 digests only, mode 0600). */
      file: z.string().default('.infergate/keys.json'),
      /** Prefix of the key records and their channel in Redis (default `{infergate}:`); one per environment sharing a Redis. */
      redisKeyPrefix: ApiKeyRedisPrefixSchema.optional(),
      /** A verified key is trusted this long without asking the store; bounds revocation delay. */
      cacheTtlMs: z.number().int().min(0).max(60_000).default(2000),
    }).default({ enabled: true, file: '.infergate/keys.json', cacheTtlMs: 2000 }),
    jwt: z.strictObject({
      keys: z.array(JwtKeySchema).default([]),
      /** Required `iss` when set. */
      issuer: z.string().optional(),
      /** Required `aud` when set. */
      audience: z.string().optional(),
      /** Longest lifetime (exp - iat) accepted. */
      maxLifetimeSec: z.number().int().positive().default(86_400),
      clockToleranceSec: z.number().int().min(0).max(300).default(5),
      /** Claim listing the models a token may use (array or space-separated). */
      modelsClaim: z.string().default('models'),
      /** Claim naming the token's rate plan. */
      planClaim: z.string().default('plan'),
    }).default({ keys: [], maxLifetimeSec: 86_400, clockToleranceSec: 5, modelsClaim: 'models', planClaim: 'plan' }),
  }).default({
    anonymous: { enabled: false, models: [] },
    apiKeys: { enabled: true, file: '.infergate/keys.json', cacheTtlMs: 2000 },
    jwt: { keys: [], maxLifetimeSec: 86_400, clockToleranceSec: 5, modelsClaim: 'models', planClaim: 'plan' },
  }),
  throttle: z.strictObject({
    enabled: z.boolean().default(true),
    /** Named plans; a key or token names one (or carries its own rate and burst). */
    plans: z.record(z.string(), RatePlanSchema).default({}),
    /** The plan of a principal that names none; none = such principals are not throttled. */
    defaultPlan: z.string().optional(),
    /** One bucket per principal and model instead of per principal. */
    perModel: z.boolean().default(false),
    /** What a request costs: 1, or its batch size (read from the V2 JSON or the binary header only). */
    cost: z.enum(['request', 'batch']).default('request'),
    /** Redis unreachable or slow: `open` = fall back to a local bucket (logged, counted); `closed` = 503. */
    onStoreFailure: z.enum(['open', 'closed']).default('open'),
    /**
     * With Redis: a gateway seeing steady demand for a bucket takes tokens ahead (from above half its
     * burst) and may use them this long before giving back the rest; 0 = every request asks Redis.
     */
    leaseMs: z.number().int().min(0).max(10_000).default(100),
  }).default({ enabled: true, plans: {}, perModel: false, cost: 'request', onStoreFailure: 'open', leaseMs: 100 }),
  /**
   * Gateway processes sharing the public and admin ports (node:cluster); `--processes` overrides it.
   * Above 1, rate limits are exact only with Redis, and in-flight counts are per process.
   */
  processes: z.number().int().min(1).max(64).default(1),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
}).superRefine((config, ctx) => {
  const { url, sentinel, cluster } = config.redis;
  if (config.auth.apiKeys.store === 'redis' && url === undefined && sentinel === undefined && cluster === undefined) {
    ctx.addIssue({ code: 'custom', message: "'redis' needs redis.url, redis.sentinel or redis.cluster (or REDIS_URL)", path: ['auth', 'apiKeys', 'store'] });
  }
});

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type WorkerEntry = z.infer<typeof WorkerSchema>;
