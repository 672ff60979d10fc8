/**
 * Building DOM safely: text always goes in through textContent (never innerHTML), so a model
 * name, label or error message containing markup is shown as text, not run.
 *
 * @example
 *   h('td', { className: 'num' }, String(worker.inFlight))
 *   h('button', { type: 'button', onclick: () => drain(id) }, 'Drain ', h('span', { className: 'sr-only' }, id))
 */

/** An element with properties/attributes and children (strings become text nodes). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('aria-') || key === 'role' || key === 'for' || key.startsWith('data-')) el.setAttribute(key, value === true ? 'true' : String(value));
    else el[key] = value;
  }
  append(el, children);
  return el;
}

/** An SVG element (namespaced) with attributes and children. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `el` with `children`. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** The element with this id; throws if the page lacks it (a page/script mismatch, caught by tests). */
export function byId(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el;
}

/** Shows a message in a status/alert region; `kind` is 'info' or 'error'. Empty text hides it. */
export function showMessage(el, text, kind = 'info') {
  el.textContent = text;
  el.hidden = text === '';
  el.dataset.kind = kind;
}
