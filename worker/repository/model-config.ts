/**
 * A model's optional `config.json` (models/<name>/config.json), in the spirit of Triton's
 * config.pbtxt. Strict: an unknown key is an error naming the key and the file.
 *
 * @example models/iris/config.json
 *   {
 *     "maxBatchSize": 64,
 *     "dynamicBatching": { "maxQueueDelayMs": 1, "preferredBatchSizes": [16, 64] },
 *     "labels": { "probabilities": ["setosa", "versicolor", "virginica"] }
 *   }
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';

const DynamicBatchingSchema = z.strictObject({
  /** How long the first queued request may wait for others to join its batch. */
  maxQueueDelayMs: z.number().min(0).max(10_000).default(0),
  /** Batch sizes worth dispatching at once, without waiting out the delay. */
  preferredBatchSizes: z.array(z.number().int().positive()).default([]),
});

const VersionPolicySchema = z.union([
  z.strictObject({ latest: z.number().int().positive() }),
  z.strictObject({ all: z.literal(true) }),
  z.strictObject({ specific: z.array(z.number().int().nonnegative()).min(1) }),
]);

export const ModelConfigSchema = z.strictObject({
  /** Largest batch (first dimension) one request or one merged run may have; 0 = the model does not batch. */
  maxBatchSize: z.number().int().min(0).max(65_536).default(0),
  /** Merge concurrent requests into one session run; absent = every request runs alone. */
  dynamicBatching: DynamicBatchingSchema.optional(),
  /** Requests waiting for an instance, at most; one more gets 503 + Retry-After. */
  maxQueueSize: z.number().int().positive().default(1024),
  /** How long a request may wait in the queue before it gets 504. */
  queueTimeoutMs: z.number().int().positive().max(86_400_000).default(30_000),
  /** Which versions under models/<name>/ are served. */
  versionPolicy: VersionPolicySchema.default({ latest: 1 }),
  /** Class labels per output name, index-aligned with the output's last dimension. */
  labels: z.record(z.string(), z.array(z.string())).default({}),
  session: z
    .strictObject({
      intraOpThreads: z.number().int().min(1).max(256).default(1),
      interOpThreads: z.number().int().min(1).max(256).default(1),
      graphOptimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']).default('all'),
    })
    .default({ intraOpThreads: 1, interOpThreads: 1, graphOptimizationLevel: 'all' }),
  /** Session copies, each on its own thread: how many runs of this model go on at once. */
  instanceCount: z.number().int().min(1).max(64).default(1),
  /** Free text shown in metadata and the playground. */
  description: z.string().max(2000).optional(),
});

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

/** Validates parsed JSON; `source` names the file in messages. */
export function parseModelConfig(raw: unknown, source: string): ModelConfig {
  const result = ModelConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const where = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
      return `unknown key ${issue.keys.map((k) => `'${prefix}${k}'`).join(', ')}`;
    }
    return `${where}: ${issue.message}`;
  });
  throw new ModelConfigError(`${source}: ${problems.join('; ')}`);
}

/** Reads models/<name>/config.json; a missing file means all defaults. */
export async function readModelConfig(path: string): Promise<ModelConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return parseModelConfig({}, path);
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelConfigError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return parseModelConfig(raw, path);
}
