/**
 * The model playground (index.html): the caller's credential, the models it may use, a model's
 * signature and labels, three ways to give an input (V2 JSON pre-filled from the metadata, a
 * drawing pad for digit models, an image for image models) and the answer.
 */
import { callApi, describeError } from './api.js';
import { byId, h, replaceChildren, showMessage } from './dom.js';
import { bindImagePicker, imageLayout, imageToTensor } from './image-input.js';
import { createDrawingPad, isDigitInput, paintPreview, toMnistPixels } from './mnist-canvas.js';
import { renderResult } from './result-view.js';
import { USER_CREDENTIAL, mountCredentialCard } from './session.js';
import { renderSiteHeader } from './site-header.js';
import { createTabs } from './tabs.js';
import { concreteShape, exampleRequest, formatRequest } from './tensor-example.js';

/** Top-k asked of the classification extension for labelled outputs. */

void renderSiteHeader();
const MAX_CLASSES = 10;

const ui = {
  modelsMessage: byId('models-message'),
  modelList: byId('model-list'),
  panel: byId('model-panel'),
  name: byId('model-name'),
  description: byId('model-description'),
  signature: byId('model-signature'),
  labels: byId('model-labels'),
  json: byId('request-json'),
  runError: byId('run-error'),
  result: byId('result'),
  preview: byId('digit-preview'),
  imagePreview: byId('image-preview'),
  imageName: byId('image-name'),
  version: byId('model-version'),
  versionField: byId('version-field'),
};

let credential = '';
/** The selected model: { name, metadata }. */
let model;
/** The image input prepared from the last upload: { data, name }. */
let preparedImage;

const tabs = createTabs(byId('input-tabs'));
const pad = createDrawingPad(byId('digit-pad'), () => {
  byId('predict-drawing').disabled = !pad.hasInk;
  paintPreview(ui.preview, toMnistPixels(pad.canvas));
});
paintPreview(ui.preview, undefined);

mountCredentialCard(byId('credential-card'), { prefix: 'credential', storageName: USER_CREDENTIAL, heading: 'Credential', label: 'API key or JWT', forgetLabel: 'Forget credential' }, (value) => {
  credential = value;
  void loadModels();
});

byId('run-json').addEventListener('click', () => {
  let request;
  try {
    request = JSON.parse(ui.json.value);
  } catch (err) {
    showMessage(ui.runError, `The request is not valid JSON: ${err.message}`, 'error');
    return;
  }
  void infer(request);
});
byId('reset-json').addEventListener('click', () => fillExample());
ui.version.addEventListener('change', () => {
  if (model !== undefined) void loadModel(model.name, ui.version.value);
});
byId('clear-drawing').addEventListener('click', () => pad.clear());
byId('predict-drawing').addEventListener('click', () => {
  const pixels = toMnistPixels(pad.canvas);
  if (pixels === undefined) {
    showMessage(ui.runError, 'Draw a digit first.', 'error');
    return;
  }
  void infer(singleInputRequest(pixels));
});
bindImagePicker(byId('image-file'), byId('image-drop'), (file) => void prepareImage(file));
byId('predict-image').addEventListener('click', () => {
  if (preparedImage !== undefined) void infer(singleInputRequest(preparedImage.data));
});

async function loadModels() {
  model = undefined;
  ui.panel.hidden = true;
  replaceChildren(ui.modelList);
  if (credential === '') {
    showMessage(ui.modelsMessage, 'Enter an API key or JWT above to see the models it may use.');
    return;
  }
  showMessage(ui.modelsMessage, 'Loading models…');
  let index;
  try {
    ({ body: index } = await callApi('/v2/repository/index', { credential, method: 'POST', json: {} }));
  } catch (err) {
    showMessage(ui.modelsMessage, `Cannot list models: ${describeError(err)}`, 'error');
    return;
  }
  const models = groupVersions(Array.isArray(index) ? index : []);
  showMessage(ui.modelsMessage, models.length === 0 ? 'This credential may not use any model.' : '');
  replaceChildren(ui.modelList, models.map((m) => h('li', {},
    h('button', {
      type: 'button',
      className: 'model-button',
      'aria-pressed': 'false',
      'data-model': m.name,
      disabled: !m.ready,
      title: m.ready ? undefined : m.reason || m.state,
      onclick: (event) => void selectModel(m, event.currentTarget),
    }, h('span', { className: 'model-title' }, m.name),
    h('span', { className: `state state-${m.ready ? 'ready' : 'other'}` }, m.ready ? 'ready' : m.state.toLowerCase()),
    h('span', { className: 'versions' }, `v${m.versions.join(', v')}`)))));
}

