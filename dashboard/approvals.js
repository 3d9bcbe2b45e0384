// #/approvals: GET /api/v1/approvals?status=… (pending by default), newest request first, paged
// (limit/offset, the API's has_more); each pending one can be approved or denied with optional
// feedback (POST /api/v1/approvals/decision).
import { client, ConflictError, isAbort } from './api.js';
import { h, hashWith, mount, notice, pre, time } from './dom.js';

const FILTERS = ['pending', 'approved', 'denied', 'cancelled'];
const PAGE_SIZES = [10, 20, 50, 100];

export function approvalsView(el, query, ctx) {
  const status = FILTERS.includes(query.get('status') ?? '') ? query.get('status') : 'pending';
  const limit = PAGE_SIZES.includes(Number(query.get('limit'))) ? Number(query.get('limit')) : 20;
  const offset = Math.max(0, Number.parseInt(query.get('offset') ?? '0', 10) || 0);
  const go = (changes) => ctx.navigate(hashWith('/approvals', { status: status === 'pending' ? '' : status, limit: limit === 20 ? '' : limit, offset, ...changes }));

  const heading = h('h1', { text: 'Approvals', tabindex: -1 });
  const list = h('div', { id: 'approvals-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  const message = h('div', { id: 'approvals-message' });
  const prev = h('button', { type: 'button', id: 'approvals-prev', text: '‹ Previous', disabled: offset === 0, onclick: () => go({ offset: Math.max(0, offset - limit) || '' }) });
  const pageInfo = h('span', { id: 'approvals-page-info' });
  const next = h('button', { type: 'button', id: 'approvals-next', text: 'Next ›', disabled: true, onclick: () => go({ offset: offset + limit }) });
  const pager = h('div', { class: 'pager', hidden: true }, prev, pageInfo, next);
  mount(el,
    h('div', { class: 'toolbar' },
      heading,
      h('nav', { class: 'tabs' }, FILTERS.map((f) => h('a', { href: hashWith('/approvals', { status: f === 'pending' ? '' : f }), class: f === status ? 'active' : '', text: f }))),
      h('button', { type: 'button', id: 'approvals-refresh', text: 'Refresh', onclick: () => load() })),
    message, list, pager);

  async function load() {
    try {
      const res = await client().listApprovals({ status, limit, offset }, { signal: ctx.signal });
      const shown = res.approvals.length;
      pager.hidden = offset === 0 && !res.has_more;
      pageInfo.textContent = shown ? `${offset + 1}–${offset + shown}${res.has_more ? ', more follow' : ''}` : 'past the end';
      next.disabled = !res.has_more;
      if (shown === 0) {
        const none = status === 'pending' ? 'Nothing waits for a decision.' : `No ${status} approvals.`;
        mount(list, h('p', { class: 'empty', text: offset > 0 ? 'No approvals on this page: Previous goes back.' : none }));
        return;
      }
      mount(list, res.approvals.map(card));
    } catch (err) {
      if (!isAbort(err)) mount(list, notice(err.message));
    }
  }

  /**
   * A decided card goes with the reload, and the keyboard with it: it moves to the card now in
   * that place (its task link: Enter there opens the task rather than deciding another approval),
   * the one before it, or the heading.
   */
  function refocus(index) {
    if (document.activeElement && document.activeElement !== document.body) return;
    const cards = [...list.querySelectorAll('section.approval')];
    ((cards[index] ?? cards.at(-1))?.querySelector('a') ?? heading).focus();
  }

  function card(a) {
    const feedback = h('input', { type: 'text', class: 'feedback', placeholder: 'Feedback (optional)', maxlength: 10000, 'aria-label': 'Feedback' });
    const error = h('div', { class: 'decision-error' });
    const decide = async (approved, buttons) => {
      for (const b of buttons) b.disabled = true;
      mount(error);
      const body = { workflow_id: a.workflow_id, approval_id: a.approval_id, approved };
      if (feedback.value.trim()) body.feedback = feedback.value.trim();
      const index = [...list.querySelectorAll('section.approval')].indexOf(section);
      try {
        const res = await client().decideApproval(body, { signal: ctx.signal });
        mount(message, notice(`${res.message} for ${a.workflow_id}.`, 'info'));
      } catch (err) {
        if (isAbort(err)) return;
        if (!(err instanceof ConflictError)) {
          mount(error, notice(err.message));
          for (const b of buttons) b.disabled = false;
          return;
        }
        // decided elsewhere, or its task ended: the list as it is now shows it so
        mount(message, notice(`${a.workflow_id}: ${err.message}`));
      }
      await load();
      refocus(index);
    };
    const approve = h('button', { type: 'button', class: 'primary approve', text: 'Approve' });
    const deny = h('button', { type: 'button', class: 'danger deny', text: 'Deny' });
    approve.addEventListener('click', () => decide(true, [approve, deny]));
    deny.addEventListener('click', () => decide(false, [approve, deny]));
    const section = h('section', { class: 'card approval', dataset: { approvalId: a.approval_id, workflowId: a.workflow_id } },
      h('div', { class: 'toolbar' },
        h('a', { href: `#/tasks/${encodeURIComponent(a.workflow_id)}`, class: 'mono', text: a.workflow_id }),
        h('span', { class: `badge badge-approval-${FILTERS.includes(a.status) ? a.status : 'unknown'}`, text: a.status })),
      a.message ? h('p', { class: 'approval-message', text: a.message }) : null,
      h('p', { class: 'muted' }, 'Requested ', time(a.requested_at), a.timeout_at ? [' · times out ', time(a.timeout_at)] : null,
        a.decided_at ? [' · decided ', time(a.decided_at), a.decided_by ? ` by ${a.decided_by}` : ''] : null),
      a.payload && Object.keys(a.payload).length ? h('details', {}, h('summary', { text: 'payload' }), pre(a.payload)) : null,
      a.feedback ? h('p', {}, 'Feedback: ', h('span', { text: a.feedback })) : null,
      a.status === 'pending' ? h('div', { class: 'actions' }, feedback, approve, deny) : null,
      error);
    return section;
  }

  load();
}
