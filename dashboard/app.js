// The dashboard's entry: sign-in, the header, and a hash router (#/tasks, #/tasks/<id>,
// #/submit, #/approvals, #/definitions, #/definitions/<id>). Each view renders into <main> and
// returns a dispose function; leaving a view aborts its calls, timers and streams.
import { AuthenticationError, clearKey, client, getKey, isAbort, onUnauthorized, principalOf, setKey } from './api.js';
import { h, mount, notice } from './dom.js';
import { tasksView } from './tasks.js';
import { taskDetailView } from './task-detail.js';
import { submitView } from './submit.js';
import { approvalsView } from './approvals.js';
import { definitionsView, definitionDetailView } from './definitions.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const signOutButton = document.getElementById('signout');

/** The signed-in principal from GET /auth/me, or null. */
let me = null;
let dispose = () => {};
let signInMessage = '';

/** [path, view, the page's title] */
const ROUTES = [
  [/^\/tasks\/?$/, (el, _m, q, ctx) => tasksView(el, q, ctx), () => 'Tasks'],
  [/^\/tasks\/([A-Za-z0-9:_\-.]{1,128})$/, (el, m, _q, ctx) => taskDetailView(el, m[1], ctx), (m) => `Task ${m[1]}`],
  [/^\/submit\/?$/, (el, _m, q, ctx) => submitView(el, q, ctx), () => 'Submit a task'],
  [/^\/approvals\/?$/, (el, _m, q, ctx) => approvalsView(el, q, ctx), () => 'Approvals'],
  [/^\/definitions\/?$/, (el, _m, q, ctx) => definitionsView(el, q, ctx), () => 'Definitions'],
  [/^\/definitions\/([A-Za-z0-9:_\-.]{1,128})$/, (el, m, _q, ctx) => definitionDetailView(el, m[1], ctx), (m) => `Definition ${m[1]}`],
];

const setTitle = (page) => { document.title = `${page} · Taskgate`; };

/** The page's heading takes the keyboard focus (or <main>, without one). */
function focusHeading() {
  const heading = main.querySelector('h1');
  if (!heading) return main.focus();
  heading.tabIndex = -1;
  heading.focus();
}

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/tasks';
  const [path, query = ''] = raw.split('?');
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    /* keep it raw: it will not match a route */
  }
  return { path: decoded, query: new URLSearchParams(query) };
}

function renderWho() {
  nav.hidden = !me;
  signOutButton.hidden = !me;
  if (!me) {
    mount(who);
    return;
  }
  mount(who,
    h('span', { class: 'who-tenant', title: 'tenant', text: me.tenant_id }),
    ' · ',
    h('span', { class: 'who-user', title: `user (${me.principal_type} ${me.subject})`, text: me.user_id }),
    h('span', { class: 'who-scopes', title: 'scopes', text: me.scopes.join(' ') }),
  );
  const { path } = parseHash();
  for (const a of nav.querySelectorAll('a')) {
    const target = a.getAttribute('href').slice(1);
    a.classList.toggle('active', path === target || path.startsWith(target + '/'));
  }
}

function signInView() {
  dispose();
  dispose = () => {};
  me = null;
  renderWho();
  setTitle('Sign in');
  const input = h('input', {
    id: 'api-key', type: 'password', name: 'api-key', autocomplete: 'off', spellcheck: 'false', required: true,
    placeholder: 'sk_…', 'aria-label': 'API key',
  });
  const error = h('div', { id: 'signin-error' });
  const button = h('button', { type: 'submit', class: 'primary', text: 'Sign in' });
  const form = h('form', { class: 'card signin', id: 'signin-form' },
    h('h1', { text: 'Sign in' }),
    h('p', { class: 'muted', text: 'Paste an API key. It is kept in this browser tab only (sessionStorage) and sent as X-API-Key; closing the tab or signing out forgets it.' }),
    h('p', { class: 'muted', text: 'The admin key of a local server is in .taskgate/admin.key.' }),
    h('label', { for: 'api-key', text: 'API key' }),
    input,
    button,
    error,
  );
  if (signInMessage) mount(error, notice(signInMessage));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    mount(error);
    try {
      const who = await principalOf(key);
      setKey(key);
      me = who;
      signInMessage = '';
      if (!location.hash || location.hash === '#/signin') location.hash = '#/tasks';
      else route();
    } catch (err) {
      mount(error, notice(err.message));
    } finally {
      button.disabled = false;
    }
  });
  mount(main, form);
  input.focus();
}

