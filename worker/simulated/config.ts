/**
 * Configuration of a simulated worker (`infergate worker --simulate-delay-ms <ms>`): one strict
 * schema, validated once at boot, like the real worker's.
 */
import { z } from 'zod';

const MODEL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

export const SimulatedWorkerConfigSchema = z.strictObject({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(9001),
  /** Opaque id reported to the gateway in X-Infergate-Worker. */
  workerId: z.string().min(1).max(128).optional(),
  /** How long one inference "runs" once it has an execution slot. */
  delayMs: z.number().min(0).max(600_000),
  /** The models served, each as version 1. */
  models: z.array(z.string().regex(MODEL_NAME, 'model names are 1-128 letters, digits, _ . -')).min(1).default(['simulated']),
  /** Inferences running at once, like a model's session instances; 0 = no limit (a pure delay). */
  concurrency: z.number().int().min(0).max(100_000).default(0),
  /** Requests waiting for a slot beyond the running ones; over it, 503 WK_ERR_QUEUE_FULL. */
  maxQueueSize: z.number().int().min(0).max(1_000_000).default(1024),
  bodyLimitBytes: z.number().int().positive().default(64 * 1024 * 1024),
  /** After SIGTERM, how long readiness fails before the listener closes (see worker/config.ts). */
  drainDelayMs: z.number().int().min(0).max(300_000).default(0),
});

export type SimulatedWorkerConfig = z.infer<typeof SimulatedWorkerConfigSchema>;
