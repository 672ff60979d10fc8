/**
 * An independent forward pass for the demo models: decodes the .onnx file with onnx-proto and
 * interprets its graph node by node in plain TypeScript (float64 arithmetic, float32 storage).
 * Integration tests use it to check what a worker returns without trusting onnxruntime or the
 * training code in models/build.
 *
 * Only the operators the demo models use are implemented, with ONNX opset 13 semantics
 * (https://onnx.ai/onnx/operators/): Gemm, MatMul, Add, Sub, Mul, Div (numpy broadcasting),
 * Relu, Softmax, Conv and MaxPool (2-D, NOTSET padding), Reshape, Flatten. Anything else throws.
 *
 * @example
 *   const graph = await loadOnnxGraph('models/iris/1/model.onnx');
 *   const { probabilities } = runReference(graph, { features: { dims: [1, 4], data: new Float32Array([5.1, 3.5, 1.4, 0.2]) } });
 */
import { readFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export interface RefTensor {
  dims: number[];
  data: Float32Array;
}

export type AttributeValue = number | number[] | string;

export interface RefNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, AttributeValue>;
}

export interface RefGraph {
  nodes: RefNode[];
  /** Every initializer as float32, int64 ones (e.g. Reshape's shape) included. */
  initializers: Record<string, RefTensor>;
  /** Graph inputs that are not initializers; a string dimension is symbolic ('N'). */
  inputs: Array<{ name: string; dims: Array<number | string> }>;
  outputs: Array<{ name: string; dims: Array<number | string> }>;
}

/** protobufjs hands int64 fields back as Long objects when the long package is present. */
type Int64 = number | { toNumber(): number };
const toNumber = (v: Int64 | null | undefined): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());

export async function loadOnnxGraph(path: string): Promise<RefGraph> {
  const model = onnx.ModelProto.decode(await readFile(path));
  const graph = model.graph;
  if (!graph) throw new Error(`${path}: no graph`);
  const initializers: Record<string, RefTensor> = {};
  for (const t of graph.initializer ?? []) initializers[t.name ?? ''] = decodeTensor(t);
  const valueDims = (v: onnxProto.onnx.IValueInfoProto) =>
    (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : toNumber(d.dimValue)));
  return {
    nodes: (graph.node ?? []).map((n) => ({
      op: n.opType ?? '',
      inputs: n.input ?? [],
      outputs: n.output ?? [],
      attributes: Object.fromEntries((n.attribute ?? []).map((a) => [a.name ?? '', decodeAttribute(a)])),
    })),
    initializers,
    inputs: (graph.input ?? []).filter((v) => !(v.name! in initializers)).map((v) => ({ name: v.name ?? '', dims: valueDims(v) })),
    outputs: (graph.output ?? []).map((v) => ({ name: v.name ?? '', dims: valueDims(v) })),
  };
}

/** Runs the graph; returns every graph output by name. */
export function runReference(graph: RefGraph, inputs: Record<string, RefTensor>): Record<string, RefTensor> {
  const values = new Map<string, RefTensor>(Object.entries(graph.initializers));
  for (const spec of graph.inputs) {
    const given = inputs[spec.name];
    if (!given) throw new Error(`missing input ${spec.name}`);
    if (size(given.dims) !== given.data.length) throw new Error(`input ${spec.name}: dims [${given.dims}] do not match ${given.data.length} values`);
    values.set(spec.name, given);
  }
  for (const node of graph.nodes) {
    const args = node.inputs.map((name) => {
      const value = values.get(name);
      if (!value) throw new Error(`${node.op}: input ${name} is not computed yet`);
      return value;
    });
    const op = OPS[node.op];
    if (!op) throw new Error(`reference-forward does not implement ${node.op}`);
    values.set(node.outputs[0] as string, op(args, node.attributes));
  }
  return Object.fromEntries(graph.outputs.map(({ name }) => [name, values.get(name) as RefTensor]));
}

