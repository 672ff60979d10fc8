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

/** Runs and their answers do not travel as messages but through shared memory (session-ring.ts). */
export type ToSession = { type: 'load'; modelPath: string; options: SessionOptions };

export type FromSession =
  | { type: 'loaded'; inputs: TensorSpec[]; outputs: TensorSpec[] }
  | { type: 'load-failed'; message: string }
  /** Answers are waiting in the ring. */
  | { type: 'answers' };
