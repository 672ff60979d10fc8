// The hand-written SVG charts of bench/report.md: scales map domains onto pixels (linear and log),
// ticks are round and cover the data, every text is escaped, and points that cannot be drawn leave
// a gap instead of a wrong line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChart, escapeXml, formatTick, lineChart, logTicks, niceTicks, scale } from '../../bench/lib/svg-chart.ts';

test('linear and log scales map the domain ends onto the range ends', () => {
  const linear = scale('linear', [0, 200], [50, 450]);
  assert.equal(linear(0), 50);
  assert.equal(linear(200), 450);
  assert.equal(linear(50), 150);
  const log = scale('log', [1, 1000], [400, 100]); // y grows upwards: range reversed
  assert.equal(log(1), 400);
  assert.equal(log(1000), 100);
  assert.ok(Math.abs(log(10) - 300) < 1e-9, 'one decade of three is a third of the way');
  const flat = scale('linear', [5, 5], [0, 100]);
  assert.ok(Number.isFinite(flat(5)), 'an empty domain does not divide by zero');
});

test('nice ticks are 1/2/5 steps covering the range; log ticks are powers of ten', () => {
  assert.deepEqual(niceTicks(0, 100, 5), [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(niceTicks(0, 0.9, 4), [0, 0.2, 0.4, 0.6, 0.8]);
  const ticks = niceTicks(137, 4321, 5);
  const step = ticks[1]! - ticks[0]!;
  assert.ok([1, 2, 5].includes(step / 10 ** Math.floor(Math.log10(step))), `step ${step} is 1, 2 or 5 × 10^k`);
  assert.ok(ticks[0]! >= 137 && ticks.at(-1)! <= 4321 && ticks.at(-1)! + step > 4321);
  assert.deepEqual(logTicks(1, 64), [1, 2, 5, 10, 20, 50], 'under three powers of ten in range: 2 and 5 multiples too');
  assert.deepEqual(logTicks(900, 120_000), [1000, 10_000, 100_000]);
  assert.deepEqual(logTicks(3, 40), [5, 10, 20]);
  assert.deepEqual(logTicks(0, 10), [], 'no log ticks for a domain touching zero');
});

test('tick labels are short', () => {
  assert.equal(formatTick(1500), '1.5k');
  assert.equal(formatTick(63_786), '63.8k');
  assert.equal(formatTick(2_000_000), '2M');
  assert.equal(formatTick(0.25), '0.25');
  assert.equal(formatTick(16), '16');
});

test('titles, labels and series names are escaped', () => {
  assert.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
  const svg = lineChart({ title: 'p99 <ms> & "tail"', xLabel: 'c < 64', yLabel: "it's", series: [{ name: 'gateway <p2c>', points: [{ x: 1, y: 2 }, { x: 16, y: 3 }] }] });
  assert.ok(svg.includes('p99 &lt;ms&gt; &amp; &quot;tail&quot;'));
  assert.ok(svg.includes('gateway &lt;p2c&gt;'));
  // Every '<' left in the document opens a tag: the text has none of its own.
  for (const m of svg.matchAll(/<(?!\/?(svg|rect|text|line|path|circle|title)\b)/g)) assert.fail(`unescaped '<' at ${m.index}`);
});

test('a line chart draws one path per series through its drawable points, in x order', () => {
  const svg = lineChart({
    title: 't',
    xLabel: 'x',
    yLabel: 'y',
    xScale: 'log',
    yScale: 'log',
    series: [
      { name: 'a', points: [{ x: 64, y: 300 }, { x: 1, y: 100 }, { x: 16, y: 200 }] },
      { name: 'b', points: [{ x: 1, y: Number.NaN }, { x: 16, y: 0 }, { x: 64, y: 50 }] },
    ],
  });
  const paths = [...svg.matchAll(/<path d="([^"]+)"/g)].map((m) => m[1]!);
  assert.equal(paths.length, 2);
  const xs = [...paths[0]!.matchAll(/[ML]([\d.]+) /g)].map((m) => Number(m[1]));
  assert.deepEqual(xs, [...xs].sort((p, q) => p - q), 'left to right');
  assert.equal(xs.length, 3);
  assert.equal((paths[1]!.match(/[ML]/g) ?? []).length, 1, 'NaN and (on a log scale) 0 are left out');
  assert.equal((svg.match(/<circle /g) ?? []).length, 4);
  for (const tick of ['>1<', '>16<', '>64<']) assert.ok(svg.includes(tick), `x tick ${tick}`);
});

test('charts with nothing to draw say so instead of failing', () => {
  assert.ok(lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [] }] }).includes('no data'));
  assert.ok(barChart({ title: 't', yLabel: 'y', groups: [] }).includes('no data'));
});

test('a bar chart draws a bar per finite value, heights proportional on a linear scale', () => {
  const svg = barChart({
    title: 't',
    yLabel: 'ms',
    groups: [
      { label: 'round-robin', bars: [{ name: 'p50', value: 10 }, { name: 'p99', value: 40 }] },
      { label: 'p2c', bars: [{ name: 'p50', value: 5 }, { name: 'p99', value: Number.NaN }] },
    ],
  });
  const heights = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.equal(heights.length, 3);
  assert.ok(Math.abs(heights[1]! / heights[0]! - 4) < 0.05, `40 ms is four times 10 ms (${heights.join(', ')})`);
  assert.ok(Math.abs(heights[0]! / heights[2]! - 2) < 0.05);
});
