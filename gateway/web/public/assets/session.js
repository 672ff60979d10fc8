/**
 * Credentials kept for the browser session (sessionStorage: gone when the tab closes, never sent
 * anywhere but the Authorization header, never put in a URL). The playground keeps the user's API
 * key or JWT; the dashboard and keys pages keep the admin token, under a different name.
 */
import { byId, showMessage } from './dom.js';

export const USER_CREDENTIAL = 'infergate.credential';
export const ADMIN_TOKEN = 'infergate.adminToken';

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
 * Wires a credential form: `#<prefix>-form` with input `#<prefix>-input`, a `#<prefix>-status`
 * line and a `#<prefix>-forget` button. Calls `onChange(value)` at once if a credential is stored,
 * and whenever it is set or forgotten. The form posts nowhere: its submit is handled here, and
 * method="post" in the HTML keeps the secret out of the URL even if this script failed to load.
 */
export function bindCredentialForm(prefix, storageName, onChange) {
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
