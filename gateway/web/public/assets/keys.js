/**
 * API keys (keys.html, admin port): create a key (its secret is shown once, here, and never
 * again), list every key with its state, revoke one. Backed by GET/POST /admin/keys and
 * DELETE /admin/keys/{id}.
 */
import { callApi, describeError } from './api.js';
import { byId, h, replaceChildren, showMessage } from './dom.js';
import { ADMIN_SIGN_IN, mountCredentialCard } from './session.js';
import { renderSiteHeader } from './site-header.js';


void renderSiteHeader();
const ui = {
  manage: byId('manage'),
  form: byId('create-form'),
  name: byId('key-name'),
  models: byId('key-models'),
  rate: byId('key-rate'),
  burst: byId('key-burst'),
  createMessage: byId('create-message'),
  secret: byId('new-secret'),
  secretValue: byId('new-secret-value'),
  listMessage: byId('list-message'),
  rows: byId('key-rows'),
};

let token = '';

mountCredentialCard(byId('admin-signin'), ADMIN_SIGN_IN, (value) => {
  token = value;
  ui.manage.hidden = value === '';
  hideSecret();
  if (value !== '') void loadKeys();
});

ui.form.addEventListener('submit', async (event) => {
  event.preventDefault();
  let body;
  try {
    body = createRequest();
  } catch (err) {
    showMessage(ui.createMessage, err.message, 'error');
    return;
  }
  try {
    const { body: created } = await callApi('/admin/keys', { credential: token, method: 'POST', json: body });
    ui.form.reset();
    showMessage(ui.createMessage, `Created key ${created.record.name} (${created.record.id}).`);
    showSecret(created.key);
    await loadKeys();
  } catch (err) {
    showMessage(ui.createMessage, `Could not create the key: ${describeError(err)}`, 'error');
  }
});
byId('copy-secret').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(ui.secretValue.textContent);
    showMessage(ui.createMessage, 'Key copied to the clipboard.');
  } catch {
    showMessage(ui.createMessage, 'The browser refused the clipboard: select the key and copy it by hand.', 'error');
  }
});
byId('hide-secret').addEventListener('click', hideSecret);
byId('refresh-keys').addEventListener('click', () => void loadKeys());

/** The POST /admin/keys body from the form; throws with a user-facing message for bad input. */
function createRequest() {
  const name = ui.name.value.trim();
  if (name === '') throw new Error('Give the key a name.');
  const modelsText = ui.models.value.trim();
  const models = modelsText === '' || modelsText === '*' ? '*' : modelsText.split(',').map((m) => m.trim()).filter(Boolean);
  const body = { name, models };
  if (ui.rate.value !== '') {
    const rate = Number(ui.rate.value);
    if (!(rate > 0)) throw new Error('Rate must be a positive number of requests per second.');
    body.ratePerSec = rate;
  }
  if (ui.burst.value !== '') {
    const burst = Number(ui.burst.value);
    if (!Number.isInteger(burst) || burst < 1) throw new Error('Burst must be a whole number of at least 1.');
    body.burst = burst;
  }
  return body;
}

/** The key is put in the page once; "Done" (or a new token) removes it from the DOM. */
function showSecret(key) {
  ui.secretValue.textContent = key;
  ui.secret.hidden = false;
  byId('copy-secret').focus();
}

function hideSecret() {
  ui.secretValue.textContent = '';
  ui.secret.hidden = true;
}

async function loadKeys() {
  try {
    const { body } = await callApi('/admin/keys', { credential: token });
    const keys = body?.keys ?? [];
    showMessage(ui.listMessage, keys.length === 0 ? 'No API keys yet.' : '');
    replaceChildren(ui.rows, keys.map(keyRow));
  } catch (err) {
    replaceChildren(ui.rows);
    showMessage(ui.listMessage, `Could not list the keys: ${describeError(err)}`, 'error');
  }
}

function keyRow(record) {
  const status = keyStatus(record);
  return h('tr', { 'data-key-id': record.id, className: status === 'active' ? '' : 'revoked' },
    h('th', { scope: 'row' }, record.name),
    h('td', {}, h('code', {}, record.displayPrefix ?? record.id)),
    h('td', {}, record.models === '*' ? 'all' : record.models.join(', ')),
    h('td', {}, record.ratePerSec === undefined ? (record.plan ?? 'default') : `${record.ratePerSec}/s, burst ${record.burst ?? '–'}`),
    h('td', {}, formatTime(record.createdAt)),
    h('td', {}, formatTime(record.lastUsedAt)),
    h('td', { className: 'key-status' }, status),
    h('td', {}, status === 'active' || status === 'rotated (grace)'
      ? h('button', { type: 'button', className: 'danger', 'aria-label': `Revoke key ${record.name} (${record.id})`, onclick: () => void revoke(record) }, 'Revoke')
      : ''));
}

function keyStatus(record) {
  const now = Date.now();
  if (record.revokedAt !== undefined) return 'revoked';
  if (record.expiresAt !== undefined && record.expiresAt <= now) return 'expired';
  if (record.graceUntil !== undefined) return record.graceUntil > now ? 'rotated (grace)' : 'rotated';
  return 'active';
}

async function revoke(record) {
  if (!window.confirm(`Revoke the key "${record.name}" (${record.id})? Requests with it are refused within seconds.`)) return;
  try {
    await callApi(`/admin/keys/${encodeURIComponent(record.id)}`, { credential: token, method: 'DELETE' });
    showMessage(ui.listMessage, `Revoked ${record.name} (${record.id}).`);
  } catch (err) {
    showMessage(ui.listMessage, `Could not revoke ${record.id}: ${describeError(err)}`, 'error');
  }
  await loadKeys();
}

function formatTime(ms) {
  return ms === undefined ? '–' : new Date(ms).toLocaleString();
}
