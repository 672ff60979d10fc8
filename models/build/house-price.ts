/**
 * house-price: linear regression price = intercept + slope * sqft, one MatMul and one Add.
 *
 * Fitted by ordinary least squares in closed form to a synthetic market that is documented
 * here and in models/README.md: 200 houses, sqft uniform in [500, 3500),
 * price = 50 000 + 150 * sqft + N(0, 20 000^2), all drawn from a seeded RNG.
 */
import type { DemoModel } from './demo-model.ts';
import { createRng } from './rng.ts';

const SEED = 0x4853;
const HOUSES = 200;
export const MARKET = { baseUsd: 50_000, usdPerSqft: 150, noiseStdUsd: 20_000, minSqft: 500, maxSqft: 3500 };

export interface LinearFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination on the fitted data. */
  rSquared: number;
}

export function syntheticHouses(): { sqft: number[]; price: number[] } {
  const rng = createRng(SEED);
  const sqft: number[] = [];
  const price: number[] = [];
  for (let i = 0; i < HOUSES; i++) {
    const size = rng.uniform(MARKET.minSqft, MARKET.maxSqft);
    sqft.push(size);
    price.push(MARKET.baseUsd + MARKET.usdPerSqft * size + MARKET.noiseStdUsd * rng.normal());
  }
  return { sqft, price };
}

/** Least squares for one feature: slope = cov(x, y) / var(x), the normal equations solved by hand. */
export function fitLine(x: number[], y: number[]): LinearFit {
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const mx = mean(x);
  const my = mean(y);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  x.forEach((xi, i) => {
    const dy = (y[i] as number) - my;
    sxy += (xi - mx) * dy;
    sxx += (xi - mx) ** 2;
    syy += dy ** 2;
  });
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const residual = x.reduce((sum, xi, i) => sum + ((y[i] as number) - (intercept + slope * xi)) ** 2, 0);
  return { slope, intercept, rSquared: 1 - residual / syy };
}

export function buildHousePrice(): DemoModel {
  const { sqft, price } = syntheticHouses();
  const fit = fitLine(sqft, price);
  // The graph computes in float32; predict with the rounded parameters so the check compares like with like.
  const slope = Math.fround(fit.slope);
  const intercept = Math.fround(fit.intercept);
  return {
    name: 'house-price',
    graph: {
      name: 'house-price',
      docString: 'Linear regression of house price (USD) on floor area (sqft), least squares on a seeded synthetic market.',
      inputs: [{ name: 'sqft', dims: ['N', 1] }],
      outputs: [{ name: 'price', dims: ['N', 1] }],
      initializers: [
        { name: 'slope', dims: [1, 1], data: new Float32Array([slope]) },
        { name: 'intercept', dims: [1], data: new Float32Array([intercept]) },
      ],
      nodes: [
        { op: 'MatMul', inputs: ['sqft', 'slope'], outputs: ['scaled'] },
        { op: 'Add', inputs: ['scaled', 'intercept'], outputs: ['price'] },
      ],
    },
    config: {
      maxBatchSize: 64,
      dynamicBatching: { maxQueueDelayMs: 0 },
      description:
        `Linear regression: price (USD) = ${intercept.toFixed(0)} + ${slope.toFixed(2)} * sqft, fitted to 200 synthetic houses ` +
        `(R² ${fit.rSquared.toFixed(3)}). Input "sqft": [N,1] floor area in square feet. Output "price": [N,1] in USD.`,
    },
    metrics: {
      slope: `${fit.slope.toFixed(2)} USD/sqft (true 150)`,
      intercept: `${fit.intercept.toFixed(0)} USD (true 50000)`,
      'R²': fit.rSquared.toFixed(4),
    },
    check: {
      samples: [500, 1000, 1500, 2500, 3500].map((s) => new Float32Array([s])),
      expected: ([s]) => [intercept + slope * (s as number)],
    },
  };
}
