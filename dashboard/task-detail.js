// #/tasks/<id>: the task (GET /tasks/{id}), its control state, its events live through the SDK's
// client.stream() (SSE over fetch with the key in a header, resumed with Last-Event-ID after a drop,
// ended with the task), and the cancel / pause / resume buttons the status allows.
import { client, isAbort } from './api.js';
import { badge, duration, fields, formatCost, h, mount, notice, patch, pre, TERMINAL, time } from './dom.js';

/** Events after which the task's row has changed (status, attempts, output). */
const STATUS_EVENTS = /^(WORKFLOW_|STREAM_END|APPROVAL_|RETRYING|ERROR_OCCURRED)/;
/** While the task is not finished, re-read it this often even if no event says so (ms). */
const POLL_MS = 5000;
/** The buttons' calls; each answers `{message}`. */
const ACTIONS = {
  pause: (api, id, opts) => api.pause(id, opts),
  resume: (api, id, opts) => api.resume(id, opts),
  cancel: (api, id, opts) => api.cancel(id, opts),
};

/**
 * True while the task waits for its run_at (a delay, a retry's backoff). The server moves run_at to
 * now() whenever it queues a task again (after an approval, a resume, a lost lease), so a run_at
 * later than created_at alone does not mean the task was delayed.
 */
function waitsUntil(task) {
  if (!task.run_at || (task.status !== 'QUEUED' && task.status !== 'PAUSED')) return false;
  return Date.parse(task.run_at) > Date.parse(task.updated_at ?? task.created_at);
}

/** Puts a fields() list into `el`, patching the rows of the one already there (dom.js patch). */
function patchFields(el, dl) {
  const current = el.firstElementChild;
  if (current?.tagName === 'DL' && el.childNodes.length === 1) patch(current, [...dl.childNodes]);
  else mount(el, dl);
}

