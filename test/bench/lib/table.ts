/** Plain-text tables and number formats for benchmark reports. */

export type Align = 'left' | 'right';

export interface Column {
  title: string;
  align?: Align;
}

/** Renders rows under a header with a dashed rule; numbers-style columns right-aligned. */
export function renderTable(columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? '').length)));
  const pad = (text: string, i: number): string => {
    const width = widths[i] ?? 0;
    return (columns[i]?.align ?? 'right') === 'left' ? text.padEnd(width) : text.padStart(width);
  };
  const lines = [columns.map((c, i) => pad(c.title, i)).join('  '), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of rows) lines.push(columns.map((_, i) => pad(row[i] ?? '', i)).join('  ').trimEnd());
  return lines.join('\n');
}

/** Significant-figure friendly number: 12345 -> "12345", 12.345 -> "12.3", 0.01234 -> "0.0123". */
export function num(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return '-';
  const abs = Math.abs(value);
  if (abs >= 10 ** digits) return value.toFixed(0);
  if (abs === 0) return '0';
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)));
  return value.toFixed(Math.min(decimals, 4));
}

export function ms(value: number): string {
  return Number.isFinite(value) ? num(value, 3) : '-';
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : '-';
}

export function verdict(pass: boolean | undefined): string {
  return pass === undefined ? 'info' : pass ? 'PASS' : 'FAIL';
}

/** One line of a benchmark's targets table, also written to its raw JSON for bench/report.md. */
export interface TargetRow {
  name: string;
  detail: string;
  value: string;
  limit: string;
  /** PASS, FAIL, info or n/a. */
  result: string;
  pass?: boolean;
}

export function renderTargets(rows: readonly TargetRow[]): string {
  return renderTable(
    [{ title: 'target', align: 'left' }, { title: 'where', align: 'left' }, { title: 'value' }, { title: 'limit' }, { title: 'result', align: 'left' }],
    rows.map((r) => [r.name, r.detail, r.value, r.limit, r.result]),
  );
}
