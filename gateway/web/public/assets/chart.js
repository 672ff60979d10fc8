/**
 * A small SVG line chart for live series over a sliding time window (no library): one polyline
 * per series, a y axis rounded up to a "nice" maximum with three grid lines, and the time axis in
 * seconds ago. The SVG carries role="img" and an aria-label with the latest values, so screen
 * readers get the numbers rather than the drawing.
 *
 * @example
 *   const chart = createLineChart(byId('latency-chart'), { title: 'Latency', unit: 'ms', windowMs: 300_000,
 *     series: [{ key: 'p50', name: 'p50', colour: '#1c4fd6' }, { key: 'p99', name: 'p99', colour: '#b3261e' }] });
 *   chart.push(Date.now(), { p50: 3.1, p99: 12.4 });
 */
import { h, replaceChildren, svg } from './dom.js';

/** The drawing is as wide as its box (in CSS pixels, so labels keep their size), at least this. */
const MIN_WIDTH = 260;
const HEIGHT = 200;
const PAD = { left: 48, right: 10, top: 10, bottom: 24 };
const MIN_SPAN_MS = 60_000;

export function createLineChart(container, { title, unit, windowMs, series }) {
  const points = [];
  const plot = svg('g');
  const axes = svg('g');
  const root = svg('svg', { class: 'chart', role: 'img' }, axes, plot);
  const legend = h('ul', { className: 'legend' }, series.map((s) => h('li', {}, h('span', { className: 'swatch', style: `background:${s.colour}` }), s.name)));
  replaceChildren(container, root, legend);

  const render = () => {
    const width = Math.max(MIN_WIDTH, Math.floor(container.clientWidth));
    root.setAttribute('viewBox', `0 0 ${width} ${HEIGHT}`);
    const now = points.length > 0 ? points[points.length - 1].time : Date.now();
    // The time axis grows with the history (at least a minute) up to the window, so a fresh
    // dashboard shows lines rather than a sliver at the right edge.
    const span = Math.min(windowMs, Math.max(MIN_SPAN_MS, now - (points[0]?.time ?? now)));
    const max = niceCeiling(Math.max(0, ...points.flatMap((p) => series.map((s) => p.values[s.key] ?? 0))));
    const x = (time) => PAD.left + ((time - (now - span)) / span) * (width - PAD.left - PAD.right);
    const y = (value) => HEIGHT - PAD.bottom - (value / max) * (HEIGHT - PAD.top - PAD.bottom);

    replaceChildren(axes,
      [0, 0.5, 1].map((f) => [
        svg('line', { class: 'grid-line', x1: PAD.left, x2: width - PAD.right, y1: y(max * f), y2: y(max * f) }),
        svg('text', { class: 'axis-label', x: PAD.left - 6, y: y(max * f) + 4, 'text-anchor': 'end' }, formatValue(max * f)),
      ]),
      svg('text', { class: 'axis-label', x: PAD.left, y: HEIGHT - 6 }, `${formatSpan(span)} ago`),
      svg('text', { class: 'axis-label', x: width - PAD.right, y: HEIGHT - 6, 'text-anchor': 'end' }, 'now'));
    replaceChildren(plot, series.map((s) => svg('polyline', {
      class: 'series',
      stroke: s.colour,
      points: points.filter((p) => Number.isFinite(p.values[s.key])).map((p) => `${x(p.time).toFixed(1)},${y(p.values[s.key]).toFixed(1)}`).join(' '),
    })));
    const latest = points[points.length - 1];
    root.setAttribute('aria-label', latest === undefined
      ? `${title}: no data yet`
      : `${title}, last ${formatSpan(span)}; now ${series.map((s) => `${s.name} ${formatValue(latest.values[s.key] ?? 0)} ${unit}`).join(', ')}`);
  };

  render();
  // Redraw when the box's width changes (not its height, which the redraw itself sets).
  let drawnWidth = container.clientWidth;
  new ResizeObserver(() => {
    if (container.clientWidth === drawnWidth) return;
    drawnWidth = container.clientWidth;
    render();
  }).observe(container);
  return {
    push(time, values) {
      points.push({ time, values });
      while (points.length > 0 && points[0].time < time - windowMs) points.shift();
      render();
    },
  };
}

/** The smallest of 1, 2, 2.5, 5 x 10^n at or above `value` (at least 1), for a readable axis. */
export function niceCeiling(value) {
  if (!(value > 1)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function formatSpan(ms) {
  return ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}

function formatValue(v) {
  return v >= 100 ? String(Math.round(v)) : String(Number(v.toFixed(v >= 10 ? 1 : 2)));
}