function decodeTensor(t: onnxProto.onnx.ITensorProto): RefTensor {
  const dims = (t.dims ?? []).map(toNumber);
  const count = size(dims);
  const raw = t.rawData && t.rawData.length > 0 ? new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength) : undefined;
  const data = new Float32Array(count);
  const type = onnx.TensorProto.DataType;
  for (let i = 0; i < count; i++) {
    if (t.dataType === type.FLOAT) data[i] = raw ? raw.getFloat32(i * 4, true) : (t.floatData?.[i] ?? NaN);
    else if (t.dataType === type.INT64) data[i] = raw ? Number(raw.getBigInt64(i * 8, true)) : toNumber(t.int64Data?.[i]);
    else throw new Error(`initializer ${t.name}: data type ${t.dataType} not supported`);
  }
  return { dims, data };
}

function decodeAttribute(a: onnxProto.onnx.IAttributeProto): AttributeValue {
  const kind = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case kind.INT:
      return toNumber(a.i);
    case kind.INTS:
      return (a.ints ?? []).map(toNumber);
    case kind.FLOAT:
      return a.f ?? 0;
    case kind.FLOATS:
      return a.floats ?? [];
    case kind.STRING:
      return new TextDecoder().decode(a.s ?? new Uint8Array());
    default:
      throw new Error(`attribute ${a.name}: type ${a.type} not supported`);
  }
}

type Op = (args: RefTensor[], attrs: Record<string, AttributeValue>) => RefTensor;

const int = (attrs: Record<string, AttributeValue>, name: string, fallback: number): number => {
  const v = attrs[name];
  return typeof v === 'number' ? v : fallback;
};
const ints = (attrs: Record<string, AttributeValue>, name: string, fallback: number[]): number[] => {
  const v = attrs[name];
  return Array.isArray(v) ? v : fallback;
};
const size = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);
const arg = (args: RefTensor[], i: number): RefTensor => {
  const t = args[i];
  if (!t) throw new Error(`missing operand ${i}`);
  return t;
};
const at = (data: Float32Array, i: number): number => data[i] as number;

const OPS: Record<string, Op> = {
  Add: (args) => broadcast(arg(args, 0), arg(args, 1), (a, b) => a + b),
  Sub: (args) => broadcast(arg(args, 0), arg(args, 1), (a, b) => a - b),
  Mul: (args) => broadcast(arg(args, 0), arg(args, 1), (a, b) => a * b),
  Div: (args) => broadcast(arg(args, 0), arg(args, 1), (a, b) => a / b),
  Relu: (args) => ({ dims: arg(args, 0).dims, data: arg(args, 0).data.map((v) => (v > 0 ? v : 0)) }),
  Softmax: softmax,
  Gemm: gemm,
  MatMul: matMul,
  Conv: conv,
  MaxPool: maxPool,
  Reshape: reshape,
  Flatten: (args, attrs) => {
    const x = arg(args, 0);
    const requested = int(attrs, 'axis', 1);
    const axis = requested < 0 ? requested + x.dims.length : requested;
    return { dims: [size(x.dims.slice(0, axis)), size(x.dims.slice(axis))], data: x.data };
  },
};

/** Elementwise a ∘ b with numpy (multidirectional) broadcasting. */
function broadcast(a: RefTensor, b: RefTensor, f: (x: number, y: number) => number): RefTensor {
  const rank = Math.max(a.dims.length, b.dims.length);
  const pad = (dims: number[]) => [...Array<number>(rank - dims.length).fill(1), ...dims];
  const da = pad(a.dims);
  const db = pad(b.dims);
  const dims = da.map((d, i) => {
    const e = db[i] as number;
    if (d !== e && d !== 1 && e !== 1) throw new Error(`cannot broadcast [${a.dims}] with [${b.dims}]`);
    return Math.max(d, e);
  });
  // Strides of 0 along broadcast axes make the source index ignore that coordinate.
  const strides = (ds: number[]) => ds.map((d, i) => (d === 1 ? 0 : size(ds.slice(i + 1))));
  const sa = strides(da);
  const sb = strides(db);
  const out = new Float32Array(size(dims));
  for (let i = 0; i < out.length; i++) {
    let rest = i;
    let ia = 0;
    let ib = 0;
    for (let k = rank - 1; k >= 0; k--) {
      const d = dims[k] as number;
      const coord = rest % d;
      rest = Math.floor(rest / d);
      ia += coord * (sa[k] as number);
      ib += coord * (sb[k] as number);
    }
    out[i] = f(at(a.data, ia), at(b.data, ib));
  }
  return { dims, data: out };
}

