/**
 * Runs inside a worker thread: owns one onnxruntime-node InferenceSession. This is the only module
 * that imports onnxruntime-node. `session.run` is synchronous on its calling thread, so keeping it
 * here keeps the worker's HTTP event loop free while a model computes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { DATATYPE_INFO, v2FromOrtType, type V2Datatype } from '../../shared/protocol/datatypes.ts';
import type { FromSession, TensorSpec, ToSession } from './session-protocol.ts';
import { serveRing, type RingEnd } from './session-ring.ts';
import type { Frame, FrameTensor } from './tensor-frame.ts';

const port = parentPort!;
let session: ort.InferenceSession | undefined;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

function send(message: FromSession): void {
  port.postMessage(message);
}

function specOf(meta: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!meta.isTensor) throw new Error(`'${meta.name}' is not a tensor (sequences and maps are not served)`);
  const datatype = v2FromOrtType(meta.type);
  if (datatype === undefined) throw new Error(`'${meta.name}' has type ${meta.type}, which the V2 protocol cannot carry`);
  return { name: meta.name, datatype, shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
}

/**
 * A numeric input's storage and its ort.Tensor, kept from one run to the next while the input's
 * datatype and shape stay the same (always, without dynamic batching): a run then copies the
 * request's bytes out of shared memory into it and creates neither an ArrayBuffer nor a Tensor.
 * Safe because runs on this thread are sequential and onnxruntime reads feeds only during a run.
 */
interface Staged {
  datatype: V2Datatype;
  shape: number[];
  data: Exclude<FrameTensor['data'], Uint8Array[]>;
  tensor: ort.Tensor;
}

const staged: Array<Staged | undefined> = [];

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The input as an ort.Tensor; numeric `tensor.data` may view shared memory, BYTES arrive copied. */
function toOrtTensor(tensor: FrameTensor): ort.Tensor {
  if (tensor.datatype === 'BYTES') {
    const strings = (tensor.data as Uint8Array[]).map((b) => utf8Decoder.decode(b));
    return new ort.Tensor('string', strings, tensor.shape);
  }
  const source = tensor.data as Exclude<FrameTensor['data'], Uint8Array[]>;
  let slot = staged[tensor.index];
  if (slot === undefined || slot.datatype !== tensor.datatype || !sameShape(slot.shape, tensor.shape)) {
    const data = new DATATYPE_INFO[tensor.datatype].array!(source.length);
    const tensorOf = new ort.Tensor(DATATYPE_INFO[tensor.datatype].ortType as ort.Tensor.Type, data as ort.Tensor.DataType, tensor.shape);
    slot = { datatype: tensor.datatype, shape: tensor.shape, data, tensor: tensorOf };
    staged[tensor.index] = slot;
  }
  (slot.data as Float32Array).set(source as Float32Array);
  return slot.tensor;
}

function fromOrtTensor(index: number, tensor: ort.Tensor): FrameTensor {
  const datatype: V2Datatype | undefined = v2FromOrtType(tensor.type);
  if (datatype === undefined) throw new Error(`output type ${tensor.type} cannot be carried by the V2 protocol`);
  const shape = [...tensor.dims];
  if (datatype === 'BYTES') return { index, datatype, shape, data: (tensor.data as string[]).map((s) => utf8.encode(s)) };
  let data = tensor.data as Exclude<ort.Tensor.DataType, string[]>;
  if (datatype === 'BOOL' && !(data instanceof Uint8Array)) data = Uint8Array.from(data as unknown as ArrayLike<number>);
  return { index, datatype, shape, data: data as FrameTensor['data'] };
}

async function load(message: ToSession): Promise<boolean> {
  try {
    session = await ort.InferenceSession.create(message.modelPath, {
      intraOpNumThreads: message.options.intraOpThreads,
      interOpNumThreads: message.options.interOpThreads,
      graphOptimizationLevel: message.options.graphOptimizationLevel,
      executionMode: 'sequential',
    });
    send({ type: 'loaded', inputs: session.inputMetadata.map(specOf), outputs: session.outputMetadata.map(specOf) });
    return true;
  } catch (err) {
    send({ type: 'load-failed', message: (err as Error).message });
    return false;
  }
}

/** One run: the request names inputs and outputs by their index in the session's lists. */
async function run(request: Frame): Promise<FrameTensor[]> {
  if (session === undefined) throw new Error('session not loaded');
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of request.tensors) feeds[session.inputNames[t.index]!] = toOrtTensor(t);
  const outputNames = request.extra.map((i) => session!.outputNames[i]!);
  const results = await session.run(feeds, outputNames);
  // Staged numeric tensors stay for the next run; string tensors are released now.
  for (const t of request.tensors) if (t.datatype === 'BYTES') feeds[session.inputNames[t.index]!]!.dispose();
  return request.extra.map((i, k) => fromOrtTensor(i, results[outputNames[k]!]!));
}

port.on('message', (message: ToSession) => {
  if (message.type !== 'load') return;
  void load(message).then((ok) => {
    if (ok) void serveRing(workerData.ring as RingEnd, run, () => send({ type: 'answers' }));
  });
});
