/** Messages between the worker's main thread and a session thread (worker/repository/session-thread.ts). */
import type { V2Datatype } from '../../shared/protocol/datatypes.ts';

export interface TensorSpec {
  name: string;
  datatype: V2Datatype;
  /** -1 marks a dynamic dimension. */
  shape: number[];
}

export interface SessionOptions {
  intraOpThreads: number;
  interOpThreads: number;
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
}

/** Tensor payload crossing the thread boundary; BYTES travel as byte arrays, numbers as typed arrays. */
export interface WireTensor {
  datatype: V2Datatype;
  shape: number[];
  data: ArrayBufferView | Uint8Array[];
}

export type ToSession =
  | { type: 'load'; modelPath: string; options: SessionOptions }
  | { type: 'run'; id: number; feeds: Record<string, WireTensor>; outputNames: string[] };

export type FromSession =
  | { type: 'loaded'; inputs: TensorSpec[]; outputs: TensorSpec[] }
  | { type: 'load-failed'; message: string }
  | { type: 'result'; id: number; outputs: Record<string, WireTensor> }
  | { type: 'run-failed'; id: number; message: string };