/** Softmax along one axis (opset 13: the others are independent rows), max-subtracted for stability. */
function softmax(args: RefTensor[], attrs: Record<string, AttributeValue>): RefTensor {
  const x = arg(args, 0);
  const rank = x.dims.length;
  const axis = (int(attrs, 'axis', -1) + rank) % rank;
  const len = x.dims[axis] as number;
  const inner = size(x.dims.slice(axis + 1));
  const outer = size(x.dims.slice(0, axis));
  const out = new Float32Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < inner; r++) {
      const index = (k: number) => (o * len + k) * inner + r;
      let max = -Infinity;
      for (let k = 0; k < len; k++) max = Math.max(max, at(x.data, index(k)));
      let sum = 0;
      for (let k = 0; k < len; k++) sum += Math.exp(at(x.data, index(k)) - max);
      for (let k = 0; k < len; k++) out[index(k)] = Math.exp(at(x.data, index(k)) - max) / sum;
    }
  }
  return { dims: x.dims, data: out };
}

/** Y = alpha * op(A) · op(B) + beta * C, A and B 2-D, C broadcast to [M, N]. */
function gemm(args: RefTensor[], attrs: Record<string, AttributeValue>): RefTensor {
  const a = arg(args, 0);
  const b = arg(args, 1);
  const transA = int(attrs, 'transA', 0) === 1;
  const transB = int(attrs, 'transB', 0) === 1;
  const alpha = typeof attrs.alpha === 'number' ? attrs.alpha : 1;
  const beta = typeof attrs.beta === 'number' ? attrs.beta : 1;
  const [a0, a1] = a.dims as [number, number];
  const [b0, b1] = b.dims as [number, number];
  const [m, k] = transA ? [a1, a0] : [a0, a1];
  const [kb, n] = transB ? [b1, b0] : [b0, b1];
  if (k !== kb) throw new Error(`Gemm: inner dimensions ${k} and ${kb} differ`);
  const aAt = (i: number, p: number) => at(a.data, transA ? p * a1 + i : i * a1 + p);
  const bAt = (p: number, j: number) => at(b.data, transB ? j * b1 + p : p * b1 + j);
  const product = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += aAt(i, p) * bAt(p, j);
      product[i * n + j] = alpha * sum;
    }
  }
  const result = { dims: [m, n], data: product };
  const c = args[2];
  if (!c) return result;
  return broadcast(result, c, (y, cv) => y + beta * cv);
}

/** Matrix product of A [..., M, K] with a 2-D B [K, N] (the only form the demo models use). */
function matMul(args: RefTensor[]): RefTensor {
  const a = arg(args, 0);
  const b = arg(args, 1);
  if (b.dims.length !== 2 || a.dims.length < 2) throw new Error(`MatMul: [${a.dims}] x [${b.dims}] not supported`);
  const [kb, n] = b.dims as [number, number];
  const k = a.dims[a.dims.length - 1] as number;
  if (k !== kb) throw new Error(`MatMul: inner dimensions ${k} and ${kb} differ`);
  const rows = a.data.length / k;
  const out = new Float32Array(rows * n);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += at(a.data, i * k + p) * at(b.data, p * n + j);
      out[i * n + j] = sum;
    }
  }
  return { dims: [...a.dims.slice(0, -1), n], data: out };
}

interface Window2d {
  kernel: [number, number];
  strides: [number, number];
  /** [top, left, bottom, right], ONNX's [x1_begin, x2_begin, x1_end, x2_end]. */
  pads: [number, number, number, number];
  dilations: [number, number];
}

function window2d(attrs: Record<string, AttributeValue>, kernelFallback: number[]): Window2d {
  const autoPad = attrs.auto_pad;
  if (autoPad !== undefined && autoPad !== 'NOTSET') throw new Error(`auto_pad ${autoPad} not supported`);
  if (int(attrs, 'ceil_mode', 0) !== 0) throw new Error('ceil_mode 1 not supported');
  return {
    kernel: ints(attrs, 'kernel_shape', kernelFallback) as [number, number],
    strides: ints(attrs, 'strides', [1, 1]) as [number, number],
    pads: ints(attrs, 'pads', [0, 0, 0, 0]) as [number, number, number, number],
    dilations: ints(attrs, 'dilations', [1, 1]) as [number, number],
  };
}

