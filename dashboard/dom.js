// DOM helpers for the dashboard. Everything on screen is built with createElement and
// textContent: task queries, outputs and metadata are attacker-controlled, so no string is ever
// parsed as HTML (no innerHTML anywhere in the dashboard).

/**
 * Builds an element. `props`: `class`, `text`, `on<Event>` handlers, `hidden`, `disabled`,
 * `checked`, `value`, `dataset`; anything else is set as an attribute. Children: nodes, strings
 * (as text), arrays; null, undefined and false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = String(value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === 'hidden' || name === 'disabled' || name === 'checked' || name === 'selected' || name === 'required') el[name] = Boolean(value);
    else if (name === 'value') el.value = String(value);
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces a node's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * Makes `parent`'s children `nodes`, keeping in place each child that equals (isEqualNode: same
 * tags, attributes and text) one of the new nodes. Redrawing everything every 5 s reset the
 * scroll of the boxes and wiped a text selection; an untouched node keeps both (and the focus).
 * Listeners are not compared: a kept node keeps its own, so build equal nodes with equal handlers.
 */
export function patch(parent, ...children) {
  const nodes = [];
  append({ append: (n) => nodes.push(n) }, children);
  const unused = [...parent.childNodes];
  nodes.forEach((node, i) => {
    const k = unused.findIndex((old) => old.isEqualNode(node));
    const chosen = k >= 0 ? unused.splice(k, 1)[0] : node;
    if (parent.childNodes[i] !== chosen) parent.insertBefore(chosen, parent.childNodes[i] ?? null);
  });
  for (const old of unused) old.remove();
  return parent;
}

/**
 * US dollars with three significant digits below $1 (an LLM call may cost $0.0000042, which
 * toFixed(4) showed as $0.0000), cents above.
 */
export function formatCost(usd) {
  const n = Number(usd ?? 0);
  if (!Number.isFinite(n) || n === 0) return '$0';
  return n >= 1 ? `$${n.toFixed(2)}` : `$${n.toLocaleString('en-US', { maximumSignificantDigits: 3 })}`;
}

/** A value as readable text: strings as they are, everything else as indented JSON. */
export function pretty(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** A <pre> holding `value` as text. */
export function pre(value, cls = 'code') {
  return h('pre', { class: cls, text: pretty(value) });
}

const STATUSES = ['QUEUED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT'];
/** Statuses a task does not leave: the SDK's own set (./index.js is the compiled dist/sdk). */
export { TERMINAL_STATUSES as TERMINAL } from './index.js';
export { STATUSES };

/** A status badge; the class comes from a fixed list, never from the server's text. */
export function badge(status) {
  const known = STATUSES.includes(status) ? status.toLowerCase() : 'unknown';
  return h('span', { class: `badge badge-${known}`, 'data-status': String(status ?? ''), text: status ?? '—' });
}

/** RFC 3339 → local date and time (the ISO string stays in the title). */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted', text: '—' });
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso, text: Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString() });
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A definition list of [label, value] rows; values may be nodes or text. */
export function fields(rows) {
  return h('dl', { class: 'fields' }, rows.filter(Boolean).map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v === null || v === undefined || v === '' ? '—' : v)]));
}

/** A message box for errors or notices. */
export function notice(text, kind = 'error') {
  return h('div', { class: `notice notice-${kind === 'error' ? 'error' : 'info'}`, role: kind === 'error' ? 'alert' : 'status', text });
}

/** `#/path?a=1` → `#/path?…` with the given parameters (empty ones dropped). */
export function hashWith(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}
