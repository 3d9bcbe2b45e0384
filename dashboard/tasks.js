// #/tasks: GET /api/v1/tasks with status and definition filters, paging (limit/offset,
// total_count) and an auto-refresh every 5 s that can be paused. Filters live in the hash, so
// a filtered page can be bookmarked and the back button works.
import { client, isAbort, withoutEmpty } from './api.js';
import { badge, h, hashWith, mount, notice, patch, STATUSES, time } from './dom.js';

export const REFRESH_MS = 5000;
const PAGE_SIZES = [10, 20, 50, 100];
/**
 * The API counts at most this many rows past `offset` and reports a larger total as offset + it,
 * a lower bound (docs/api.md, GET /api/v1/tasks): shown as "1000+", not as the exact total.
 */
const COUNT_AHEAD = 1000;
/** Survives navigation within the tab: pausing once stays paused. */
let autoRefresh = true;

export function tasksView(el, query, ctx) {
  // the API takes a status in any case (?status=completed): so does the filter
  const status = STATUSES.includes((query.get('status') ?? '').toUpperCase()) ? query.get('status').toUpperCase() : '';
  const definition = query.get('definition') ?? '';
  const limit = PAGE_SIZES.includes(Number(query.get('limit'))) ? Number(query.get('limit')) : 20;
  const offset = Math.max(0, Number.parseInt(query.get('offset') ?? '0', 10) || 0);
  const go = (changes) => ctx.navigate(hashWith('/tasks', { status, definition, limit: limit === 20 ? '' : limit, offset, ...changes }));

  const statusSelect = h('select', { id: 'filter-status', 'aria-label': 'Status', onchange: () => go({ status: statusSelect.value, offset: '' }) },
    h('option', { value: '', text: 'Any status' }),
    STATUSES.map((s) => h('option', { value: s, text: s, selected: s === status })));
  const definitionSelect = h('select', { id: 'filter-definition', 'aria-label': 'Definition', onchange: () => go({ definition: definitionSelect.value, offset: '' }) },
    h('option', { value: '', text: 'Any definition' }),
    definition ? h('option', { value: definition, text: definition, selected: true }) : null);
  const limitSelect = h('select', { id: 'filter-limit', 'aria-label': 'Page size', onchange: () => go({ limit: limitSelect.value, offset: '' }) },
    PAGE_SIZES.map((n) => h('option', { value: n, text: `${n} per page`, selected: n === limit })));
  const refreshToggle = h('input', { type: 'checkbox', id: 'auto-refresh', checked: autoRefresh });
  const refreshNow = h('button', { type: 'button', id: 'refresh', text: 'Refresh', onclick: () => load() });
  const updated = h('span', { class: 'muted', id: 'updated' });
  const body = h('div', { id: 'tasks-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  // built once and updated in place (a refresh keeps a focused button focused)
  let prevOffset = 0;
  const prev = h('button', { type: 'button', id: 'page-prev', text: '‹ Previous', disabled: offset === 0, onclick: () => go({ offset: prevOffset || '' }) });
  const pageInfo = h('span', { id: 'page-info' });
  const next = h('button', { type: 'button', id: 'page-next', text: 'Next ›', disabled: true, onclick: () => go({ offset: offset + limit }) });
  const pager = h('div', { class: 'pager', hidden: true }, prev, pageInfo, next);

  mount(el,
    h('div', { class: 'toolbar' },
      h('h1', { text: 'Tasks' }),
      h('a', { class: 'button primary', href: '#/submit', text: 'Submit a task' })),
    h('div', { class: 'toolbar filters' },
      statusSelect, definitionSelect, limitSelect,
      h('label', { class: 'check' }, refreshToggle, 'Auto-refresh (5 s)'),
      refreshNow, updated),
    body, pager);

  // definition ids for the filter (the first 100 are plenty for a picker; any id works in the hash)
  client().listDefinitions({ limit: 100 }, { signal: ctx.signal }).then((res) => {
    for (const d of res.items) {
      if (d.id !== definition) definitionSelect.append(h('option', { value: d.id, text: d.name && d.name !== d.id ? `${d.id} — ${d.name}` : d.id }));
    }
  }, () => { /* the filter still works with what the hash names */ });

  let inFlight = false;
  async function load() {
    if (inFlight) return;
    inFlight = true;
    try {
      const res = await client().listTasks(withoutEmpty({ status, task_definition_id: definition, limit, offset }), { signal: ctx.signal });
      renderTable(res);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (!isAbort(err)) mount(body, notice(err.message));
    } finally {
      inFlight = false;
    }
  }

  // The table is built once and its rows patched (dom.js patch): a row that did not change stays as
  // it is, and the box keeps its horizontal scroll (on a phone it snapped back to 0 every 5 s).
  const rows = h('tbody');
  const table = h('div', { class: 'table-scroll' }, h('table', { class: 'table', id: 'tasks-table' },
    h('thead', {}, h('tr', {}, ['Task', 'Status', 'Definition / query', 'Priority', 'Created', 'Completed', 'Tokens'].map((t) => h('th', { text: t })))),
    rows));

  function renderTable(res) {
    const focus = focusedRow();
    if (res.tasks.length === 0) {
      mount(body, h('p', { class: 'empty', text: offset > 0 ? 'No tasks on this page.' : 'No tasks match.' }));
    } else {
      if (table.parentNode !== body) mount(body, table);
      patch(rows, res.tasks.map((t) => h('tr', { class: 'row-link', dataset: { taskId: t.task_id }, onclick: (ev) => { if (!ev.target.closest('a')) ctx.navigate(`#/tasks/${encodeURIComponent(t.task_id)}`); } },
        h('td', {}, h('a', { href: `#/tasks/${encodeURIComponent(t.task_id)}`, class: 'mono', text: t.task_id })),
        h('td', {}, badge(t.status)),
        h('td', { class: 'clip' }, t.task_definition_id ? h('span', { class: 'tag', text: t.task_definition_id }) : null, t.query ? h('span', { class: 'query', text: t.query }) : null),
        h('td', { text: t.priority ?? '—' }),
        h('td', {}, time(t.created_at)),
        h('td', {}, time(t.completed_at)),
        h('td', { class: 'num', text: t.total_token_usage?.total_tokens ? String(t.total_token_usage.total_tokens) : '—' }),
      )));
    }
    if (focus && !body.contains(document.activeElement)) refocus(focus);
    renderPager(res);
  }

  function renderPager({ tasks, total_count: count }) {
    const total = count - offset >= COUNT_AHEAD ? `${count}+` : String(count);
    const last = offset + tasks.length;
    pager.hidden = false;
    if (tasks.length) {
      pageInfo.textContent = `${offset + 1}–${last} of ${total}`;
      prevOffset = Math.max(0, offset - limit);
    } else {
      // past the end (an old link, or tasks deleted meanwhile): Previous leads to the last page
      pageInfo.textContent = offset > 0 ? `past the end: ${total} task${count === 1 ? '' : 's'}` : 'none';
      prevOffset = count > 0 ? Math.floor((count - 1) / limit) * limit : 0;
    }
    next.disabled = last >= count;
  }

  // A refresh that changes the focused row redraws it; a keyboard user's focus on a task's link would
  // fall to <body>. It goes back to the same task's link (by id), or the row now in that place.
  function focusedRow() {
    const row = body.contains(document.activeElement) ? document.activeElement.closest('tr[data-task-id]') : null;
    return row ? { id: row.dataset.taskId, index: row.sectionRowIndex } : null;
  }
  function refocus({ id, index }) {
    const rows = [...body.querySelectorAll('tr[data-task-id]')];
    const row = rows.find((r) => r.dataset.taskId === id) ?? rows[Math.min(index, rows.length - 1)];
    row?.querySelector('a')?.focus({ preventScroll: true });
  }

  let timer;
  const schedule = () => {
    clearInterval(timer);
    if (autoRefresh) timer = setInterval(load, REFRESH_MS);
  };
  refreshToggle.addEventListener('change', () => {
    autoRefresh = refreshToggle.checked;
    schedule();
  });
  load();
  schedule();
  return () => clearInterval(timer);
}
