/**
 * Reads a Prometheus text exposition: one metric summed over the samples that match some labels
 * ({@link metricSum}), or a whole scrape kept for several reads and before/after comparisons
 * ({@link scrapeMetrics}).
 *
 * @example
 *   const before = await scrapeMetrics(gateway.url);
 *   // ... inject a fault ...
 *   const after = await scrapeMetrics(gateway.url);
 *   after.delta(before, 'infergate_gateway_retries_total', { reason: 'connect' }); // → 3
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricsScrape {
  readonly samples: readonly Sample[];
  /** The sum of `name`'s samples whose labels include `labels`; 0 when there is none. */
  sum(name: string, labels?: Record<string, string>): number;
  /** `sum(name, labels)` here minus the same in `before`. */
  delta(before: MetricsScrape, name: string, labels?: Record<string, string>): number;
  /** The distinct values one label takes among `name`'s samples. */
  labelValues(name: string, label: string): string[];
}

const SAMPLE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): MetricsScrape {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (m === null) continue;
    samples.push({ name: m[1]!, labels: Object.fromEntries([...(m[2] ?? '').matchAll(LABEL)].map((l) => [l[1], l[2]])), value: Number(m[3]) });
  }
  const sum = (name: string, labels: Record<string, string> = {}): number => {
    let total = 0;
    for (const s of samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
    return total;
  };
  return {
    samples,
    sum,
    delta: (before, name, labels = {}) => sum(name, labels) - before.sum(name, labels),
    labelValues: (name, label) => [...new Set(samples.filter((s) => s.name === name && s.labels[label] !== undefined).map((s) => s.labels[label]!))],
  };
}

/** Fetches `${url}/metrics` once and parses it. */
export async function scrapeMetrics(url: string): Promise<MetricsScrape> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`GET ${url}/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

/** Reads a Prometheus text exposition and sums the samples of one metric that match some labels. */
export async function metricSum(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return (await scrapeMetrics(url)).sum(name, labels);
}
