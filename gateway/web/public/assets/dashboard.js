/**
 * The pool dashboard (dashboard.html, admin port): a live table of workers and charts of
 * throughput and latency from GET /admin/pool/stream (one `pool` event a second), the balancing
 * strategy with a control to switch it (PUT /admin/strategy), and drain/undrain per worker.
 * Rows are updated in place, so a focused button keeps its focus while the numbers change.
 */
import { callApi, describeError } from './api.js';
import { createLineChart } from './chart.js';
import { byId, h, replaceChildren, showMessage } from './dom.js';
import { openEventStream } from './event-stream.js';
import { ADMIN_SIGN_IN, mountCredentialCard } from './session.js';
import { renderSiteHeader } from './site-header.js';

/** Charts keep this much history. */

void renderSiteHeader();
const WINDOW_MS = 5 * 60_000;

const ui = {
  live: byId('live'),
  connection: byId('connection'),
  summary: byId('summary'),
  strategyForm: byId('strategy-form'),
  strategySelect: byId('strategy-select'),
  strategyMessage: byId('strategy-message'),
  tableStrategy: byId('table-strategy'),
  rows: byId('worker-rows'),
  actionMessage: byId('action-message'),
};

let token = '';
let stream;
/** True once the user picked a strategy that is not yet applied: the live value must not overwrite it. */
let strategyEdited = false;
const rows = new Map();
const throughput = createLineChart(byId('throughput-chart'), {
  title: 'Throughput', unit: 'req/s', windowMs: WINDOW_MS,
  series: [{ key: 'reqPerSec', name: 'requests/s', colour: '#1c4fd6' }, { key: 'errorsPerSec', name: 'errors/s', colour: '#b3261e' }],
});
const latency = createLineChart(byId('latency-chart'), {
  title: 'Latency', unit: 'ms', windowMs: WINDOW_MS,
  series: [{ key: 'p50Ms', name: 'p50 ms', colour: '#146c2e' }, { key: 'p99Ms', name: 'p99 ms', colour: '#8a4b00' }],
});

mountCredentialCard(byId('admin-signin'), ADMIN_SIGN_IN, (value) => {
  token = value;
  stream?.close();
  stream = undefined;
  ui.live.hidden = value === '';
  if (value !== '') stream = openEventStream('/admin/pool/stream', { token, onEvent, onState });
});

ui.strategySelect.addEventListener('change', () => {
  strategyEdited = true;
});
ui.strategyForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const strategy = ui.strategySelect.value;
  try {
    const { body } = await callApi('/admin/strategy', { credential: token, method: 'PUT', json: { strategy } });
    strategyEdited = false;
    showMessage(ui.strategyMessage, `Strategy switched to ${body.strategy}.`);
  } catch (err) {
    showMessage(ui.strategyMessage, `Could not switch the strategy: ${describeError(err)}`, 'error');
  }
});

function onState(state, detail) {
  const text = {
    connecting: 'Connecting…',
    open: 'Live',
    reconnecting: `Connection lost (${detail instanceof Error ? describeError(detail) : detail}); reconnecting…`,
    unauthorized: `The admin token was refused: ${describeError(detail)}`,
  }[state];
  showMessage(ui.connection, text, state === 'open' || state === 'connecting' ? 'info' : 'error');
}

function onEvent(name, data) {
  if (name !== 'pool') return;
  let snapshot;
  try {
    snapshot = JSON.parse(data);
  } catch {
    return; // a malformed event is skipped; the next one a second later replaces it
  }
  showMessage(ui.connection, `Live · updated ${new Date(snapshot.time).toLocaleTimeString()}`);
  renderStrategy(snapshot);
  renderSummary(snapshot);
  renderWorkers(snapshot.workers ?? []);
  throughput.push(snapshot.time, snapshot.totals ?? {});
  latency.push(snapshot.time, snapshot.totals ?? {});
}

function renderStrategy({ strategy, strategies = [] }) {
  ui.tableStrategy.textContent = strategy;
  const names = [...ui.strategySelect.options].map((o) => o.value);
  if (names.join() !== strategies.join()) replaceChildren(ui.strategySelect, strategies.map((s) => h('option', { value: s }, s)));
  if (!strategyEdited) ui.strategySelect.value = strategy;
}

