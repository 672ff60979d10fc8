/**
 * The main thread's handle on one session thread: load a model (by message), run feeds (through the
 * shared-memory ring of session-ring.ts), terminate. A thread that dies fails whatever it had.
 */
import { Worker } from 'node:worker_threads';
import type { Tensor } from '../../shared/protocol/datatypes.ts';
import type { FromSession, SessionOptions, TensorSpec, ToSession } from './session-protocol.ts';
import { RingClient } from './session-ring.ts';

const BOOT = new URL('./thread-boot.js', import.meta.url);
const ENTRY = new URL('./session-thread.ts', import.meta.url).href;

/** What the scheduler needs from a model instance; tests substitute their own. */
export interface Runner {
  /** Runs the model; the inputs are copied to the session thread, the outputs are the caller's. */
  run(inputs: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]>;
  close(): Promise<void>;
}

export interface LoadedSession {
  runner: Runner;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export async function loadSession(modelPath: string, options: SessionOptions): Promise<LoadedSession> {
  const ring = new RingClient();
  const thread = new Worker(BOOT, { workerData: { entry: ENTRY, ring: ring.threadEnd }, transferList: [ring.threadEnd.port], stdout: false, stderr: false });
  let dead: Error | undefined;

  const loaded = new Promise<{ inputs: TensorSpec[]; outputs: TensorSpec[] }>((resolve, reject) => {
    thread.on('message', (message: FromSession) => {
      if (message.type === 'answers') ring.collect();
      else if (message.type === 'loaded') resolve({ inputs: message.inputs, outputs: message.outputs });
      else reject(new Error(message.message));
    });
    const die = (err: Error): void => {
      dead ??= err;
      reject(err);
      ring.failAll(dead);
    };
    thread.on('error', die);
    thread.on('exit', (code) => die(new Error(`session thread exited (code ${code})`)));
  });
  thread.postMessage({ type: 'load', modelPath, options } satisfies ToSession);
  let specs: { inputs: TensorSpec[]; outputs: TensorSpec[] };
  try {
    specs = await loaded;
  } catch (err) {
    await thread.terminate();
    throw err;
  }

  const inputIndex = new Map(specs.inputs.map((s, i) => [s.name, i]));
  const outputIndex = new Map(specs.outputs.map((s, i) => [s.name, i]));
  const runner: Runner = {
    async run(inputs, outputNames) {
      if (dead !== undefined) throw dead;
      const tensors = inputs.map((t) => ({ index: indexOf(inputIndex, t.name, 'input'), datatype: t.datatype, shape: t.shape, data: t.data }));
      const answer = await ring.submit(tensors, outputNames.map((name) => indexOf(outputIndex, name, 'output')));
      return answer.tensors.map((t) => ({ name: specs.outputs[t.index]!.name, datatype: t.datatype, shape: t.shape, data: t.data }));
    },
    async close() {
      await thread.terminate();
    },
  };
  return { runner, ...specs };
}

function indexOf(names: ReadonlyMap<string, number>, name: string, kind: string): number {
  const index = names.get(name);
  if (index === undefined) throw new Error(`the model has no ${kind} '${name}'`);
  return index;
}