/**
 * `message` set: the key stopped working (revoked, expired) and the page it was on stays in the hash,
 * for whoever signs in again. The Sign out button resets it to #/tasks: the next key signing in in
 * this tab, perhaps another user's, does not land on the previous one's deep link.
 */
function signOut(message = '') {
  clearKey();
  me = null;
  signInMessage = message;
  if (!message && location.hash !== '#/tasks') history.replaceState(null, '', '#/tasks');
  signInView();
}

/**
 * The stored key could not be checked (the server down, a 5xx, the network): the key is kept, and
 * the page says so with a Retry rather than showing the sign-in form as if signed out.
 */
function unreachableView(err) {
  dispose();
  dispose = () => {};
  renderWho();
  setTitle('Cannot reach Taskgate');
  const retry = h('button', { type: 'button', class: 'primary', id: 'retry-me', text: 'Retry' });
  const other = h('button', { type: 'button', id: 'use-other-key', text: 'Sign in with another key' });
  retry.addEventListener('click', () => {
    retry.disabled = true;
    checkStoredKey();
  });
  other.addEventListener('click', () => signOut());
  mount(main, h('section', { class: 'card signin', id: 'unreachable' },
    h('h1', { text: 'Cannot reach Taskgate' }),
    notice(err.message),
    h('p', { class: 'muted', text: 'Your key is kept in this tab; try again when the server answers.' }),
    h('div', { class: 'actions' }, retry, other)));
  retry.focus();
}

/** Signs in with the key kept in this tab (a reload): 401 signs out, anything else offers a retry. */
async function checkStoredKey() {
  try {
    me = await client().me();
    route();
  } catch (err) {
    if (isAbort(err)) return;
    // a 401 has signed out already (onUnauthorized)
    if (!(err instanceof AuthenticationError)) unreachableView(err);
  }
}

function route() {
  // a key kept but not yet checked (the server was unreachable): check it rather than ask for one
  if (!me) return getKey() ? checkStoredKey() : signInView();
  dispose();
  dispose = () => {};
  renderWho();
  const { path, query } = parseHash();
  // what held the keyboard goes with the previous page (after a sign-in, the form; after a filter
  // change, its select): then the new page's heading takes it rather than <body>. From the header
  // (a nav link) or on a first load, the focus stays where it is.
  const focusWasInMain = main.contains(document.activeElement);
  const controller = new AbortController();
  const ctx = { signal: controller.signal, me, navigate: (hash) => { location.hash = hash; } };
  const el = h('div', { class: 'view' });
  mount(main, el);
  const hit = ROUTES.map(([re, view, title]) => [re.exec(path), view, title]).find(([m]) => m);
  if (!hit) {
    setTitle('No such page');
    mount(el, h('h1', { text: 'No such page' }), notice(`No page at ${path}`), h('p', {}, h('a', { href: '#/tasks', text: 'Go to tasks' })));
    if (focusWasInMain) focusHeading();
    return;
  }
  const [match, view, title] = hit;
  setTitle(title(match));
  const viewDispose = view(el, match, query, ctx);
  dispose = () => {
    controller.abort();
    if (typeof viewDispose === 'function') viewDispose();
  };
  if (focusWasInMain) focusHeading();
}

async function start() {
  onUnauthorized((message) => signOut(message || 'Your key is no longer valid; sign in again.'));
  signOutButton.addEventListener('click', () => signOut());
  // the skip link's #main would be taken for a route: it moves the focus itself
  document.getElementById('skip-link').addEventListener('click', (ev) => {
    ev.preventDefault();
    focusHeading();
  });
  window.addEventListener('hashchange', () => route());
  if (!getKey()) return signInView();
  await checkStoredKey();
}

start();
