// #/definitions: the definitions the caller's tenant can use (GET /api/v1/definitions, searched
// and paged), and #/definitions/<id>: one with its schemas and defaults.
import { client, isAbort, withoutEmpty } from './api.js';
import { duration, fields, h, hashWith, mount, notice, pre } from './dom.js';

const PAGE = 25;

export function definitionsView(el, query, ctx) {
  const search = query.get('search') ?? '';
  const page = Math.max(1, Number.parseInt(query.get('page') ?? '1', 10) || 1);
  const box = h('input', { type: 'search', id: 'definitions-search', placeholder: 'Search id, name or description', value: search, 'aria-label': 'Search', maxlength: 200 });
  const body = h('div', { id: 'definitions-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  const pager = h('div', { class: 'pager', id: 'definitions-pager' });
  const form = h('form', { class: 'toolbar filters', role: 'search' }, box, h('button', { type: 'submit', text: 'Search' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.navigate(hashWith('/definitions', { search: box.value.trim() }));
  });
  mount(el, h('h1', { text: 'Definitions' }), form, body, pager);

  client().listDefinitions(withoutEmpty({ search, page, limit: PAGE }), { signal: ctx.signal }).then((res) => {
    const { total_pages: pages, total_items: total } = res.pagination;
    const pastEnd = res.items.length === 0 && total > 0;
    if (pastEnd) {
      // an old link, or definitions deleted meanwhile
      mount(body, h('p', { class: 'empty', text: `Page ${page} is past the end: ${total} definition${total === 1 ? '' : 's'}.` }));
    } else if (res.items.length === 0) {
      mount(body, h('p', { class: 'empty', text: search ? 'No definition matches.' : 'No definitions.' }));
    } else {
      mount(body, h('div', { class: 'table-scroll' }, h('table', { class: 'table', id: 'definitions-table' },
        h('thead', {}, h('tr', {}, ['Id', 'Name', 'Kind', 'Type', 'Version', 'Description'].map((t) => h('th', { text: t })))),
        h('tbody', {}, res.items.map((d) => h('tr', { dataset: { definitionId: d.id } },
          h('td', {}, h('a', { href: `#/definitions/${encodeURIComponent(d.id)}`, class: 'mono', text: d.id })),
          h('td', { text: d.name }),
          h('td', { text: d.kind }),
          h('td', { text: d.type }),
          h('td', { text: d.version }),
          h('td', { class: 'clip', text: d.description })))))));
    }
    // past the end, Previous leads to the last page
    const previous = res.items.length === 0 ? Math.max(pages, 1) : page - 1;
    mount(pager,
      h('button', { type: 'button', class: 'prev', text: '‹ Previous', disabled: page <= 1, onclick: () => ctx.navigate(hashWith('/definitions', { search, page: previous > 1 ? previous : '' })) }),
      h('span', { text: pastEnd ? `past the end (${pages} page${pages === 1 ? '' : 's'})` : `page ${Math.min(page, Math.max(pages, 1))} of ${Math.max(pages, 1)} (${total} definition${total === 1 ? '' : 's'})` }),
      h('button', { type: 'button', class: 'next', text: 'Next ›', disabled: page >= pages, onclick: () => ctx.navigate(hashWith('/definitions', { search, page: page + 1 })) }));
  }, (err) => {
    if (!isAbort(err)) mount(body, notice(err.message));
  });
}

export function definitionDetailView(el, id, ctx) {
  const body = h('div', { id: 'definition-detail' }, h('p', { class: 'muted', text: 'Loading…' }));
  mount(el, h('p', {}, h('a', { href: '#/definitions', text: '‹ Definitions' })), h('h1', { class: 'mono', text: id }), body);
  client().getDefinition(id, { signal: ctx.signal }).then((d) => {
    const rp = d.retry_policy;
    mount(body,
      h('div', { class: 'toolbar' }, h('a', { class: 'button primary', href: hashWith('/submit', { definition: d.id }), text: 'Submit a task with it' })),
      h('section', { class: 'card' }, fields([
        ['Name', d.name],
        ['Description', d.description],
        ['Kind', d.kind],
        ['Type', d.type],
        ['Version', d.version],
        ['Default priority', d.priority],
        ['Timeout', d.timeout_ms === null ? 'server default' : duration(d.timeout_ms)],
        ['Retry policy', rp ? pre(rp) : 'server default'],
        ['Approval', d.approval ? pre(d.approval) : 'none'],
      ])),
      h('div', { class: 'grid' },
        h('section', { class: 'card', dataset: { block: 'input_schema' } }, h('h2', { text: 'input_schema' }), pre(d.input_schema)),
        h('section', { class: 'card', dataset: { block: 'output_schema' } }, h('h2', { text: 'output_schema' }), pre(d.output_schema))));
  }, (err) => {
    if (!isAbort(err)) mount(body, notice(err.message));
  });
}
