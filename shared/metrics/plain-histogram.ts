/**
 * A Prometheus histogram whose children are bound to one label set once and count in plain arrays.
 * prom-client's Histogram converts, validates and hashes the labels on every observe, bound child
 * or not: ≈ 0.5–0.8 µs each, three per request on the worker's main thread
 * (docs/performance-worker.md). Here an observe is a bucket search and three additions.
 *
 * prom-client's registry serialises it exactly as its own histograms: same series names
 * (`_bucket` with `le`, `_sum`, `_count`), same label order, label sets in creation order.
 *
 * @example
 *   const h = new PlainHistogram({ name: 'x_seconds', help: '...', buckets: [0.1, 1], registers: [registry] });
 *   const observe = h.child({ model: 'iris', version: '1' });
 *   observe(0.05);
 */
import type { Metric, Registry } from 'prom-client';

interface Child {
  labels: Record<string, string>;
  /** Per bucket, not cumulative; values above the last bound are only in `count`. */
  buckets: number[];
  sum: number;
  count: number;
}

interface Value {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  /** As prom-client's: null on buckets, undefined on sum and count (no exemplars here). */
  exemplar: null | undefined;
}

export class PlainHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly #bounds: readonly number[];
  readonly #children = new Map<string, Child>();

  constructor(config: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = config.name;
    this.help = config.help;
    this.#bounds = [...config.buckets].sort((a, b) => a - b);
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The observe function of one label set (created on first use, then shared). */
  child(labels: Record<string, string>): (value: number) => void {
    const key = JSON.stringify(labels);
    let child = this.#children.get(key);
    if (child === undefined) {
      child = { labels: { ...labels }, buckets: new Array<number>(this.#bounds.length).fill(0), sum: 0, count: 0 };
      this.#children.set(key, child);
    }
    const bounds = this.#bounds;
    const counted = child;
    return (value) => {
      if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
      for (let i = 0; i < bounds.length; i++) {
        if (value <= bounds[i]!) {
          counted.buckets[i]!++;
          break;
        }
      }
      counted.sum += value;
      counted.count++;
    };
  }

  reset(): void {
    for (const child of this.#children.values()) {
      child.buckets.fill(0);
      child.sum = 0;
      child.count = 0;
    }
  }

  /** For the text format: buckets carry `le`, the label set rides along as shared labels (as prom-client's). */
  async getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const values: Value[] = [];
    for (const child of this.#children.values()) {
      if (child.count === 0) continue; // as prom-client: a label set appears once observed
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += child.buckets[i]!;
        values.push({ labels: { le: bound }, sharedLabels: child.labels, value: cumulative, metricName: `${this.name}_bucket`, exemplar: null });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: child.labels, value: child.count, metricName: `${this.name}_bucket`, exemplar: null },
        { labels: {}, sharedLabels: child.labels, value: child.sum, metricName: `${this.name}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels: child.labels, value: child.count, metricName: `${this.name}_count`, exemplar: undefined },
      );
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** For JSON (getMetricsAsJSON): the label set merged into each value's labels, as prom-client's get(). */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const metric = await this.getForPromString();
    metric.values = metric.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return metric;
  }
}
