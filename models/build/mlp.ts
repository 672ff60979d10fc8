/**
 * A small multilayer perceptron — dense layers with ReLU between them and softmax at the end —
 * trained with mini-batch Adam on softmax cross-entropy. Shared by the iris and mnist builds;
 * the cifar10 build borrows only its initialisation for the classifier head.
 *
 * Weights are stored [inputs, outputs] row-major, the layout of ONNX Gemm's B with transB = 0,
 * so they go into the graph unchanged. Training is one sample at a time inside a batch and
 * skips zero inputs: MNIST images are ~80 % background, which makes the first layer ~5x cheaper.
 *
 * @example
 *   const mlp = createMlp([4, 16, 3], rng);
 *   trainMlp(mlp, { inputs, labels }, { epochs: 200, batchSize: 16, learningRate: 0.01, rng });
 *   forwardMlp(mlp, inputs[0]); // class probabilities
 */
import type { Rng } from './rng.ts';

export interface DenseLayer {
  inputs: number;
  outputs: number;
  /** [inputs, outputs], row-major. */
  weight: Float32Array;
  bias: Float32Array;
}

export type Mlp = DenseLayer[];

export interface LabelledSet {
  inputs: Float32Array[];
  labels: number[];
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Starting step size; it follows a cosine down to 0 over the epochs (Loshchilov & Hutter 2017, SGDR). */
  learningRate: number;
  rng: Rng;
  /** Returns the sample to learn from this time (e.g. a shifted copy); called once per sample per epoch. */
  augment?: (input: Float32Array, rng: Rng) => Float32Array;
  /** Called after each epoch, e.g. to log progress. */
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

/**
 * He-normal weights (He et al. 2015, "Delving Deep into Rectifiers": std = sqrt(2 / fan_in),
 * right for layers followed by ReLU) and zero biases.
 */
export function createMlp(sizes: number[], rng: Rng): Mlp {
  const layers: Mlp = [];
  for (let l = 1; l < sizes.length; l++) {
    const inputs = sizes[l - 1] as number;
    const outputs = sizes[l] as number;
    const std = Math.sqrt(2 / inputs);
    const weight = new Float32Array(inputs * outputs).map(() => rng.normal() * std);
    layers.push({ inputs, outputs, weight, bias: new Float32Array(outputs) });
  }
  return layers;
}

/** Class probabilities for one sample. */
export function forwardMlp(mlp: Mlp, input: Float32Array): Float64Array {
  const activations = forwardAll(mlp, input);
  return softmax(activations[activations.length - 1] as Float64Array);
}

/** Share of samples whose most probable class is the label. */
export function accuracy(mlp: Mlp, set: LabelledSet): number {
  let correct = 0;
  set.inputs.forEach((input, i) => {
    if (argmax(forwardMlp(mlp, input)) === set.labels[i]) correct++;
  });
  return correct / set.inputs.length;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

export function trainMlp(mlp: Mlp, set: LabelledSet, options: TrainOptions): void {
  const { rng, batchSize } = options;
  const grads = mlp.map((layer) => ({ weight: new Float64Array(layer.weight.length), bias: new Float64Array(layer.bias.length) }));
  const adam = createAdam(mlp);
  const order = set.inputs.map((_, i) => i);

  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const learningRate = 0.5 * options.learningRate * (1 + Math.cos((Math.PI * epoch) / options.epochs));
    rng.shuffle(order);
    let lossSum = 0;
    for (let start = 0; start < order.length; start += batchSize) {
      const batch = order.slice(start, start + batchSize);
      for (const g of grads) {
        g.weight.fill(0);
        g.bias.fill(0);
      }
      for (const index of batch) {
        const raw = set.inputs[index] as Float32Array;
        const input = options.augment ? options.augment(raw, rng) : raw;
        lossSum += accumulateGradients(mlp, grads, input, set.labels[index] as number);
      }
      adam.step(grads, batch.length, learningRate);
    }
    options.onEpoch?.(epoch, lossSum / order.length);
  }
}

/** Pre-activation outputs of every layer, preceded by the input itself. */
function forwardAll(mlp: Mlp, input: Float32Array): Float64Array[] {
  const outs: Float64Array[] = [Float64Array.from(input)];
  mlp.forEach((layer, l) => {
    // Locals, not property reads, in the hot loops: V8 keeps them in registers.
    const { weight, outputs } = layer;
    const x = outs[l] as Float64Array;
    const z = Float64Array.from(layer.bias);
    const relu = l > 0;
    for (let i = 0; i < layer.inputs; i++) {
      const xi = relu ? Math.max(0, x[i] as number) : (x[i] as number);
      if (xi === 0) continue;
      const row = i * outputs;
      for (let j = 0; j < outputs; j++) z[j] = (z[j] as number) + xi * (weight[row + j] as number);
    }
    outs.push(z);
  });
  return outs;
}

function softmax(logits: Float64Array): Float64Array {
  const max = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

/** Backpropagation for one sample; adds into `grads` and returns the cross-entropy loss. */
function accumulateGradients(mlp: Mlp, grads: Array<{ weight: Float64Array; bias: Float64Array }>, input: Float32Array, label: number): number {
  const outs = forwardAll(mlp, input);
  const probs = softmax(outs[outs.length - 1] as Float64Array);
  const loss = -Math.log(Math.max(probs[label] as number, 1e-12));
  // d(cross-entropy)/d(logits) of a softmax is probs - one_hot(label).
  let delta = probs;
  delta[label] = (delta[label] as number) - 1;

  for (let l = mlp.length - 1; l >= 0; l--) {
    const { weight, outputs } = mlp[l] as DenseLayer;
    const grad = grads[l] as { weight: Float64Array; bias: Float64Array };
    const gradWeight = grad.weight;
    const pre = outs[l] as Float64Array;
    const relu = l > 0;
    const below = relu ? new Float64Array(pre.length) : undefined;
    for (let j = 0; j < outputs; j++) grad.bias[j] = (grad.bias[j] as number) + (delta[j] as number);
    for (let i = 0; i < pre.length; i++) {
      const xi = relu ? Math.max(0, pre[i] as number) : (pre[i] as number);
      // A zero input contributes no weight gradient, and (after ReLU) passes none down.
      if (xi === 0) continue;
      const row = i * outputs;
      for (let j = 0; j < outputs; j++) gradWeight[row + j] = (gradWeight[row + j] as number) + xi * (delta[j] as number);
      if (below) {
        let sum = 0;
        for (let j = 0; j < outputs; j++) sum += (weight[row + j] as number) * (delta[j] as number);
        below[i] = sum;
      }
    }
    if (below) delta = below;
  }
  return loss;
}

/**
 * Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization") with the paper's
 * defaults beta1 = 0.9, beta2 = 0.999, eps = 1e-8.
 */
function createAdam(mlp: Mlp) {
  const beta1 = 0.9;
  const beta2 = 0.999;
  const eps = 1e-8;
  const params = mlp.flatMap((layer) => [layer.weight, layer.bias]);
  const m = params.map((p) => new Float64Array(p.length));
  const v = params.map((p) => new Float64Array(p.length));
  let t = 0;
  return {
    step(grads: Array<{ weight: Float64Array; bias: Float64Array }>, batchSize: number, learningRate: number): void {
      t++;
      const correction1 = 1 - beta1 ** t;
      const correction2 = 1 - beta2 ** t;
      const flatGrads = grads.flatMap((g) => [g.weight, g.bias]);
      params.forEach((p, k) => {
        const g = flatGrads[k] as Float64Array;
        const mk = m[k] as Float64Array;
        const vk = v[k] as Float64Array;
        for (let i = 0; i < p.length; i++) {
          const gi = (g[i] as number) / batchSize;
          mk[i] = beta1 * (mk[i] as number) + (1 - beta1) * gi;
          vk[i] = beta2 * (vk[i] as number) + (1 - beta2) * gi * gi;
          p[i] = (p[i] as number) - (learningRate * ((mk[i] as number) / correction1)) / (Math.sqrt((vk[i] as number) / correction2) + eps);
        }
      });
    },
  };
}
