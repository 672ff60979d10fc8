/**
 * What each model build (iris.ts, mnist.ts, ...) hands to build-all.ts: the graph to encode, the
 * config.json to write, the numbers for the summary, and samples to cross-check in onnxruntime.
 */
import type { z } from 'zod';
import type { ModelConfigSchema } from '../../worker/repository/model-config.ts';
import type { GraphSpec } from './onnx-writer.ts';

/** config.json as written (defaults left out); build-all validates it with the worker's schema. */
export type ModelConfigJson = z.input<typeof ModelConfigSchema>;

export interface DemoModel {
  name: string;
  /** Must have exactly one input whose first dimension is the batch 'N'. */
  graph: GraphSpec;
  config: ModelConfigJson;
  /** Measured quality, e.g. { 'held-out accuracy': '0.967 (29/30)' }, printed and put in the README by hand. */
  metrics: Record<string, string>;
  check: {
    /** Single samples (no batch axis) to run through onnxruntime one at a time and as a batch. */
    samples: Float32Array[];
    /** The training code's own forward pass for one sample; absent for untrained models (shape and sum checks only). */
    expected?: (sample: Float32Array) => ArrayLike<number>;
  };
  /** Test fixtures derived from the build, as JSON, keyed by path from the repository root. */
  fixtures?: Record<string, unknown>;
}

/** e.g. formatAccuracy(29 / 30, 30) === '0.967 (29/30)' */
export function formatAccuracy(accuracy: number, total: number): string {
  return `${accuracy.toFixed(3)} (${Math.round(accuracy * total)}/${total})`;
}