/** Output side: floor((in + padBegin + padEnd - dilation * (k - 1) - 1) / stride) + 1. */
function outputSide(input: number, w: Window2d, axis: 0 | 1): number {
  const span = w.dilations[axis] * (w.kernel[axis] - 1) + 1;
  return Math.floor((input + w.pads[axis] + w.pads[axis + 2]! - span) / w.strides[axis]) + 1;
}

/** 2-D convolution (really cross-correlation, as in ONNX) of X [N, C, H, W] with W [M, C/group, kH, kW]. */
function conv(args: RefTensor[], attrs: Record<string, AttributeValue>): RefTensor {
  const x = arg(args, 0);
  const w = arg(args, 1);
  const bias = args[2];
  const [batch, channels, height, width] = x.dims as [number, number, number, number];
  const [filters, perGroup, kh, kw] = w.dims as [number, number, number, number];
  const group = int(attrs, 'group', 1);
  if (perGroup * group !== channels) throw new Error(`Conv: ${channels} channels do not fit weights [${w.dims}] with group ${group}`);
  const win = window2d(attrs, [kh, kw]);
  const oh = outputSide(height, win, 0);
  const ow = outputSide(width, win, 1);
  const filtersPerGroup = filters / group;
  const out = new Float32Array(batch * filters * oh * ow);
  for (let n = 0; n < batch; n++) {
    for (let f = 0; f < filters; f++) {
      const firstChannel = Math.floor(f / filtersPerGroup) * perGroup;
      for (let y = 0; y < oh; y++) {
        for (let xo = 0; xo < ow; xo++) {
          let sum = bias ? at(bias.data, f) : 0;
          for (let c = 0; c < perGroup; c++) {
            for (let i = 0; i < kh; i++) {
              const iy = y * win.strides[0] - win.pads[0] + i * win.dilations[0];
              if (iy < 0 || iy >= height) continue;
              for (let j = 0; j < kw; j++) {
                const ix = xo * win.strides[1] - win.pads[1] + j * win.dilations[1];
                if (ix < 0 || ix >= width) continue;
                sum += at(x.data, ((n * channels + firstChannel + c) * height + iy) * width + ix) * at(w.data, ((f * perGroup + c) * kh + i) * kw + j);
              }
            }
          }
          out[((n * filters + f) * oh + y) * ow + xo] = sum;
        }
      }
    }
  }
  return { dims: [batch, filters, oh, ow], data: out };
}

/** 2-D max pooling of X [N, C, H, W]; padding cells never win (they are -inf, per the spec). */
function maxPool(args: RefTensor[], attrs: Record<string, AttributeValue>): RefTensor {
  const x = arg(args, 0);
  const [batch, channels, height, width] = x.dims as [number, number, number, number];
  const win = window2d(attrs, []);
  const oh = outputSide(height, win, 0);
  const ow = outputSide(width, win, 1);
  const out = new Float32Array(batch * channels * oh * ow);
  for (let plane = 0; plane < batch * channels; plane++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        let max = -Infinity;
        for (let i = 0; i < win.kernel[0]; i++) {
          const iy = y * win.strides[0] - win.pads[0] + i * win.dilations[0];
          if (iy < 0 || iy >= height) continue;
          for (let j = 0; j < win.kernel[1]; j++) {
            const ix = xo * win.strides[1] - win.pads[1] + j * win.dilations[1];
            if (ix < 0 || ix >= width) continue;
            max = Math.max(max, at(x.data, (plane * height + iy) * width + ix));
          }
        }
        out[(plane * oh + y) * ow + xo] = max;
      }
    }
  }
  return { dims: [batch, channels, oh, ow], data: out };
}

/** Reshape with ONNX's 0 (copy the input's dimension) and -1 (infer) rules; allowzero = 0. */
function reshape(args: RefTensor[]): RefTensor {
  const x = arg(args, 0);
  const requested = Array.from(arg(args, 1).data);
  const dims = requested.map((d, i) => (d === 0 ? (x.dims[i] as number) : d));
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = dims.map((d) => (d === -1 ? x.data.length / known : d));
  if (size(resolved) !== x.data.length) throw new Error(`Reshape: [${x.dims}] cannot become [${requested}]`);
  return { dims: resolved, data: x.data };
}
