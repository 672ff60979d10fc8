/**
 * Writes an Mlp as ONNX nodes: Gemm per layer, Relu between layers, Softmax(axis -1) at the end.
 * Gemm with transB = 0 takes our [inputs, outputs] weights as they are, and broadcasts the bias
 * over the batch, so the graph works for any N.
 *
 * @example
 *   const head = mlpGraph(mlp, { input: 'flat', output: 'probabilities', prefix: 'fc' });
 *   // head.nodes: fc1 Gemm, Relu, fc2 Gemm, Softmax; head.initializers: fc1.weight, fc1.bias, ...
 */
import type { Mlp } from './mlp.ts';
import type { FloatTensor, NodeSpec } from './onnx-writer.ts';

export interface GraphPart {
  nodes: NodeSpec[];
  initializers: FloatTensor[];
}

export function mlpGraph(mlp: Mlp, names: { input: string; output: string; prefix: string }): GraphPart {
  const nodes: NodeSpec[] = [];
  const initializers: FloatTensor[] = [];
  let current = names.input;
  mlp.forEach((layer, l) => {
    const id = `${names.prefix}${l + 1}`;
    initializers.push(
      { name: `${id}.weight`, dims: [layer.inputs, layer.outputs], data: layer.weight },
      { name: `${id}.bias`, dims: [layer.outputs], data: layer.bias },
    );
    nodes.push({ op: 'Gemm', inputs: [current, `${id}.weight`, `${id}.bias`], outputs: [`${id}.out`] });
    current = `${id}.out`;
    if (l < mlp.length - 1) {
      nodes.push({ op: 'Relu', inputs: [current], outputs: [`${id}.relu`] });
      current = `${id}.relu`;
    }
  });
  nodes.push({ op: 'Softmax', inputs: [current], outputs: [names.output], attributes: { axis: -1 } });
  return { nodes, initializers };
}
