/**
 * Small hand-written SVG charts for bench/report.md: line charts (throughput or latency against
 * concurrency, workers, time) and grouped bar charts (per-strategy latency), with axes, ticks, a
 * legend and a title. Linear or log10 scales. Every text goes through escapeXml; points that are
 * not finite (or not positive on a log scale) are left out, so a missing measurement leaves a gap
 * rather than a wrong line. Pure functions: test/unit/bench/svg-chart.test.ts checks scales,
 * ticks and escaping.
 *
 * @example
 *   const svg = lineChart({ title: 'req/s vs concurrency', xLabel: 'concurrency', yLabel: 'req/s',
 *     xScale: 'log', series: [{ name: 'gateway p2c', points: [{ x: 1, y: 1500 }, { x: 16, y: 3300 }] }] });
 */

export type ScaleKind = 'linear' | 'log';

export interface Point {
  x: number;
  y: number;
}

export interface Series {
  name: string;
  points: readonly Point[];
  /** Drawn dashed (e.g. a reference or a limit). */
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  xScale?: ScaleKind;
  yScale?: ScaleKind;
  /** Tick positions on x; default: the distinct x values when there are few, else nice ticks. */
  xTicks?: readonly number[];
  width?: number;
  height?: number;
}

export interface BarGroup {
  label: string;
  /** One bar per entry, in the same order in every group (the legend follows the first group). */
  bars: ReadonlyArray<{ name: string; value: number }>;
}

export interface BarChartOptions {
  title: string;
  yLabel: string;
  groups: readonly BarGroup[];
  yScale?: ScaleKind;
  width?: number;
  height?: number;
}

/** Colour-blind-friendly palette (Okabe–Ito, then Tableau), cycled. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000', '#8C564B', '#7F7F7F', '#BCBD22', '#17BECF'];

const MARGIN = { top: 44, right: 280, bottom: 52, left: 72 };
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Maps `domain` onto `range` (pixels), linearly or by log10. */
export function scale(kind: ScaleKind, domain: readonly [number, number], range: readonly [number, number]): (v: number) => number {
  const f = kind === 'log' ? Math.log10 : (v: number): number => v;
  const d0 = f(domain[0]);
  const d1 = f(domain[1]);
  const span = d1 - d0 || 1;
  return (v) => range[0] + ((f(v) - d0) / span) * (range[1] - range[0]);
}

/** About `count` round ticks (1, 2, 5 × 10^k steps) covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) return [min];
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  // The 1/2/5 multiple nearest to the raw step on a log scale (d3's thresholds √50, √10, √2).
  const r = raw / power;
  const step = (r >= Math.sqrt(50) ? 10 : r >= Math.sqrt(10) ? 5 : r >= Math.SQRT2 ? 2 : 1) * power;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Powers of ten within [min, max] (min > 0), with 2 and 5 multiples when that gives fewer than 3. */
export function logTicks(min: number, max: number): number[] {
  if (!(min > 0) || !(max >= min)) return [];
  const from = Math.floor(Math.log10(min));
  const to = Math.ceil(Math.log10(max));
  const inRange = (v: number): boolean => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
  const powers: number[] = [];
  for (let e = from; e <= to; e++) powers.push(10 ** e);
  let ticks = powers.filter(inRange);
  if (ticks.length < 3) ticks = powers.flatMap((p) => [p, 2 * p, 5 * p]).filter(inRange);
  return ticks.map((v) => Number(v.toPrecision(12)));
}

/** Short tick label: 1500 → "1.5k", 63000 → "63k", 0.25 → "0.25". */
export function formatTick(v: number): string {
  const abs = Math.abs(v);
  if (abs >= 1e6) return `${trim(v / 1e6)}M`;
  if (abs >= 1e3) return `${trim(v / 1e3)}k`;
  return trim(v);
}

const trim = (v: number): string => String(Number(v.toPrecision(3)));

/** [min, max] of the values that can be drawn on `kind`, padded a little; undefined when none can. */
function extent(values: readonly number[], kind: ScaleKind, zeroBased: boolean): [number, number] | undefined {
  const usable = values.filter((v) => Number.isFinite(v) && (kind === 'linear' || v > 0));
  if (usable.length === 0) return undefined;
  let lo = Math.min(...usable);
  let hi = Math.max(...usable);
  if (kind === 'log') return lo === hi ? [lo / 2, hi * 2] : [lo / 1.15, hi * 1.15];
  if (zeroBased) lo = Math.min(0, lo);
  if (lo === hi) return [lo - 1, hi + 1];
  return [lo, hi + (hi - lo) * 0.05];
}

const drawable = (kind: ScaleKind) => (p: Point): boolean => Number.isFinite(p.x) && Number.isFinite(p.y) && (kind === 'linear' || p.y > 0);

function frame(width: number, height: number, title: string, xLabel: string, yLabel: string): string[] {
  const plotH = height - MARGIN.top - MARGIN.bottom;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="600">${escapeXml(title)}</text>`,
    `<text x="${MARGIN.left + (width - MARGIN.left - MARGIN.right) / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(xLabel)}</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
  ];
}

function yAxis(kind: ScaleKind, domain: [number, number], y: (v: number) => number, x0: number, x1: number): string[] {
  const ticks = kind === 'log' ? logTicks(domain[0], domain[1]) : niceTicks(domain[0], domain[1]);
  const out = [`<line x1="${x0}" y1="${y(domain[0]).toFixed(1)}" x2="${x0}" y2="${y(domain[1]).toFixed(1)}" stroke="#333"/>`];
  for (const t of ticks) {
    const py = y(t).toFixed(1);
    out.push(`<line x1="${x0}" y1="${py}" x2="${x1}" y2="${py}" stroke="#e5e5e5"/>`, `<text x="${x0 - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatTick(t))}</text>`);
  }
  return out;
}

