/**
 * The gateway's configuration: one strict schema (an unknown key fails startup with a message naming
 * it), units in key names, defaults here and in docs/configuration.md (a test keeps them in step).
 * Validated once at boot and frozen; gateway/main.ts applies environment overrides before that.
 */
import { z } from 'zod';
import { STRATEGY_NAMES } from '../balancing/registry.ts';

const WorkerSchema = z.strictObject({
  /** Base URL of a worker, e.g. http://127.0.0.1:9001 */
  url: z.url({ protocol: /^https?$/ }),
  /** Relative share for weighted round-robin. */
  weight: z.number().positive().max(1000).default(1),
});

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
  }).default({ requestMs: 30_000, connectMs: 1000, clientRequestMs: 60_000, clientHeadersMs: 10_000, keepAliveMs: 65_000 }),
  limits: z.strictObject({
    bodyBytes: z.number().int().positive().default(64 * 1024 * 1024),
    /** In-flight requests per worker per gateway process; over it, the worker is not a candidate. */
    maxInFlightPerWorker: z.number().int().positive().default(128),
    /** How long a request may wait for a worker under its cap before 503. */
    queueWaitMs: z.number().int().min(0).default(1000),
    maxHeaderBytes: z.number().int().min(1024).default(16 * 1024),
  }).default({ bodyBytes: 64 * 1024 * 1024, maxInFlightPerWorker: 128, queueWaitMs: 1000, maxHeaderBytes: 16 * 1024 }),
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
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;
export type WorkerEntry = z.infer<typeof WorkerSchema>;
