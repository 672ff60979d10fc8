/**
 * Checks a request's tensors against the model's metadata before anything is queued or allocated:
 * names (missing, unknown, duplicate), datatype, rank, fixed dims, batch size, element counts.
 * Messages name the input and say what was expected and what was received.
 */
import { InfergateError } from '../../shared/errors.ts';
import { elementCount, isV2Datatype, type V2Datatype } from '../../shared/protocol/datatypes.ts';
import type { TensorSpec } from '../repository/session-protocol.ts';
import { describe } from './codec/json-tensor.ts';

/** Rank beyond which a shape is absurd rather than merely large (ONNX itself has no rank limit). */
export const MAX_RANK = 32;

export interface ShapeCheckTarget {
  inputs: readonly TensorSpec[];
  maxBatchSize: number;
}

export interface DeclaredInput {
  name: string;
  datatype: V2Datatype;
  shape: number[];
  count: number;
}

function bad(message: string): InfergateError {
  return new InfergateError('WK_ERR_BAD_TENSOR', message);
}

/** Validates one declared input (name, datatype, shape) and returns it typed, with its element count. */
export function checkDeclaredInput(raw: { name?: unknown; datatype?: unknown; shape?: unknown }, spec: TensorSpec | undefined, model: ShapeCheckTarget, maxElements: number): DeclaredInput {
  if (typeof raw.name !== 'string') throw bad('every input needs a string "name"');
  const name = raw.name;
  if (spec === undefined) {
    throw bad(`unknown input '${name}'; the model takes ${model.inputs.map((s) => `'${s.name}'`).join(', ') || 'no inputs'}`);
  }
  if (!isV2Datatype(raw.datatype)) throw bad(`input '${name}': datatype ${describe(raw.datatype)} is not a V2 datatype`);
  if (raw.datatype !== spec.datatype) throw bad(`input '${name}': expected datatype ${spec.datatype}, got ${raw.datatype}`);
  const shape = raw.shape;
  if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`input '${name}': shape must be an array of at most ${MAX_RANK} non-negative integers`);
  }
  if (shape.length !== spec.shape.length) {
    throw bad(`input '${name}': expected rank ${spec.shape.length} shape [${spec.shape.join(',')}], got [${shape.join(',')}]`);
  }
  spec.shape.forEach((want, i) => {
    if (want >= 0 && shape[i] !== want) throw bad(`input '${name}': dimension ${i} must be ${want} (model shape [${spec.shape.join(',')}]), got [${shape.join(',')}]`);
  });
  const count = elementCount(shape);
  if (count > maxElements) throw bad(`input '${name}': shape [${shape.join(',')}] has ${count} elements, over the limit of ${maxElements}`);
  if (model.maxBatchSize > 0) {
    const batch = shape[0] as number;
    if (batch < 1) throw bad(`input '${name}': batch dimension must be at least 1`);
    if (batch > model.maxBatchSize) {
      throw new InfergateError('WK_ERR_BATCH_TOO_LARGE', `input '${name}': batch size ${batch} exceeds the model's max batch size ${model.maxBatchSize}`);
    }
  }
  return { name, datatype: raw.datatype, shape: shape as number[], count };
}

/** After each input passed alone: all present, none twice, one batch size across inputs. */
export function checkInputSet(declared: readonly DeclaredInput[], model: ShapeCheckTarget): void {
  const seen = new Set<string>();
  for (const d of declared) {
    if (seen.has(d.name)) throw bad(`input '${d.name}' is given more than once`);
    seen.add(d.name);
  }
  const missing = model.inputs.filter((s) => !seen.has(s.name)).map((s) => `'${s.name}'`);
  if (missing.length > 0) throw bad(`missing input${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  if (model.maxBatchSize > 0 && declared.length > 1) {
    const batch = declared[0]!.shape[0];
    const other = declared.find((d) => d.shape[0] !== batch);
    if (other !== undefined) throw bad(`inputs disagree on the batch size: '${declared[0]!.name}' has ${batch}, '${other.name}' has ${other.shape[0]}`);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * onnxruntime-node carries string tensors as JavaScript strings and C strings: bytes that are not
 * UTF-8 would be silently replaced and a NUL would cut the element short. Refuse both rather than
 * compute on altered data.
 */
export function checkStringElements(name: string, elements: readonly Uint8Array[]): void {
  for (const [i, bytes] of elements.entries()) {
    if (bytes.includes(0)) throw bad(`input '${name}': element ${i} contains a NUL byte, which string tensors cannot carry`);
    try {
      strictUtf8.decode(bytes);
    } catch {
      throw bad(`input '${name}': element ${i} is not valid UTF-8, which string tensors require`);
    }
  }
}