export function taskDetailView(el, id, ctx) {
  // the heading stays (it may hold the focus); only the badge beside it is redrawn
  const statusBadge = h('span');
  const heading = h('h1', { class: 'mono', text: id, tabindex: -1 });
  const header = h('div', { class: 'toolbar' }, heading, statusBadge);
  // built once: a refresh (every 5 s while unfinished, and on each status event) only shows or
  // hides the buttons, so a reason being typed keeps its text and the focus
  const reason = h('input', { type: 'text', id: 'action-reason', placeholder: 'Reason (optional)', maxlength: 1000, 'aria-label': 'Reason' });
  const button = (name, label, cls) => h('button', { type: 'button', id: `task-${name}`, class: cls, text: label, hidden: true, onclick: () => act(name, reason.value.trim()) });
  const buttons = { pause: button('pause', 'Pause', ''), resume: button('resume', 'Resume', ''), cancel: button('cancel', 'Cancel task', 'danger') };
  const actions = h('div', { class: 'actions', id: 'task-actions', hidden: true }, reason, Object.values(buttons));
  const actionMsg = h('div', { id: 'action-message' });
  const summary = h('div', { id: 'task-summary' }, h('p', { class: 'muted', text: 'Loading…' }));
  const control = h('div', { id: 'control-state' });
  const payloads = h('div', { id: 'task-payloads' });
  const streamState = h('span', { id: 'stream-state', class: 'muted', text: 'connecting…' });
  const eventList = h('ol', { id: 'events', class: 'events' });
  const eventCount = h('span', { id: 'event-count', class: 'muted', text: '0 events' });

  mount(el,
    h('p', {}, h('a', { href: '#/tasks', text: '‹ Tasks' })),
    header, actions, actionMsg,
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h2', { text: 'Task' }), summary),
      h('section', { class: 'card' }, h('h2', { text: 'Control state' }), control)),
    payloads,
    h('section', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', { text: 'Events' }), streamState, eventCount),
      eventList));

  let task = null;
  let controlState = null;
  let refreshing = null;
  let refreshAgain = false;

  async function refresh() {
    // one read at a time; a request during one runs once more after it
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        const api = client();
        const [t, c] = await Promise.all([api.getStatus(id, { signal: ctx.signal }), api.getControlState(id, { signal: ctx.signal })]);
        task = t;
        controlState = c;
        render();
      } catch (err) {
        if (!isAbort(err)) mount(summary, notice(err.message));
      }
    })();
    await refreshing;
    refreshing = null;
    if (refreshAgain && !ctx.signal.aborted) {
      refreshAgain = false;
      return refresh();
    }
  }

  // Each refresh builds the page anew and patches what differs into it (dom.js patch): an unfinished
  // task is re-read every 5 s, and redrawing it all reset the boxes' scroll and wiped a selection.
  function render() {
    patch(statusBadge, badge(task.status));
    const em = task.execution_metadata ?? {};
    const usage = task.usage;
    patchFields(summary, fields([
      ['Status', badge(task.status)],
      task.task_definition_id ? ['Definition', h('a', { href: `#/definitions/${encodeURIComponent(task.task_definition_id)}`, text: task.task_definition_id })] : null,
      task.query ? ['Query', h('div', { class: 'query-text', id: 'task-query', text: task.query })] : null,
      ['Priority', task.priority],
      ['Attempts', `${task.attempts} of ${task.max_attempts}`],
      ['Created', time(task.created_at)],
      waitsUntil(task) ? ['Runs at', time(task.run_at)] : null,
      ['Started', time(task.started_at)],
      ['Completed', time(task.completed_at)],
      ['Duration', duration(em.duration_ms)],
      em.worker_id ? ['Worker', h('span', { class: 'mono', text: em.worker_id })] : null,
      task.session_id ? ['Session', h('span', { class: 'mono', text: task.session_id })] : null,
      task.mode ? ['Mode', task.mode] : null,
      task.model_used ? ['Model', `${task.model_used}${task.provider ? ` (${task.provider})` : ''}`] : null,
      usage ? ['Usage', `${usage.total_tokens ?? 0} tokens (in ${usage.input_tokens ?? 0}, out ${usage.output_tokens ?? 0}), ${formatCost(usage.estimated_cost)}`] : null,
      task.workflow_instance_id ? ['Workflow instance', task.workflow_instance_id] : null,
    ]));
    patchFields(control, fields([
      ['Paused', controlState.is_paused ? 'yes' : 'no'],
      controlState.paused_at ? ['Paused at', time(controlState.paused_at)] : null,
      controlState.pause_reason ? ['Pause reason', controlState.pause_reason] : null,
      controlState.paused_by ? ['Paused by', controlState.paused_by] : null,
      ['Cancelled', controlState.is_cancelled ? 'yes' : 'no'],
      controlState.cancel_reason ? ['Cancel reason', controlState.cancel_reason] : null,
      controlState.cancelled_by ? ['Cancelled by', controlState.cancelled_by] : null,
      ['Awaiting approval', controlState.awaiting_approval ? h('a', { href: '#/approvals', text: 'yes — decide in Approvals' }) : 'no'],
    ]));
    const blocks = [
      ['Error', task.error, 'error'],
      ['Result', task.result],
      ['Output', task.output ?? (task.result ? null : task.response)],
      ['Input', task.input],
      ['Context', task.context && Object.keys(task.context).length ? task.context : null],
      ['Metadata', task.metadata && Object.keys(task.metadata).length ? task.metadata : null],
    ].filter(([, v]) => v !== null && v !== undefined && v !== '');
    patch(payloads, blocks.map(([title, value, kind]) =>
      h('section', { class: `card${kind === 'error' ? ' card-error' : ''}`, dataset: { block: title.toLowerCase() } }, h('h2', { text: title }), pre(value))));
    renderActions();
  }

  function renderActions() {
    const s = task.status;
    const finished = TERMINAL.has(s);
    const canCancel = !finished;
    const canPause = s === 'QUEUED' || (s === 'RUNNING' && !controlState.is_paused && !controlState.awaiting_approval);
    const canResume = s === 'PAUSED' || (s === 'RUNNING' && controlState.is_paused);
    buttons.pause.hidden = !canPause;
    buttons.resume.hidden = !canResume;
    buttons.cancel.hidden = !canCancel;
    actions.hidden = !canCancel && !canPause && !canResume;
  }

  async function act(name, why) {
    for (const b of Object.values(buttons)) b.disabled = true;
    mount(actionMsg);
    try {
      const res = await ACTIONS[name](client(), id, { reason: why || undefined, signal: ctx.signal });
      mount(actionMsg, notice(res.message, 'info'));
      reason.value = '';
    } catch (err) {
      if (isAbort(err)) return;
      mount(actionMsg, notice(err.message));
    }
    await refresh();
    for (const b of Object.values(buttons)) b.disabled = false;
    // Pause gives way to Resume: the keyboard stays in the actions rather than falling to <body>
    // after a Cancel none is left: the heading (beside the new status) takes it
    const clicked = buttons[name];
    if (clicked.hidden && (document.activeElement === clicked || document.activeElement === document.body)) {
      (Object.values(buttons).find((b) => !b.hidden) ?? heading).focus();
    }
  }

  let count = 0;
  /** A streamed event: the persisted event's JSON plus `event`, the SSE name it came under. */
  function addEvent(ev) {
    count++;
    eventCount.textContent = `${count} event${count === 1 ? '' : 's'}`;
    const item = h('li', { class: 'event', dataset: { type: String(ev.type ?? ev.event), seq: String(ev.seq ?? '') } },
      h('span', { class: 'seq', text: ev.seq ? `#${ev.seq}` : '·' }),
      h('span', { class: 'event-type', text: ev.type ?? ev.event }),
      ev.timestamp ? time(ev.timestamp) : null,
      ev.agent_id ? h('span', { class: 'tag', text: ev.agent_id }) : null,
      ev.message ? h('span', { class: 'event-message', text: ev.message }) : null,
      ev.payload && Object.keys(ev.payload).length ? h('details', {}, h('summary', { text: 'payload' }), pre(ev.payload)) : null);
    eventList.append(item);
    if (STATUS_EVENTS.test(String(ev.type ?? ''))) refresh();
  }

  const stateText = { connecting: 'connecting…', live: 'live', reconnecting: 'connection lost — reconnecting…', done: 'stream ended', error: 'stream error' };
  const showState = (state, message) => {
    streamState.textContent = message ? `${stateText[state]}: ${message}` : stateText[state];
    streamState.dataset.state = state;
  };
  (async () => {
    try {
      const events = client().stream(id, {
        signal: ctx.signal,
        // while the page is open a lost connection is retried for good (1 s doubling to 10 s), as
        // the state line says: a server restart may outlast the SDK's 10 tries (about 75 s)
        maxReconnects: Infinity,
        onState: (state) => {
          showState(state);
          if (state === 'done') refresh();
        },
      });
      for await (const ev of events) addEvent(ev);
    } catch (err) {
      // final: the task is unknown or not the key's tenant's, or the key was revoked or expired
      // (AuthenticationError: the client has signed out, which left this view)
      if (!ctx.signal.aborted && !isAbort(err)) showState('error', err.message);
    }
  })();

  refresh();
  const poll = setInterval(() => {
    if (task && !TERMINAL.has(task.status)) refresh();
  }, POLL_MS);
  return () => clearInterval(poll);
}
