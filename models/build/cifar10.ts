/**
 * cifar10: the classic small CNN of the PyTorch "Training a classifier" tutorial (LeNet-5 shaped:
 * conv 5x5 3->6, pool, conv 5x5 6->16, pool, dense 400-120-84-10), with seeded random weights.
 *
 * It is NOT trained — there is no CIFAR-10 data offline — so its answers are meaningless. It is
 * here to exercise convolutions, a bigger input tensor and throughput.
 */
import type { DemoModel } from './demo-model.ts';
import { createMlp } from './mlp.ts';
import { mlpGraph } from './mlp-graph.ts';
import type { FloatTensor, NodeSpec } from './onnx-writer.ts';
import { createRng, type Rng } from './rng.ts';

const SEED = 0xc1fa;
const SIDE = 32;
export const CIFAR10_LABELS = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export function buildCifar10(): DemoModel {
  const rng = createRng(SEED);
  const conv1 = convLayer('conv1', 3, 6, 5, rng);
  const conv2 = convLayer('conv2', 6, 16, 5, rng);
  // 32 -conv5-> 28 -pool-> 14 -conv5-> 10 -pool-> 5, so 16 * 5 * 5 = 400 features.
  const head = mlpGraph(createMlp([400, 120, 84, 10], rng), { input: 'features', output: 'probabilities', prefix: 'fc' });
  const pool = (input: string, output: string): NodeSpec => ({
    op: 'MaxPool',
    inputs: [input],
    outputs: [output],
    attributes: { kernel_shape: [2, 2], strides: [2, 2] },
  });
  const samples = Array.from({ length: 5 }, () => new Float32Array(3 * SIDE * SIDE).map(() => rng.next()));
  return {
    name: 'cifar10',
    graph: {
      name: 'cifar10',
      docString: 'Small CNN with the CIFAR-10 shapes and seeded random (untrained) weights: demonstrates serving and throughput, not accuracy.',
      inputs: [{ name: 'image', dims: ['N', 3, SIDE, SIDE] }],
      outputs: [{ name: 'probabilities', dims: ['N', 10] }],
      initializers: [...conv1.initializers, ...conv2.initializers, ...head.initializers],
      nodes: [
        conv1.node('image', 'conv1.out'),
        { op: 'Relu', inputs: ['conv1.out'], outputs: ['conv1.relu'] },
        pool('conv1.relu', 'pool1.out'),
        conv2.node('pool1.out', 'conv2.out'),
        { op: 'Relu', inputs: ['conv2.out'], outputs: ['conv2.relu'] },
        pool('conv2.relu', 'pool2.out'),
        { op: 'Flatten', inputs: ['pool2.out'], outputs: ['features'], attributes: { axis: 1 } },
        ...head.nodes,
      ],
    },
    config: {
      maxBatchSize: 32,
      dynamicBatching: { maxQueueDelayMs: 0 },
      labels: { probabilities: CIFAR10_LABELS },
      description:
        'UNTRAINED small CNN with CIFAR-10 shapes (seeded random weights): for serving and throughput demos, its predictions mean nothing. ' +
        'Input "image": [N,3,32,32] RGB planes in [0,1]. Output "probabilities": [N,10] softmax over the CIFAR-10 classes.',
    },
    metrics: { accuracy: 'n/a: untrained, seeded random weights' },
    check: { samples },
  };
}

/**
 * He-normal kernels (std = sqrt(2 / fan_in), fan_in = inputs * k * k). Biases are small and
 * non-zero, unlike in training, so that tests comparing runtimes also exercise the bias add.
 */
function convLayer(name: string, inputs: number, outputs: number, kernel: number, rng: Rng) {
  const fanIn = inputs * kernel * kernel;
  const std = Math.sqrt(2 / fanIn);
  const initializers: FloatTensor[] = [
    { name: `${name}.weight`, dims: [outputs, inputs, kernel, kernel], data: new Float32Array(outputs * fanIn).map(() => rng.normal() * std) },
    { name: `${name}.bias`, dims: [outputs], data: new Float32Array(outputs).map(() => rng.normal() * 0.1) },
  ];
  return {
    initializers,
    node: (input: string, output: string): NodeSpec => ({
      op: 'Conv',
      inputs: [input, `${name}.weight`, `${name}.bias`],
      outputs: [output],
      attributes: { kernel_shape: [kernel, kernel] },
    }),
  };
}
