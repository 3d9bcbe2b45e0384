// #/approvals: GET /api/v1/approvals?status=… (pending by default); each pending one can be
// approved or denied with optional feedback (POST /api/v1/approvals/decision).
import { client, isAbort } from './api.js';
import { h, hashWith, mount, notice, pre, time } from './dom.js';

const FILTERS = ['pending', 'approved', 'denied', 'cancelled'];

export function approvalsView(el, query, ctx) {
  const status = FILTERS.includes(query.get('status') ?? '') ? query.get('status') : 'pending';
  const list = h('div', { id: 'approvals-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  const message = h('div', { id: 'approvals-message' });
  mount(el,
    h('div', { class: 'toolbar' },
      h('h1', { text: 'Approvals' }),
      h('nav', { class: 'tabs' }, FILTERS.map((f) => h('a', { href: hashWith('/approvals', { status: f === 'pending' ? '' : f }), class: f === status ? 'active' : '', text: f }))),
      h('button', { type: 'button', id: 'approvals-refresh', text: 'Refresh', onclick: () => load() })),
    message, list);

  async function load() {
    try {
      const res = await client().listApprovals({ status, limit: 100 }, { signal: ctx.signal });
      if (res.approvals.length === 0) {
        mount(list, h('p', { class: 'empty', text: status === 'pending' ? 'Nothing waits for a decision.' : `No ${status} approvals.` }));
        return;
      }
      mount(list, res.approvals.map(card));
    } catch (err) {
      if (!isAbort(err)) mount(list, notice(err.message));
    }
  }

  function card(a) {
    const feedback = h('input', { type: 'text', class: 'feedback', placeholder: 'Feedback (optional)', maxlength: 10000, 'aria-label': 'Feedback' });
    const error = h('div', { class: 'decision-error' });
    const decide = async (approved, buttons) => {
      for (const b of buttons) b.disabled = true;
      mount(error);
      const body = { workflow_id: a.workflow_id, approval_id: a.approval_id, approved };
      if (feedback.value.trim()) body.feedback = feedback.value.trim();
      try {
        const res = await client().decideApproval(body, { signal: ctx.signal });
        mount(message, notice(`${res.message} for ${a.workflow_id}.`, 'info'));
        await load();
      } catch (err) {
        if (isAbort(err)) return;
        mount(error, notice(err.message));
        for (const b of buttons) b.disabled = false;
      }
    };
    const approve = h('button', { type: 'button', class: 'primary approve', text: 'Approve' });
    const deny = h('button', { type: 'button', class: 'danger deny', text: 'Deny' });
    approve.addEventListener('click', () => decide(true, [approve, deny]));
    deny.addEventListener('click', () => decide(false, [approve, deny]));
    return h('section', { class: 'card approval', dataset: { approvalId: a.approval_id, workflowId: a.workflow_id } },
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
  }

  load();
}
