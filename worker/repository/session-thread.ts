/**
 * Runs inside a worker thread: owns one onnxruntime-node InferenceSession. This is the only module
 * that imports onnxruntime-node. `session.run` is synchronous on its calling thread, so keeping it
 * here keeps the worker's HTTP event loop free while a model computes.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { DATATYPE_INFO, v2FromOrtType, type V2Datatype } from '../../shared/protocol/datatypes.ts';
import type { FromSession, TensorSpec, ToSession, WireTensor } from './session-protocol.ts';

const port = parentPort!;
let session: ort.InferenceSession | undefined;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

function send(message: FromSession, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function specOf(meta: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!meta.isTensor) throw new Error(`'${meta.name}' is not a tensor (sequences and maps are not served)`);
  const datatype = v2FromOrtType(meta.type);
  if (datatype === undefined) throw new Error(`'${meta.name}' has type ${meta.type}, which the V2 protocol cannot carry`);
  return { name: meta.name, datatype, shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
}

function toOrtTensor(tensor: WireTensor): ort.Tensor {
  const type = DATATYPE_INFO[tensor.datatype].ortType as ort.Tensor.Type;
  if (tensor.datatype === 'BYTES') {
    const strings = (tensor.data as Uint8Array[]).map((b) => utf8Decoder.decode(b));
    return new ort.Tensor('string', strings, tensor.shape);
  }
  return new ort.Tensor(type, tensor.data as ort.Tensor.DataType, tensor.shape);
}

function fromOrtTensor(tensor: ort.Tensor, transfer: ArrayBuffer[]): WireTensor {
  const datatype: V2Datatype | undefined = v2FromOrtType(tensor.type);
  if (datatype === undefined) throw new Error(`output type ${tensor.type} cannot be carried by the V2 protocol`);
  const shape = [...tensor.dims];
  if (datatype === 'BYTES') return { datatype, shape, data: (tensor.data as string[]).map((s) => utf8.encode(s)) };
  let data = tensor.data as Exclude<ort.Tensor.DataType, string[]>;
  if (datatype === 'BOOL' && !(data instanceof Uint8Array)) data = Uint8Array.from(data as unknown as ArrayLike<number>);
  // Transfer the buffer to the main thread instead of copying it, unless the array is a view into a larger one.
  if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength || !(data.buffer instanceof ArrayBuffer)) data = data.slice();
  transfer.push(data.buffer as ArrayBuffer);
  return { datatype, shape, data };
}

async function load(message: Extract<ToSession, { type: 'load' }>): Promise<void> {
  try {
    session = await ort.InferenceSession.create(message.modelPath, {
      intraOpNumThreads: message.options.intraOpThreads,
      interOpNumThreads: message.options.interOpThreads,
      graphOptimizationLevel: message.options.graphOptimizationLevel,
      executionMode: 'sequential',
    });
    send({ type: 'loaded', inputs: session.inputMetadata.map(specOf), outputs: session.outputMetadata.map(specOf) });
  } catch (err) {
    send({ type: 'load-failed', message: (err as Error).message });
  }
}

async function run(message: Extract<ToSession, { type: 'run' }>): Promise<void> {
  try {
    if (session === undefined) throw new Error('session not loaded');
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, tensor] of Object.entries(message.feeds)) feeds[name] = toOrtTensor(tensor);
    const results = await session.run(feeds, message.outputNames);
    const transfer: ArrayBuffer[] = [];
    const outputs: Record<string, WireTensor> = {};
    for (const name of message.outputNames) outputs[name] = fromOrtTensor(results[name]!, transfer);
    for (const t of Object.values(feeds)) t.dispose();
    send({ type: 'result', id: message.id, outputs }, transfer);
  } catch (err) {
    send({ type: 'run-failed', id: message.id, message: (err as Error).message });
  }
}

port.on('message', (message: ToSession) => {
  if (message.type === 'load') void load(message);
  else void run(message);
});
