/**
 * Credentials kept for the browser session (sessionStorage: gone when the tab closes, never sent
 * anywhere but the Authorization header, never put in a URL). The playground keeps the user's API
 * key or JWT; the dashboard and keys pages keep the admin token, under a different name.
 */
import { byId, h, replaceChildren, showMessage } from './dom.js';

export const USER_CREDENTIAL = 'infergate.credential';
export const ADMIN_TOKEN = 'infergate.adminToken';

/** The admin pages' sign-in card (dashboard and keys share the stored token). */
export const ADMIN_SIGN_IN = { prefix: 'admin', storageName: ADMIN_TOKEN, heading: 'Sign in', label: 'Admin token', forgetLabel: 'Forget token' };

export function readCredential(name) {
  try {
    return sessionStorage.getItem(name) ?? '';
  } catch {
    return ''; // storage disabled: the user enters it again on each page
  }
}

export function storeCredential(name, value) {
  try {
    if (value === '') sessionStorage.removeItem(name);
    else sessionStorage.setItem(name, value);
  } catch {
    // storage disabled: the credential lives only as long as this page
  }
}

/** A short, harmless description of a credential for display: its kind and first characters. */
export function describeCredential(value) {
  if (/^igk_/.test(value)) return `API key ${value.split('_').slice(0, 2).join('_')}_…`;
  if (value.split('.').length === 3) return 'JWT';
  return 'token';
}

/**
 * Builds the credential card into `section` (one definition for every page) and wires it: a
 * password field, a status line and a "Forget" button. Calls `onChange(value)` at once if a
 * credential is stored, and whenever it is set or forgotten. The form is method="post" and its
 * submit is handled here, so the secret never ends up in a URL.
 *
 * @example
 *   mountCredentialCard(byId('admin-signin'), { prefix: 'admin', storageName: ADMIN_TOKEN,
 *     heading: 'Sign in', label: 'Admin token', forgetLabel: 'Forget token' }, (token) => connect(token));
 */
export function mountCredentialCard(section, { prefix, storageName, heading, label, forgetLabel }, onChange) {
  section.setAttribute('aria-labelledby', `${prefix}-heading`);
  replaceChildren(section,
    h('h2', { id: `${prefix}-heading` }, heading),
    h('form', { id: `${prefix}-form`, className: 'inline-form', method: 'post', autocomplete: 'off' },
      h('label', { for: `${prefix}-input` }, label),
      h('input', { id: `${prefix}-input`, name: 'credential', type: 'password', autocomplete: 'off', spellcheck: false, required: true }),
      h('button', { type: 'submit' }, 'Use')),
    h('p', { className: 'hint' }, 'Kept in this tab\'s session storage only and sent as ', h('code', {}, 'Authorization: Bearer'), '.'),
    h('p', { id: `${prefix}-status`, role: 'status' }),
    h('button', { id: `${prefix}-forget`, type: 'button', className: 'secondary', hidden: true }, forgetLabel));
  return bindCredentialForm(prefix, storageName, onChange);
}

/** Wires the card's elements (`#<prefix>-form`, `-input`, `-status`, `-forget`). */
function bindCredentialForm(prefix, storageName, onChange) {
  const form = byId(`${prefix}-form`);
  const input = byId(`${prefix}-input`);
  const status = byId(`${prefix}-status`);
  const forget = byId(`${prefix}-forget`);
  let current = readCredential(storageName);

  const render = () => {
    showMessage(status, current === '' ? 'Not signed in.' : `Using ${describeCredential(current)} for this browser session.`);
    forget.hidden = current === '';
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (value === '') {
      input.focus();
      return;
    }
    current = value;
    input.value = '';
    storeCredential(storageName, current);
    render();
    onChange(current);
  });
  forget.addEventListener('click', () => {
    current = '';
    storeCredential(storageName, '');
    render();
    onChange('');
    input.focus();
  });
  render();
  if (current !== '') onChange(current);
  return { get: () => current };
}