function renderSummary({ strategy, totals = {}, workers = [] }) {
  const ready = workers.filter((w) => w.ready && !w.draining).length;
  const facts = [
    ['Strategy', strategy],
    ['Workers ready', `${ready} / ${workers.length}`],
    ['Requests/s', fixed(totals.reqPerSec, 1)],
    ['Errors/s', fixed(totals.errorsPerSec, 1)],
    ['p50', `${fixed(totals.p50Ms, 1)} ms`],
    ['p99', `${fixed(totals.p99Ms, 1)} ms`],
    ['In flight', String(totals.inFlight ?? 0)],
  ];
  replaceChildren(ui.summary, facts.map(([term, value]) => h('div', {}, h('dt', {}, term), h('dd', {}, value))));
}

const COLUMNS = ['url', 'ready', 'breaker', 'inFlight', 'queueDepth', 'reqPerSec', 'p50Ms', 'p99Ms', 'models'];

function renderWorkers(workers) {
  const seen = new Set();
  for (const worker of workers) {
    seen.add(worker.id);
    const row = rows.get(worker.id) ?? addRow(worker.id);
    row.cells.url.textContent = worker.url;
    setBadge(row.cells.ready, worker.draining ? ['draining', 'warn'] : worker.ready ? ['ready', 'ok'] : ['not ready', 'bad']);
    setBadge(row.cells.breaker, [worker.breaker, worker.breaker === 'closed' ? 'ok' : worker.breaker === 'open' ? 'bad' : 'warn']);
    row.cells.inFlight.textContent = String(worker.inFlight ?? 0);
    row.cells.queueDepth.textContent = String(worker.queueDepth ?? 0);
    row.cells.reqPerSec.textContent = fixed(worker.reqPerSec, 1);
    row.cells.p50Ms.textContent = fixed(worker.p50Ms, 1);
    row.cells.p99Ms.textContent = fixed(worker.p99Ms, 1);
    row.cells.models.textContent = Object.keys(worker.models ?? {}).sort().join(', ');
    row.draining = Boolean(worker.draining);
    row.button.textContent = row.draining ? 'Undrain' : 'Drain';
    row.button.setAttribute('aria-label', `${row.draining ? 'Undrain' : 'Drain'} worker ${worker.id}`);
  }
  for (const [id, row] of rows) {
    if (seen.has(id)) continue;
    row.tr.remove();
    rows.delete(id);
  }
}

function addRow(id) {
  const cells = Object.fromEntries(COLUMNS.map((c) => [c, h('td', { className: /Ms$|PerSec$|inFlight|queueDepth/.test(c) ? 'num' : '' })]));
  const row = { cells, draining: false, tr: undefined, button: undefined };
  row.button = h('button', { type: 'button', className: 'secondary', onclick: () => void toggleDrain(id, row) }, 'Drain');
  row.tr = h('tr', { 'data-worker': id }, h('th', { scope: 'row' }, h('code', {}, id)), COLUMNS.map((c) => cells[c]), h('td', {}, row.button));
  ui.rows.append(row.tr);
  rows.set(id, row);
  return row;
}

async function toggleDrain(id, row) {
  const action = row.draining ? 'undrain' : 'drain';
  try {
    await callApi(`/admin/workers/${encodeURIComponent(id)}/${action}`, { credential: token, method: 'POST' });
    showMessage(ui.actionMessage, `Worker ${id}: ${action === 'drain' ? 'draining, it gets no new requests' : 'back in rotation'}.`);
  } catch (err) {
    showMessage(ui.actionMessage, `Could not ${action} ${id}: ${describeError(err)}`, 'error');
  }
}

function setBadge(cell, [text, kind]) {
  replaceChildren(cell, h('span', { className: `badge badge-${kind}` }, text ?? 'unknown'));
}

function fixed(value, digits) {
  return Number.isFinite(value) ? value.toFixed(digits) : '–';
}