function legend(names: readonly string[], x: number, y: number, dashed: (i: number) => boolean = () => false): string[] {
  return names.flatMap((name, i) => {
    const py = y + i * 18;
    const colour = PALETTE[i % PALETTE.length]!;
    return [
      `<line x1="${x}" y1="${py}" x2="${x + 22}" y2="${py}" stroke="${colour}" stroke-width="3"${dashed(i) ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${x + 28}" y="${py}" dominant-baseline="middle">${escapeXml(name)}</text>`,
    ];
  });
}

export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 940;
  const height = options.height ?? 420;
  const xKind = options.xScale ?? 'linear';
  const yKind = options.yScale ?? 'linear';
  const plot = { x0: MARGIN.left, x1: width - MARGIN.right, y0: height - MARGIN.bottom, y1: MARGIN.top };
  const out = frame(width, height, options.title, options.xLabel, options.yLabel);
  const points = options.series.flatMap((s) => s.points.filter(drawable(yKind)));
  const xs = points.map((p) => p.x).filter((v) => xKind === 'linear' || v > 0);
  const xDomain = extent(xs, xKind, false);
  const yDomain = extent(points.map((p) => p.y), yKind, true);
  if (xDomain === undefined || yDomain === undefined) {
    out.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#888">no data</text>`, '</svg>');
    return out.join('\n');
  }
  if (xKind === 'linear') xDomain[1] = Math.max(...xs); // no padding on x: the last point sits on the edge
  const x = scale(xKind, xDomain, [plot.x0 + 8, plot.x1 - 8]);
  const y = scale(yKind, yDomain, [plot.y0, plot.y1]);
  out.push(...yAxis(yKind, yDomain, y, plot.x0, plot.x1));
  out.push(`<line x1="${plot.x0}" y1="${plot.y0}" x2="${plot.x1}" y2="${plot.y0}" stroke="#333"/>`);
  const distinctX = [...new Set(xs)].sort((a, b) => a - b);
  const xTicks = options.xTicks ?? (distinctX.length <= 12 ? distinctX : xKind === 'log' ? logTicks(xDomain[0], xDomain[1]) : niceTicks(xDomain[0], xDomain[1], 8));
  for (const t of xTicks) {
    const px = x(t).toFixed(1);
    out.push(`<line x1="${px}" y1="${plot.y0}" x2="${px}" y2="${plot.y0 + 5}" stroke="#333"/>`, `<text x="${px}" y="${plot.y0 + 18}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  }
  options.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const drawn = s.points.filter(drawable(yKind)).filter((p) => xKind === 'linear' || p.x > 0).sort((a, b) => a.x - b.x);
    if (drawn.length === 0) return;
    const path = drawn.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p.x).toFixed(1)} ${y(p.y).toFixed(1)}`).join(' ');
    out.push(`<path d="${path}" fill="none" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    if (s.dashed) return; // a reference line: no markers
    for (const p of drawn) out.push(`<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="3" fill="${colour}"><title>${escapeXml(`${s.name}: ${formatTick(p.x)} → ${formatTick(p.y)}`)}</title></circle>`);
  });
  out.push(...legend(options.series.map((s) => s.name), plot.x1 + 16, plot.y1 + 6, (i) => options.series[i]?.dashed === true), '</svg>');
  return out.join('\n');
}

export function barChart(options: BarChartOptions): string {
  const width = options.width ?? 940;
  const height = options.height ?? 420;
  const yKind = options.yScale ?? 'linear';
  const plot = { x0: MARGIN.left, x1: width - MARGIN.right, y0: height - MARGIN.bottom, y1: MARGIN.top };
  const out = frame(width, height, options.title, '', options.yLabel);
  const names = options.groups[0]?.bars.map((b) => b.name) ?? [];
  const values = options.groups.flatMap((g) => g.bars.map((b) => b.value));
  const yDomain = extent(values, yKind, true);
  if (yDomain === undefined || options.groups.length === 0) {
    out.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#888">no data</text>`, '</svg>');
    return out.join('\n');
  }
  const y = scale(yKind, yDomain, [plot.y0, plot.y1]);
  out.push(...yAxis(yKind, yDomain, y, plot.x0, plot.x1));
  out.push(`<line x1="${plot.x0}" y1="${plot.y0}" x2="${plot.x1}" y2="${plot.y0}" stroke="#333"/>`);
  const groupWidth = (plot.x1 - plot.x0) / options.groups.length;
  const barWidth = (groupWidth * 0.8) / Math.max(1, names.length);
  const base = yKind === 'log' ? plot.y0 : y(Math.max(0, yDomain[0]));
  options.groups.forEach((g, gi) => {
    const gx = plot.x0 + gi * groupWidth + groupWidth * 0.1;
    out.push(`<text x="${(plot.x0 + (gi + 0.5) * groupWidth).toFixed(1)}" y="${plot.y0 + 18}" text-anchor="middle">${escapeXml(g.label)}</text>`);
    g.bars.forEach((b, bi) => {
      if (!Number.isFinite(b.value) || (yKind === 'log' && b.value <= 0)) return;
      const top = y(b.value);
      out.push(
        `<rect x="${(gx + bi * barWidth).toFixed(1)}" y="${Math.min(top, base).toFixed(1)}" width="${(barWidth * 0.92).toFixed(1)}" height="${Math.abs(base - top).toFixed(1)}" fill="${PALETTE[bi % PALETTE.length]}"><title>${escapeXml(`${g.label}, ${b.name}: ${formatTick(b.value)}`)}</title></rect>`,
      );
    });
  });
  out.push(...legend(names, plot.x1 + 16, plot.y1 + 6), '</svg>');
  return out.join('\n');
}
