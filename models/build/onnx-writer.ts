/**
 * Builds and encodes ONNX models with onnx-proto: just enough of ModelProto for the demo models
 * (FP32 initialisers, integer attributes, one dynamic batch axis).
 *
 * Every model is IR version 8 with opset 13 of the default domain, so onnxruntime 1.x loads it.
 * Nothing time- or host-dependent is written, so the same graph always encodes to the same bytes.
 *
 * @example
 *   const bytes = encodeModel({
 *     name: 'double',
 *     inputs: [{ name: 'x', dims: ['N', 1] }],
 *     outputs: [{ name: 'y', dims: ['N', 1] }],
 *     initializers: [{ name: 'two', dims: [1], data: new Float32Array([2]) }],
 *     nodes: [{ op: 'Mul', inputs: ['x', 'two'], outputs: ['y'] }],
 *   });
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const IR_VERSION = 8;
export const OPSET_VERSION = 13;

/** A graph input or output; a string dimension is symbolic (e.g. 'N' for the batch). */
export interface ValueSpec {
  name: string;
  dims: Array<number | string>;
  /** Element type; FLOAT unless given (the demo models are all FP32; tests need a few others). */
  elemType?: 'FLOAT' | 'BOOL' | 'INT64' | 'STRING';
}

export interface FloatTensor {
  name: string;
  dims: number[];
  data: Float32Array;
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  /** Integer (INT) or integer-list (INTS) attributes; the demo graphs need no other kind. */
  attributes?: Record<string, number | number[]>;
}

export interface GraphSpec {
  name: string;
  docString?: string;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  initializers: FloatTensor[];
  nodes: NodeSpec[];
}

/** Encodes a whole model; the result is what goes into models/<name>/1/model.onnx. */
export function encodeModel(spec: GraphSpec): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET_VERSION }],
    producerName: 'infergate-models',
    producerVersion: '1',
    docString: spec.docString ?? '',
    graph: {
      name: spec.name,
      node: spec.nodes.map((node, index) => nodeProto(node, index)),
      initializer: spec.initializers.map(tensorProto),
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

function nodeProto(spec: NodeSpec, index: number): onnxProto.onnx.INodeProto {
  const attribute = Object.entries(spec.attributes ?? {}).map(([name, value]) => {
    const values = Array.isArray(value) ? value : [value];
    if (!values.every(Number.isInteger)) throw new Error(`${spec.op} attribute ${name}: only integers are supported`);
    return Array.isArray(value)
      ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: value }
      : { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
  });
  // Names only help when reading the graph in Netron; the index keeps them unique.
  return { opType: spec.op, name: `${spec.op.toLowerCase()}_${index}`, input: spec.inputs, output: spec.outputs, attribute };
}

function tensorProto(tensor: FloatTensor): onnxProto.onnx.ITensorProto {
  const count = tensor.dims.reduce((a, b) => a * b, 1);
  if (count !== tensor.data.length) {
    throw new Error(`initializer ${tensor.name}: dims [${tensor.dims}] need ${count} values, got ${tensor.data.length}`);
  }
  // raw_data is little-endian by the ONNX spec, whatever the host's byte order.
  const raw = new Uint8Array(tensor.data.length * 4);
  const view = new DataView(raw.buffer);
  tensor.data.forEach((value, i) => view.setFloat32(i * 4, value, true));
  return { name: tensor.name, dims: tensor.dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw };
}

function valueInfo(spec: ValueSpec): onnxProto.onnx.IValueInfoProto {
  const dim = spec.dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
  return { name: spec.name, type: { tensorType: { elemType: onnx.TensorProto.DataType[spec.elemType ?? 'FLOAT'], shape: { dim } } } };
}
