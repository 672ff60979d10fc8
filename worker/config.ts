/** The worker's configuration: one strict schema, defaults in one place, validated once at boot. */
import { z } from 'zod';

export const WorkerConfigSchema = z.strictObject({
  /** The model repository: <modelsDir>/<name>/<version>/model.onnx. */
  modelsDir: z.string().min(1),
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(9001),
  /** Opaque id reported to the gateway in X-Infergate-Worker. */
  workerId: z.string().min(1).max(128).optional(),
  /** Largest request body accepted, after decompression. */
  bodyLimitBytes: z.number().int().positive().default(64 * 1024 * 1024),
  /** Largest element count of one tensor; guards against absurd shapes. */
  maxTensorElements: z.number().int().positive().default(64 * 1024 * 1024),
  /** How often the repository is rescanned for new, changed or removed versions; 0 = never. */
  pollIntervalMs: z.number().int().min(0).default(2000),
  /** How long a draining worker waits for in-flight requests before it exits anyway. */
  drainTimeoutMs: z.number().int().positive().default(30_000),
  /**
   * After SIGTERM, how long the worker keeps listening with readiness failing before it closes its
   * listener: long enough for every gateway's health checks to notice (health.intervalMs ×
   * unhealthyThreshold), so none sends a request onto a closing connection.
   */
  drainDelayMs: z.number().int().min(0).max(300_000).default(0),
  /** Redis URL of the worker registry: announce this worker there (heartbeat with a TTL). */
  registerUrl: z.string().optional(),
  /** The URL gateways should use for this worker; default: the listening address. */
  advertiseUrl: z.url({ protocol: /^https?$/ }).optional(),
  heartbeatMs: z.number().int().min(100).default(2000),
  registryTtlMs: z.number().int().min(200).default(6000),
  registryNamespace: z.string().default('infergate'),
  /** Capacity announced in the registry (gateways may weight by it); default: CPU cores. */
  capacity: z.number().int().positive().optional(),
  /** Idle keep-alive connections are closed after this; above the gateway agent's free-socket timeout. */
  keepAliveTimeoutMs: z.number().int().positive().default(65_000),
  /** Whole-request time limit (headers and body) against slow clients. */
  requestTimeoutMs: z.number().int().positive().default(60_000),
});

export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;
