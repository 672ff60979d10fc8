/**
 * Shows an inference answer: for classified outputs (Triton's classification extension, BYTES
 * elements "score:index:label") the classes of each batch item with probability bars, best first;
 * for any other output the raw tensor (name, datatype, shape, the first values). Above them: the
 * round-trip latency, the worker that served the request and its request id.
 */
import { h, replaceChildren } from './dom.js';

let labelIds = 0;

/** Raw tensors show this many leading elements. */
const RAW_PREVIEW = 64;

/** Parses "score:index:label" (the label may itself contain ':'). */
export function parseClass(entry) {
  const text = String(entry);
  const first = text.indexOf(':');
  const second = text.indexOf(':', first + 1);
  if (first < 0) return { score: Number(text), index: -1, label: '' };
  const score = Number(text.slice(0, first));
  const index = Number(second < 0 ? text.slice(first + 1) : text.slice(first + 1, second));
  const label = second < 0 ? '' : text.slice(second + 1);
  return { score, index, label: label || `class ${index}` };
}

/**
 * Renders into `container`.
 * @param {{ body: any, workerId: string, requestId: string, latencyMs: number, classified: Set<string> }} answer
 */
export function renderResult(container, answer) {
  const { body, workerId, requestId, latencyMs, classified } = answer;
  const served = body?.model_version ? `${body.model_name} version ${body.model_version}` : (body?.model_name ?? 'the model');
  const meta = h('p', { className: 'result-meta' },
    h('span', { className: 'model-served' }, served), ' answered in ', h('strong', { className: 'latency' }, `${latencyMs.toFixed(1)} ms`),
    ' by worker ', h('code', { className: 'worker-id' }, workerId || 'unknown'),
    requestId ? [' · request ', h('code', {}, requestId)] : []);
  const outputs = (body?.outputs ?? []).map((output) => (classified.has(output.name) && output.datatype === 'BYTES' ? classesView(output) : rawView(output)));
  replaceChildren(container, meta, ...outputs);
  container.hidden = false;
}

function classesView(output) {
  const rows = batchRows(output);
  return h('section', { className: 'output classes', 'aria-label': `Output ${output.name}` },
    h('h3', {}, output.name),
    rows.map((row, item) => h('div', { className: 'batch-item' },
      rows.length > 1 ? h('h4', {}, `Item ${item + 1}`) : null,
      h('ol', { className: 'class-list' }, row.map(parseClass).sort((a, b) => b.score - a.score).map(classRow)))));
}

function classRow({ score, label }) {
  const percent = `${(score * 100).toFixed(2)} %`;
  const id = `class-label-${++labelIds}`;
  return h('li', { className: 'class-row' },
    h('span', { className: 'class-label', id }, label),
    h('meter', { min: 0, max: 1, value: score, 'aria-labelledby': id, title: percent }),
    h('span', { className: 'class-score' }, percent));
}

/** Splits a flat [rows, k] tensor into rows (shape [k] is one row). */
function batchRows(output) {
  const data = output.data ?? [];
  const k = output.shape.length > 1 ? output.shape[output.shape.length - 1] : data.length;
  const rows = [];
  for (let i = 0; i < data.length; i += Math.max(1, k)) rows.push(data.slice(i, i + k));
  return rows;
}

function rawView(output) {
  const data = output.data ?? [];
  const shown = data.slice(0, RAW_PREVIEW).map((v) => (typeof v === 'number' ? formatNumber(v) : JSON.stringify(v)));
  const more = data.length > RAW_PREVIEW ? ` … ${data.length - RAW_PREVIEW} more` : '';
  return h('section', { className: 'output raw', 'aria-label': `Output ${output.name}` },
    h('h3', {}, output.name),
    h('dl', { className: 'tensor-facts' },
      h('dt', {}, 'datatype'), h('dd', {}, h('code', {}, output.datatype)),
      h('dt', {}, 'shape'), h('dd', {}, h('code', {}, `[${output.shape.join(', ')}]`)),
      h('dt', {}, 'elements'), h('dd', {}, String(data.length))),
    h('pre', { className: 'tensor-data' }, `[${shown.join(', ')}${more}]`));
}

function formatNumber(v) {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
}
