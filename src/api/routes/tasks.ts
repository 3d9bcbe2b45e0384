// /api/v1/tasks: submit, read, list, events, and the control routes (cancel, pause, resume).
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { ApiError } from '../../contract/errors.js';
import { notOneOf } from '../errors.js';
import {
  CancelBody, ControlBody, ControlResponse, ControlState, errorResponses, EventsQuery, EventsResponse, IdParam, ListTasksQuery, ListTasksResponse, MAX_LIST_OFFSET,
  SubmitStreamResponse, SubmitTaskBody, SubmitTaskResponse, TaskView,
} from '../../contract/tasks.js';
import { TASK_STATUSES, isTerminal, parseStatus, type TaskStatus } from '../../domain/lifecycle.js';
import { tasksGet, tasksListPage, type NewTask, type TaskRow } from '../../storage/queries/tasks.js';
import { sql } from '../../storage/queries/transitions.js';
import { eventsList } from '../../storage/queries/events.js';
import { toWireEvent } from '../../events/hub.js';
import type { AppDeps } from '../deps.js';
import { aliased, buildTask, definitionIdOf } from '../submit.js';
import { assertAgentTaskRunnable } from '../chat-request.js';
import { SubmitBatcher } from '../submit-batcher.js';
import type { IdempotencyHandle, StoredResponse } from '../idempotency.js';
import { iso, taskListItem, taskView } from '../task-view.js';
import { cancelTask, control } from '../task-control.js';