/** One entry per model name (versions newest first), ready when any version is. */
function groupVersions(entries) {
  const byName = new Map();
  for (const e of entries) {
    const m = byName.get(e.name) ?? { name: e.name, versions: [], readyVersions: [], ready: false, state: e.state, reason: e.reason };
    m.versions.push(e.version);
    if (e.state === 'READY') {
      m.ready = true;
      m.readyVersions.push(e.version);
    } else if (!m.ready) Object.assign(m, { state: e.state, reason: e.reason });
    byName.set(e.name, m);
  }
  const newestFirst = (a, b) => Number(b) - Number(a) || b.localeCompare(a);
  for (const m of byName.values()) {
    m.versions.sort(newestFirst);
    m.readyVersions.sort(newestFirst);
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Chooses a model from the list: its version picker (when it has several) and its latest version. */
async function selectModel(entry, button) {
  for (const other of ui.modelList.querySelectorAll('.model-button')) other.setAttribute('aria-pressed', String(other === button));
  replaceChildren(ui.version,
    h('option', { value: '' }, 'latest ready'),
    entry.readyVersions.map((v) => h('option', { value: v }, `version ${v}`)));
  ui.versionField.hidden = entry.versions.length < 2;
  await loadModel(entry.name, '');
}

/** `/v2/models/{m}` or `/v2/models/{m}/versions/{v}`, for the selected model. */
function modelPath({ name, version }) {
  return `/v2/models/${encodeURIComponent(name)}${version ? `/versions/${encodeURIComponent(version)}` : ''}`;
}

async function loadModel(name, version) {
  showMessage(ui.runError, '');
  ui.result.hidden = true;
  let metadata;
  try {
    ({ body: metadata } = await callApi(modelPath({ name, version }), { credential }));
  } catch (err) {
    showMessage(ui.modelsMessage, `Cannot read ${name}: ${describeError(err)}`, 'error');
    return;
  }
  model = { name, version, metadata };
  ui.name.textContent = name;
  ui.description.textContent = metadata.description ?? '';
  ui.description.hidden = !metadata.description;
  replaceChildren(ui.signature, signatureTable('Inputs', metadata.inputs), signatureTable('Outputs', metadata.outputs));
  renderLabels(metadata);
  fillExample();
  pad.clear();
  preparedImage = undefined;
  byId('predict-image').disabled = true;
  ui.imageName.textContent = 'No image chosen.';
  replaceChildren(ui.imagePreview);

  const only = metadata.inputs.length === 1 ? metadata.inputs[0] : undefined;
  const visible = ['tab-json'];
  if (only && isDigitInput(only)) visible.unshift('tab-draw');
  if (only && imageLayout(only)) visible.unshift('tab-image');
  tabs.show(visible, visible[0]);
  ui.panel.hidden = false;
}

function signatureTable(title, tensors) {
  return h('table', { className: 'signature' },
    h('caption', {}, title),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'name'), h('th', { scope: 'col' }, 'datatype'), h('th', { scope: 'col' }, 'shape'))),
    h('tbody', {}, tensors.map((t) => h('tr', {},
      h('td', {}, h('code', {}, t.name)),
      h('td', {}, h('code', {}, t.datatype)),
      h('td', {}, h('code', {}, `[${t.shape.join(', ')}]`))))));
}

function renderLabels(metadata) {
  const labels = metadata.parameters?.labels ?? {};
  const entries = Object.entries(labels).filter(([, list]) => Array.isArray(list));
  replaceChildren(ui.labels, entries.map(([output, list]) => h('div', { className: 'labels' },
    h('h3', {}, `Labels of `, h('code', {}, output)),
    h('ul', { className: 'label-list' }, list.map((label, index) => h('li', {}, h('span', { className: 'label-index' }, `${index}:`), ' ', String(label)))))));
  ui.labels.hidden = entries.length === 0;
}

function fillExample() {
  if (model === undefined) return;
  try {
    ui.json.value = formatRequest(exampleRequest(model.metadata));
  } catch (err) {
    ui.json.value = '';
    showMessage(ui.runError, describeError(err), 'error');
  }
}

/** A request with the model's only input set to `values` at batch size 1. */
function singleInputRequest(values) {
  const input = model.metadata.inputs[0];
  // Four decimals are far below what an 8-bit pixel can tell apart, and keep the JSON small.
  const data = Array.from(values, (v) => Math.round(v * 10_000) / 10_000);
  return { inputs: [{ name: input.name, datatype: input.datatype, shape: concreteShape(input.shape), data }] };
}

async function prepareImage(file) {
  const layout = imageLayout(model.metadata.inputs[0]);
  showMessage(ui.runError, '');
  try {
    const { data, preview } = await imageToTensor(file, layout);
    preparedImage = { data, name: file.name };
    preview.className = 'pixel-preview';
    preview.setAttribute('role', 'img');
    preview.setAttribute('aria-label', `${file.name} as the model sees it: ${layout.width} x ${layout.height} pixels`);
    replaceChildren(ui.imagePreview, preview);
    ui.imageName.textContent = `${file.name}, resized to ${layout.width} x ${layout.height}.`;
    byId('predict-image').disabled = false;
  } catch (err) {
    preparedImage = undefined;
    byId('predict-image').disabled = true;
    showMessage(ui.runError, describeError(err), 'error');
  }
}

/**
 * Sends a V2 request. Without an `outputs` list, labelled outputs are asked for through the
 * classification extension (top classes with their labels) and the others as raw tensors.
 */
async function infer(request) {
  if (model === undefined) return;
  const { metadata } = model;
  const labels = metadata.parameters?.labels ?? {};
  if (request.outputs === undefined) {
    request.outputs = metadata.outputs.map((o) => (Array.isArray(labels[o.name])
      ? { name: o.name, parameters: { classification: Math.min(MAX_CLASSES, labels[o.name].length) } }
      : { name: o.name }));
  }
  const classified = new Set((request.outputs ?? []).filter((o) => Number(o?.parameters?.classification) > 0).map((o) => o.name));
  showMessage(ui.runError, '');
  ui.result.hidden = true; // never show an answer next to an input it is not for
  ui.result.setAttribute('aria-busy', 'true');
  const started = performance.now();
  try {
    const { body, response } = await callApi(`${modelPath(model)}/infer`, { credential, method: 'POST', json: request });
    renderResult(ui.result, {
      body,
      classified,
      latencyMs: performance.now() - started,
      workerId: response.headers.get('x-infergate-worker') ?? '',
      requestId: response.headers.get('x-request-id') ?? '',
    });
  } catch (err) {
    ui.result.hidden = true;
    showMessage(ui.runError, describeError(err), 'error');
  } finally {
    ui.result.removeAttribute('aria-busy');
  }
}
