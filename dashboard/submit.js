// #/submit: a definition task (picked from GET /api/v1/definitions, its input_schema shown, the
// input as JSON checked here before sending) or a free-text agent query; priority and an optional
// delay. POST /api/v1/tasks with an Idempotency-Key per attempt, then on to the new task.
import { client, isAbort, newIdempotencyKey, PermissionDeniedError, retryAfterSeconds } from './api.js';
import { h, mount, notice, pre } from './dom.js';

/** Reads every definition the caller can see, a page of 100 at a time (a tenant holds at most 500 of its own). */
export async function allDefinitions(signal) {
  const items = [];
  const c = client();
  for (let page = 1; page <= 20; page++) {
    const res = await c.listDefinitions({ limit: 100, page }, { signal });
    items.push(...res.items);
    if (page >= res.pagination.total_pages) break;
  }
  return items;
}

/** Parses the JSON in a textarea: `{value}` or `{error}` with the parser's message. */
function parseJson(text, { optional = false } = {}) {
  if (optional && text.trim() === '') return { value: undefined };
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: err.message };
  }
}

export function submitView(el, query, ctx) {
  const preset = query.get('definition') ?? '';
  let kind = query.get('kind') === 'query' ? 'query' : 'definition';

  const kindDefinition = h('input', { type: 'radio', name: 'kind', id: 'kind-definition', value: 'definition', checked: kind === 'definition' });
  const kindQuery = h('input', { type: 'radio', name: 'kind', id: 'kind-query', value: 'query', checked: kind === 'query' });
  const definitionSelect = h('select', { id: 'submit-definition', 'aria-label': 'Definition' }, h('option', { value: '', text: 'Loading definitions…' }));
  // instead of the picker when the definitions cannot be listed (a key without
  // tasks:definitions:list, such as the README's `ci` key, may still submit by id)
  const definitionId = h('input', { type: 'text', id: 'submit-definition-id', value: preset, maxlength: 128, spellcheck: 'false', placeholder: 'Definition id, e.g. noop', 'aria-label': 'Definition id' });
  const definitionNote = h('div', { id: 'definition-note' });
  let definitionField = definitionSelect;
  const definitionLabel = h('label', { for: 'submit-definition', text: 'Definition' });
  const definitionInfo = h('div', { id: 'definition-info' });
  const input = h('textarea', { id: 'submit-input', rows: 8, spellcheck: 'false', 'aria-label': 'Input (JSON)' });
  input.value = '{}';
  const inputError = h('div', { id: 'input-error', class: 'field-error', role: 'alert' });
  const queryText = h('textarea', { id: 'submit-query', rows: 5, maxlength: 10000, 'aria-label': 'Query' });
  const priority = h('select', { id: 'submit-priority', 'aria-label': 'Priority' },
    h('option', { value: '', text: 'Default priority' }),
    ['low', 'medium', 'high', 'urgent'].map((p) => h('option', { value: p, text: p })));
  const delay = h('input', { type: 'number', id: 'submit-delay', min: 0, step: 1, placeholder: 'Delay (ms, optional)', 'aria-label': 'Delay in ms' });
  const button = h('button', { type: 'submit', class: 'primary', id: 'submit-button', text: 'Submit task' });
  const result = h('div', { id: 'submit-result' });

  const definitionPart = h('fieldset', { id: 'definition-part' },
    h('legend', { text: 'Definition task' }),
    definitionLabel, definitionSelect, definitionNote, definitionInfo,
    h('label', { for: 'submit-input', text: 'Input (JSON)' }), input, inputError);
  const queryPart = h('fieldset', { id: 'query-part' },
    h('legend', { text: 'Agent task' }),
    h('label', { for: 'submit-query', text: 'Query' }), queryText,
    h('p', { class: 'muted', text: 'Runs on the configured LLM provider; without one the server refuses it (LLM_NOT_CONFIGURED).' }));

  const form = h('form', { class: 'card form', id: 'submit-form' },
    h('div', { class: 'radios' },
      h('label', { class: 'check' }, kindDefinition, 'Definition task'),
      h('label', { class: 'check' }, kindQuery, 'Agent query')),
    definitionPart, queryPart,
    h('div', { class: 'row' },
      h('div', {}, h('label', { for: 'submit-priority', text: 'Priority' }), priority),
      h('div', {}, h('label', { for: 'submit-delay', text: 'Start after (ms)' }), delay)),
    button, result);
  mount(el, h('h1', { text: 'Submit a task' }), form);

  const showKind = () => {
    definitionPart.hidden = kind !== 'definition';
    queryPart.hidden = kind !== 'query';
  };
  kindDefinition.addEventListener('change', () => { kind = 'definition'; showKind(); });
  kindQuery.addEventListener('change', () => { kind = 'query'; showKind(); });
  showKind();

  const checkInput = () => {
    const parsed = parseJson(input.value);
    inputError.textContent = parsed.error ? `Invalid JSON: ${parsed.error}` : '';
    input.classList.toggle('invalid', Boolean(parsed.error));
    return parsed;
  };
  input.addEventListener('input', checkInput);

  let detailController;
  async function showDefinition(id) {
    detailController?.abort();
    mount(definitionInfo);
    if (!id) return;
    detailController = new AbortController();
    const signal = AbortSignal.any ? AbortSignal.any([ctx.signal, detailController.signal]) : detailController.signal;
    try {
      const d = await client().getDefinition(id, { signal });
      mount(definitionInfo,
        d.description ? h('p', { class: 'muted', text: d.description }) : null,
        h('details', { open: true, id: 'definition-schema' }, h('summary', { text: 'input_schema' }), pre(d.input_schema)));
    } catch (err) {
      if (!isAbort(err)) mount(definitionInfo, notice(err.message));
    }
  }
  definitionSelect.addEventListener('change', () => showDefinition(definitionSelect.value));

  allDefinitions(ctx.signal).then((defs) => {
    mount(definitionSelect, h('option', { value: '', text: 'Choose a definition…' }),
      defs.map((d) => h('option', { value: d.id, text: d.name && d.name !== d.id ? `${d.id} — ${d.name}` : d.id, selected: d.id === preset })));
    if (preset) showDefinition(preset);
  }, (err) => {
    if (isAbort(err)) return;
    const why = err instanceof PermissionDeniedError
      ? `This key may not list definitions (${err.message}): type the definition's id.`
      : `The definitions could not be listed (${err.message}): type the definition's id.`;
    definitionSelect.replaceWith(definitionId);
    definitionField = definitionId;
    definitionLabel.htmlFor = 'submit-definition-id';
    definitionLabel.textContent = 'Definition id';
    mount(definitionNote, notice(why, 'info'));
  });

  // one key per filled-in form: a double click or a retry after a lost answer submits once
  let idempotencyKey = newIdempotencyKey();
  form.addEventListener('input', () => { idempotencyKey = newIdempotencyKey(); });

  let waiting = null;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    mount(result);
    const body = {};
    if (kind === 'definition') {
      const chosen = definitionField.value.trim();
      if (!chosen) return mount(result, notice(definitionField === definitionId ? 'Type a definition id.' : 'Choose a definition.'));
      const parsed = checkInput();
      if (parsed.error) return mount(result, notice(`Input is not valid JSON: ${parsed.error}`));
      body.task_definition_id = chosen;
      body.input = parsed.value;
    } else {
      if (!queryText.value.trim()) return mount(result, notice('Write a query.'));
      body.query = queryText.value;
    }
    if (priority.value) body.priority = priority.value;
    if (delay.value !== '') body.delay_ms = Number(delay.value);
    button.disabled = true;
    waiting = rateLimitNotice(result);
    try {
      const task = await client(waiting.observe).submitTask(body, { idempotencyKey, signal: ctx.signal });
      ctx.navigate(`#/tasks/${encodeURIComponent(task.taskId)}`);
    } catch (err) {
      if (isAbort(err)) return;
      const d = err.details;
      mount(result, notice(d && (d.path !== undefined || d.reason) ? `${err.message} (at ${d.path || '/'}: ${d.reason ?? ''})` : err.message));
    } finally {
      waiting.stop();
      button.disabled = false;
    }
  });
  return () => waiting?.stop();
}

/**
 * While the SDK waits out a 429 (Retry-After, up to 30 s) before trying the submit again, says so
 * with a countdown instead of showing nothing but a disabled button. `observe` sees each answer.
 */
function rateLimitNotice(el) {
  let countdown;
  const stop = () => clearInterval(countdown);
  const observe = (res) => {
    stop();
    if (res.status !== 429) return mount(el);
    let left = retryAfterSeconds(res) ?? 1;
    const line = h('span', { id: 'submit-waiting' });
    const show = () => { line.textContent = left > 0 ? `Rate limited: retrying in ${left} s…` : 'Rate limited: retrying…'; };
    show();
    mount(el, h('div', { class: 'notice notice-info', role: 'status' }, line));
    countdown = setInterval(() => {
      left -= 1;
      show();
      if (left <= 0) stop();
    }, 1000);
  };
  return { observe, stop };
}
