/**
 * The main thread's handle on one session thread: load a model, run feeds, terminate.
 * Runs are answered in order of completion, matched by id; a thread that dies fails whatever it had.
 */
import { Worker } from 'node:worker_threads';
import type { Tensor } from '../../shared/protocol/datatypes.ts';
import type { FromSession, SessionOptions, TensorSpec, WireTensor } from './session-protocol.ts';

const BOOT = new URL('./thread-boot.js', import.meta.url);
const ENTRY = new URL('./session-thread.ts', import.meta.url).href;

/** What the scheduler needs from a model instance; tests substitute their own. */
export interface Runner {
  /**
   * Runs the model. Takes ownership of the inputs: typed arrays that own their whole buffer are
   * moved to the session thread, so callers must not read them afterwards.
   */
  run(inputs: readonly Tensor[], outputNames: readonly string[]): Promise<Tensor[]>;
  close(): Promise<void>;
}

export interface LoadedSession {
  runner: Runner;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export async function loadSession(modelPath: string, options: SessionOptions): Promise<LoadedSession> {
  const thread = new Worker(BOOT, { workerData: { entry: ENTRY }, stdout: false, stderr: false });
  const pending = new Map<number, { resolve: (t: Tensor[]) => void; reject: (e: Error) => void; names: readonly string[] }>();
  let nextId = 1;
  let dead: Error | undefined;

  const loaded = new Promise<{ inputs: TensorSpec[]; outputs: TensorSpec[] }>((resolve, reject) => {
    thread.on('message', (message: FromSession) => {
      switch (message.type) {
        case 'loaded':
          resolve({ inputs: message.inputs, outputs: message.outputs });
          break;
        case 'load-failed':
          reject(new Error(message.message));
          break;
        case 'result': {
          const entry = pending.get(message.id);
          pending.delete(message.id);
          entry?.resolve(entry.names.map((name) => fromWire(name, message.outputs[name]!)));
          break;
        }
        case 'run-failed': {
          const entry = pending.get(message.id);
          pending.delete(message.id);
          entry?.reject(new Error(message.message));
          break;
        }
      }
    });
    const die = (err: Error): void => {
      dead = err;
      reject(err);
      for (const entry of pending.values()) entry.reject(err);
      pending.clear();
    };
    thread.on('error', die);
    thread.on('exit', (code) => die(new Error(`session thread exited (code ${code})`)));
  });
  thread.postMessage({ type: 'load', modelPath, options });
  let specs: { inputs: TensorSpec[]; outputs: TensorSpec[] };
  try {
    specs = await loaded;
  } catch (err) {
    await thread.terminate();
    throw err;
  }

  const runner: Runner = {
    run(inputs, outputNames) {
      if (dead !== undefined) return Promise.reject(dead);
      const id = nextId++;
      const feeds: Record<string, WireTensor> = {};
      const transfer: ArrayBuffer[] = [];
      for (const t of inputs) {
        feeds[t.name] = { datatype: t.datatype, shape: t.shape, data: t.data };
        if (ownsWholeBuffer(t.data)) transfer.push(t.data.buffer);
      }
      return new Promise<Tensor[]>((resolve, reject) => {
        pending.set(id, { resolve, reject, names: outputNames });
        thread.postMessage({ type: 'run', id, feeds, outputNames }, transfer);
      });
    },
    async close() {
      await thread.terminate();
    },
  };
  return { runner, ...specs };
}

/**
 * A typed array that is the whole of a plain ArrayBuffer can be moved to the thread instead of
 * copied. Views into something larger (a request Buffer, Node's Buffer pool) are copied.
 */
function ownsWholeBuffer(data: Tensor['data']): data is Exclude<Tensor['data'], Uint8Array[]> & { buffer: ArrayBuffer } {
  return !Array.isArray(data) && data.byteOffset === 0 && data.buffer instanceof ArrayBuffer && data.byteLength === data.buffer.byteLength;
}

function fromWire(name: string, wire: WireTensor): Tensor {
  return { name, datatype: wire.datatype, shape: wire.shape, data: wire.data as Tensor['data'] };
}