export async function taskRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const batcher = new SubmitBatcher(deps.db, {
    // one insert at a time while batches are small; more only once 32 submits wait (fewer, fuller
    // statements cost less per task: measured 9.7k vs 4.5k submits/s with 8 small ones in flight)
    maxInFlight: deps.db.kind === 'pglite' ? 1 : 4,
    minBatchWhileBusy: 32,
    dispatch: deps.dispatch,
    afterCommit: (n, queued) => {
      deps.metrics.submitBatchSize.observe(n);
      if (queued > 0) deps.signals.work();
    },
  });

  async function load(tenantId: string, id: string): Promise<TaskRow> {
    const row = await tasksGet(deps.db, tenantId, id);
    if (!row) throw new ApiError('NOT_FOUND', `task ${id} not found`);
    return row;
  }

  /**
   * A submit's response, built from the inserted row. With an Idempotency-Key it is stored in the
   * transaction that inserts the task, so key row and task row commit together.
   */
  type SubmitReply = (task: NewTask, created: Date) => StoredResponse & { body: Record<string, unknown> };

  async function submit(
    req: { body: SubmitTaskBody; principal: import('../../auth/scopes.js').Principal; headers: Record<string, unknown>; idempotency: IdempotencyHandle | null },
    respond: SubmitReply,
  ) {
    const traceparent = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined;
    // a definition this process has not heard of yet may have been created on another a moment ago
    const definitionId = definitionIdOf(req.body);
    if (definitionId && !deps.catalog.get(req.principal.tenantId, definitionId)) await deps.catalog.getFresh(req.principal.tenantId, definitionId);
    const task = buildTask(req.body, req.principal, deps.catalog, { maxObjectBytes: deps.config.maxObjectBytes, defaultTimeoutMs: deps.config.defaultTimeoutMs }, traceparent);
    assertAgentTaskRunnable(deps.config.llm, task, task.task_definition_id ? deps.catalog.get(task.tenant_id, task.task_definition_id)?.kind : undefined);
    const idem = req.idempotency;
    const created = await batcher.submit(task, idem ? (tx, at) => idem.saveInTx(tx, respond(task, at)) : undefined);
    deps.metrics.tasksSubmitted.inc({ kind: task.kind });
    return respond(task, created);
  }

  const taskHeaders = (task: NewTask): Record<string, string> => ({ 'x-workflow-id': task.id, ...(task.session_id ? { 'x-session-id': task.session_id } : {}) });
  const submitted: SubmitReply = (task, created) => ({
    status: 200,
    headers: taskHeaders(task),
    body: { task_id: task.id, workflow_id: task.id, session_id: task.session_id, status: 'QUEUED', message: 'Task submitted successfully', created_at: iso(created)! },
  });
  const submittedForStream: SubmitReply = (task) => {
    const streamUrl = `/api/v1/stream/sse?workflow_id=${encodeURIComponent(task.id)}`;
    return {
      status: 201,
      headers: { ...taskHeaders(task), link: `<${streamUrl}>; rel=stream` },
      body: { task_id: task.id, workflow_id: task.id, session_id: task.session_id, stream_url: streamUrl },
    };
  };

  r.post('/api/v1/tasks', {
    config: { scope: 'tasks:execute' },
    schema: { tags: ['tasks'], summary: 'Submit a task', body: SubmitTaskBody, response: { 200: SubmitTaskResponse, ...errorResponses('POST', 'scope', [404, 422]) } },
  }, async (req, reply) => {
    const out = await submit(req, submitted);
    return reply.code(200).headers(out.headers).send(out.body as Static<typeof SubmitTaskResponse>);
  });

  r.post('/api/v1/tasks/stream', {
    config: { scope: 'tasks:execute' },
    schema: { tags: ['tasks'], summary: 'Submit a task and get its stream URL', body: SubmitTaskBody, response: { 201: SubmitStreamResponse, ...errorResponses('POST', 'scope', [404, 422]) } },
  }, async (req, reply) => {
    const out = await submit(req, submittedForStream);
    return reply.code(201).headers(out.headers).send(out.body as Static<typeof SubmitStreamResponse>);
  });

  r.get('/api/v1/tasks/:id', {
    config: { scope: 'tasks:read' },
    schema: { tags: ['tasks'], summary: 'Get a task', params: IdParam, response: { 200: TaskView, ...errorResponses('GET', 'scope', [400, 404]) } },
  }, async (req, reply) => {
    const row = await load(req.principal.tenantId, req.params.id);
    reply.header('x-workflow-id', row.id);
    return taskView(row);
  });

  r.get('/api/v1/tasks', {
    config: { scope: 'tasks:list' },
    schema: { tags: ['tasks'], summary: 'List tasks, newest first', querystring: ListTasksQuery, response: { 200: ListTasksResponse, ...errorResponses('GET', 'scope', [400]) } },
  }, async (req) => {
    const q = req.query;
    const limit = q.limit ?? 20;
    const offset = q.offset ?? (q.page ? (q.page - 1) * limit : 0);
    // the offset's own bound (every row before it is read) holds for a page too
    if (offset > MAX_LIST_OFFSET) {
      throw new ApiError('VALIDATION_ERROR', `page ${q.page} with limit ${limit} starts past offset ${MAX_LIST_OFFSET}`, { location: 'querystring', path: 'page', reason: `(page - 1) × limit must be at most ${MAX_LIST_OFFSET}` });
    }
    let statuses: TaskStatus[] | undefined;
    if (q.status) {
      statuses = q.status.split(',').map((w) => {
        const s = parseStatus(w);
        if (!s) throw notOneOf('status', TASK_STATUSES, w.trim());
        return s;
      });
    }
    const filter = {
      tenantId: req.principal.tenantId, statuses, sessionId: q.session_id,
      definitionId: aliased([['task_definition_id', q.task_definition_id], ['type', q.type]]),
      workflowInstanceId: aliased([['workflow_instance_id', q.workflow_instance_id], ['workflowInstanceId', q.workflowInstanceId]]), tag: q.tag, limit, offset,
    };
    const { rows, total } = await tasksListPage(deps.db, filter);
    return { tasks: rows.map(taskListItem), total_count: rows.length ? Math.max(total, offset + rows.length) : total, limit, offset };
  });

  r.get('/api/v1/tasks/:id/events', {
    config: { scope: 'tasks:read' },
    schema: { tags: ['tasks'], summary: "A task's persisted events", params: IdParam, querystring: EventsQuery, response: { 200: EventsResponse, ...errorResponses('GET', 'scope', [400, 404]) } },
  }, async (req) => {
    const row = await load(req.principal.tenantId, req.params.id);
    const events = await eventsList(deps.db, { tenantId: row.tenant_id, taskId: row.id, limit: req.query.limit ?? 50, offset: req.query.offset ?? 0 });
    return { events: events.map(toWireEvent), count: events.length };
  });

  r.get('/api/v1/tasks/:id/stream', {
    // an EventSource pointed here sends no headers: the credential may come in the query, and the
    // redirect passes it on with the rest of the query
    config: { scope: 'tasks:read', queryAuth: true },
    schema: {
      tags: ['streaming'], summary: 'Redirects (307) to the SSE stream',
      description: 'Checks the task exists, then redirects to `/api/v1/stream/sse?workflow_id=<id>` with the query passed on (its other parameters: `last_event_id`, `types`, …).',
      params: IdParam,
      querystring: Type.Object({
        types: Type.Optional(Type.String({ description: 'Passed on: comma-separated event types (or SSE names) to send' })),
        last_event_id: Type.Optional(Type.String({ description: 'Passed on: resume strictly after this seq' })),
        api_key: Type.Optional(Type.String({ description: 'Credential for clients that cannot send headers (passed on)' })),
        token: Type.Optional(Type.String({ description: 'Same as api_key' })),
      }, { additionalProperties: true }),
      response: {
        // no body at all (send(), not send(null)): typed undefined, documented without content
        307: Type.Unsafe<undefined>({
          type: 'null', description: 'Temporary Redirect to the SSE stream (no body)',
          headers: { location: Type.String({ description: '`/api/v1/stream/sse?workflow_id=<id>` plus the query sent here' }) },
        }),
        ...errorResponses('GET', 'scope', [400, 404]),
      },
    },
  }, async (req, reply) => {
    await load(req.principal.tenantId, req.params.id);
    const qs = new URLSearchParams({ workflow_id: req.params.id });
    for (const [k, v] of Object.entries(req.query as Record<string, unknown>)) if (k !== 'workflow_id' && typeof v === 'string') qs.set(k, v);
    return reply.code(307).header('location', `/api/v1/stream/sse?${qs.toString()}`).send();
  });

  /** Control bodies are optional: a bare POST counts as `{}`. */
  const emptyBodyIsObject = async (req: { body: unknown }) => {
    if (req.body === undefined || req.body === null) req.body = {};
  };
  const controlSchema = <B extends typeof ControlBody | typeof CancelBody>(summary: string, body: B) => ({
    tags: ['control'], summary, params: IdParam, body,
    // the body may be left out (app.ts's swagger transformObject turns this into requestBody.required: false)
    'x-body-optional': true,
    response: { 202: ControlResponse, ...errorResponses('POST', 'scope', [404, 409]) },
  });

  r.post('/api/v1/tasks/:id/cancel', { config: { scope: 'tasks:cancel', rateBudget: 'control' }, preValidation: emptyBodyIsObject, schema: controlSchema('Cancel a task', CancelBody) }, async (req, reply) => {
    const reason = req.body?.reason ?? null;
    const by = req.principal.userId;
    const out = await cancelTask(deps, req.principal.tenantId, req.params.id, { reason, by, force: req.body?.force === true });
    return reply.code(202).send(out);
  });

  r.post('/api/v1/tasks/:id/pause', { config: { scope: 'tasks:cancel', rateBudget: 'control' }, preValidation: emptyBodyIsObject, schema: controlSchema('Pause a task', ControlBody) }, async (req, reply) => {
    const reason = req.body?.reason ?? null;
    const by = req.principal.userId;
    const out = await control(deps, req.principal.tenantId, req.params.id, (row) => {
      if (row.status === 'QUEUED') {
        return {
          statuses: ['QUEUED'],
          set: { status: 'PAUSED', pause_reason: reason, paused_by: by, paused_at: sql('now()') },
          events: [{ type: 'WORKFLOW_PAUSED', message: 'Task paused', payload: { reason, paused_by: by } }],
          status: 'PAUSED', message: 'Task paused',
        };
      }
      if (row.status === 'RUNNING' && row.awaiting_approval_id && !row.lease_owner) {
        return {
          statuses: ['RUNNING'],
          // still parked: a decision may have requeued it (and a worker claimed it) since the read
          fence: { awaitingApprovalId: row.awaiting_approval_id },
          set: { status: 'PAUSED', pause_reason: reason, paused_by: by, paused_at: sql('now()'), awaiting_approval_id: null },
          events: [{ type: 'WORKFLOW_PAUSED', message: 'Task paused while waiting for approval', payload: { reason, paused_by: by } }],
          status: 'PAUSED', message: 'Task paused',
        };
      }
      if (row.status === 'RUNNING' && !row.pause_requested && !row.cancel_requested) {
        return {
          statuses: ['RUNNING'],
          // as read: a pause that came first makes this one a 409, as it would one sent after it;
          // still leased, as for a cancel (a task parked meanwhile pauses at once)
          fence: { pauseRequested: false, cancelRequested: false, leased: true },
          set: { pause_requested: true, pause_reason: reason, paused_by: by },
          events: [{ type: 'WORKFLOW_PAUSING', message: 'Pause requested; the task pauses at its next step boundary', payload: { reason, paused_by: by } }],
          status: 'RUNNING', message: 'Pause requested; the task pauses at its next durable step boundary', signal: 'control',
        };
      }
      throw new ApiError('INVALID_TASK_STATE', `cannot pause a task in status ${row.status}${row.pause_requested ? ' (pause already requested)' : ''}`, { status: row.status });
    });
    return reply.code(202).send(out);
  });

  r.post('/api/v1/tasks/:id/resume', { config: { scope: 'tasks:cancel', rateBudget: 'control' }, preValidation: emptyBodyIsObject, schema: controlSchema('Resume a paused task', ControlBody) }, async (req, reply) => {
    const by = req.principal.userId;
    const reason = req.body?.reason ?? null;
    const out = await control(deps, req.principal.tenantId, req.params.id, (row) => {
      if (row.status === 'PAUSED') {
        return {
          statuses: ['PAUSED'],
          // a task paused before its run_at keeps its delay; one paused later runs at once
          set: { status: 'QUEUED', run_at: sql('greatest(run_at, now())'), pause_requested: false, pause_reason: null, paused_by: null, paused_at: null },
          events: [{ type: 'WORKFLOW_RESUMED', message: 'Task resumed', payload: { reason, resumed_by: by } }],
          status: 'QUEUED', message: 'Task resumed', signal: 'work',
        };
      }
      if (row.status === 'RUNNING' && row.pause_requested) {
        return {
          statuses: ['RUNNING'],
          // still requested: a resume that withdrew it first makes this one a 409
          fence: { pauseRequested: true },
          set: { pause_requested: false, pause_reason: null, paused_by: null },
          events: [{ type: 'WORKFLOW_RESUMED', message: 'Pause withdrawn', payload: { reason, resumed_by: by } }],
          status: 'RUNNING', message: 'Pause request withdrawn', signal: 'control',
        };
      }
      throw new ApiError('INVALID_TASK_STATE', `cannot resume a task in status ${row.status}`, { status: row.status });
    });
    return reply.code(202).send(out);
  });

  r.get('/api/v1/tasks/:id/control-state', {
    config: { scope: 'tasks:read' },
    schema: { tags: ['control'], summary: "A task's pause/cancel/approval state", params: IdParam, response: { 200: ControlState, ...errorResponses('GET', 'scope', [400, 404]) } },
  }, async (req) => {
    const row = await load(req.principal.tenantId, req.params.id);
    // the pause fields describe a pause that holds or is pending: a paused task cancelled (or one
    // that finished before its requested pause took) is not paused — its events keep the history
    const pause = row.status === 'PAUSED' || (row.pause_requested && !isTerminal(row.status));
    return {
      is_paused: row.status === 'PAUSED',
      is_cancelled: row.status === 'CANCELLED' || (row.cancel_requested && !isTerminal(row.status)),
      paused_at: pause ? iso(row.paused_at) : null,
      pause_reason: pause ? row.pause_reason : null,
      paused_by: pause ? row.paused_by : null,
      cancel_reason: row.cancel_reason,
      cancelled_by: row.cancelled_by,
      awaiting_approval: row.status === 'RUNNING' && row.awaiting_approval_id !== null,
    };
  });
}
