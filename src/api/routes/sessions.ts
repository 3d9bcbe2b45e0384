// /api/v1/sessions: list, read, history, turns, rename, soft delete (PRODUCT.md §3 "Sessions",
// shapes of the reference gateway). Sessions are created implicitly by submits; token and cost
// totals roll up from the session's tasks at read time. Another tenant's session is a 404.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { SessionHistory, SessionList, SessionTitleBody, SessionTitleResponse, SessionTurns, SessionView } from '../../contract/sessions.js';
import { ApiError } from '../../contract/errors.js';
import { errorResponses, IdParam } from '../../contract/tasks.js';
import { toWireEvent } from '../../events/hub.js';
import type { Db } from '../../storage/db.js';
import {
  sessionsCount, sessionsGet, sessionsList, sessionsSetTitle, sessionsSoftDelete, sessionsTaskEvents, sessionsTasks,
  type SessionRollupRow, type SessionTaskRow,
} from '../../storage/queries/sessions.js';
import { iso, modeOf } from '../task-view.js';
import { roundUsd } from '../../executors/agent/usage.js';

/** Longest title, in characters, after control characters are removed (reference gateway: 60). */
export const MAX_SESSION_TITLE_CHARS = 60;
/** A turns page may carry at most this many events (the reference answers 413 beyond it). */
export const MAX_TURN_EVENTS = 5_000;

const Page = (max: number, def: number) => Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: max, default: def })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 })),
  },
  { additionalProperties: false },
);

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0)) || 0;
/** USD as task costs show it: sums of per-call costs carry float noise (0.1 + 0.2 = 0.30000000000000004). */
const usd = (v: unknown): number => roundUsd(num(v));

function sessionView(s: SessionRollupRow) {
  return {
    session_id: s.id,
    user_id: s.user_id,
    title: s.title,
    context: s.context ?? {},
    token_budget: s.token_budget,
    tokens_used: Math.round(num(s.tokens_used)),
    cost_usd: usd(s.cost_usd),
    task_count: num(s.task_count),
    created_at: iso(s.created_at)!,
    updated_at: iso(s.updated_at)!,
    expires_at: iso(s.expires_at),
    is_research_session: s.is_research_session,
    research_strategy: s.research_strategy,
  };
}

function durationMs(t: Pick<SessionTaskRow, 'started_at' | 'completed_at'>): number | null {
  if (!t.started_at) return null;
  const end = t.completed_at ? new Date(t.completed_at).getTime() : Date.now();
  return Math.max(0, end - new Date(t.started_at).getTime());
}

function metadataOf(t: SessionTaskRow): Record<string, unknown> {
  const { traceparent: _t, ...rest } = t.metadata ?? {};
  return rest;
}

/**
 * Invisible characters a title must not keep: control characters (Cc), zero-width space, BOM, and
 * the bidirectional controls (LRM/RLM U+200E–F, ALM U+061C, embeddings and overrides U+202A–E,
 * isolates U+2066–9) — an override left open reverses the text shown after the title wherever it
 * is displayed. Not all of \p{Cf}: the zero-width joiner holds emoji sequences together.
 */
const TITLE_INVISIBLES = /[\p{Cc}\u200B\uFEFF\u200E\u200F\u061C\u202A-\u202E\u2066-\u2069]/gu;

/** Removes control characters (and zero-width space, BOM, bidirectional controls), then surrounding whitespace. */
export function cleanTitle(raw: string): string {
  return raw.replace(TITLE_INVISIBLES, '').trim();
}

export async function sessionRoutes(app: FastifyInstance, deps: { db: Db }): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { db } = deps;

  async function load(tenantId: string, id: string): Promise<SessionRollupRow> {
    const s = await sessionsGet(db, tenantId, id);
    if (!s) throw new ApiError('NOT_FOUND', `session ${id} not found`);
    return s;
  }

  r.get('/api/v1/sessions', {
    config: { scope: 'sessions:read' },
    schema: {
      tags: ['sessions'], summary: "The tenant's sessions, newest first", querystring: Page(100, 20),
      response: { 200: SessionList, ...errorResponses('GET', 'scope', [400]) },
    },
  }, async (req) => {
    const limit = req.query.limit ?? 20;
    const offset = req.query.offset ?? 0;
    const [rows, total] = await Promise.all([
      sessionsList(db, { tenantId: req.principal.tenantId, limit, offset }),
      sessionsCount(db, req.principal.tenantId),
    ]);
    return {
      sessions: rows.map((s) => ({
        ...sessionView(s),
        total_cost_usd: usd(s.cost_usd),
        successful_tasks: num(s.successful_tasks),
        failed_tasks: num(s.failed_tasks),
        last_activity_at: iso(s.last_activity_at),
        latest_task_query: s.latest_task_query,
        latest_task_status: s.latest_task_status,
      })),
      // (the count and the page are two reads: a page may have seen rows the count did not; past
      // the end it saw none, and the offset is no count)
      total_count: rows.length ? Math.max(total, offset + rows.length) : total,
    };
  });

  r.get('/api/v1/sessions/:id', {
    config: { scope: 'sessions:read' },
    schema: { tags: ['sessions'], summary: 'A session with its token and cost totals', params: IdParam, response: { 200: SessionView, ...errorResponses('GET', 'scope', [400, 404]) } },
  }, async (req) => sessionView(await load(req.principal.tenantId, req.params.id)));

  r.get('/api/v1/sessions/:id/history', {
    config: { scope: 'sessions:read' },
    schema: {
      tags: ['sessions'], summary: "The session's tasks, oldest first", params: IdParam, querystring: Page(1000, 100),
      response: { 200: SessionHistory, ...errorResponses('GET', 'scope', [400, 404]) },
    },
  }, async (req) => {
    const s = await load(req.principal.tenantId, req.params.id);
    const tasks = await sessionsTasks(db, { tenantId: s.tenant_id, sessionId: s.id, limit: req.query.limit ?? 100, offset: req.query.offset ?? 0 });
    return {
      session_id: s.id,
      tasks: tasks.map((t) => ({
        task_id: t.id, workflow_id: t.id, query: t.query ?? '', status: t.status, mode: modeOf(t), task_definition_id: t.task_definition_id,
        result: t.result, error_message: t.error, total_tokens: Math.round(num(t.total_tokens)), total_cost_usd: usd(t.total_cost_usd),
        duration_ms: durationMs(t), agents_used: num(t.agents_used), tools_invoked: num(t.tools_invoked),
        created_at: iso(t.created_at)!, started_at: iso(t.started_at), completed_at: iso(t.completed_at), metadata: metadataOf(t),
      })),
      total: num(s.task_count),
    };
  });

  r.get('/api/v1/sessions/:id/events', {
    config: { scope: 'sessions:read' },
    schema: {
      tags: ['sessions'], summary: 'The session as turns (one per task) with their events', params: IdParam,
      querystring: Type.Object({ ...Page(100, 10).properties, include_payload: Type.Optional(Type.Boolean({ default: false })) }, { additionalProperties: false }),
      response: { 200: SessionTurns, ...errorResponses('GET', 'scope', [400, 404, 413]) },
    },
  }, async (req) => {
    const s = await load(req.principal.tenantId, req.params.id);
    const offset = req.query.offset ?? 0;
    const tasks = await sessionsTasks(db, { tenantId: s.tenant_id, sessionId: s.id, limit: req.query.limit ?? 10, offset });
    const events = await sessionsTaskEvents(db, { tenantId: s.tenant_id, taskIds: tasks.map((t) => t.id), limit: MAX_TURN_EVENTS + 1 });
    if (events.length > MAX_TURN_EVENTS) {
      throw new ApiError('PAYLOAD_TOO_LARGE', `these turns have more than ${MAX_TURN_EVENTS} events; ask for fewer turns (limit)`);
    }
    const byTask = new Map<string, ReturnType<typeof toWireEvent>[]>();
    for (const e of events) {
      const w = toWireEvent(e);
      if (!req.query.include_payload) delete w.payload;
      const list = byTask.get(e.task_id);
      if (list) list.push(w);
      else byTask.set(e.task_id, [w]);
    }
    const turns = tasks.map((t, i) => {
      const evs = byTask.get(t.id) ?? [];
      let final = (t.result ?? '').trim();
      if (!final) final = evs.find((e) => e.type === 'LLM_OUTPUT' && e.message?.trim() && e.agent_id !== 'title_generator')?.message ?? '';
      if (!final && t.output !== null && t.output !== undefined) final = JSON.stringify(t.output);
      return {
        turn: offset + i + 1,
        task_id: t.id,
        user_query: t.query ?? '',
        final_output: final,
        timestamp: iso(t.started_at ?? t.created_at)!,
        events: evs,
        metadata: {
          tokens_used: Math.round(num(t.total_tokens)),
          execution_time_ms: durationMs(t) ?? 0,
          agents_involved: [...new Set(evs.map((e) => e.agent_id).filter((a): a is string => !!a))].sort(),
        },
      };
    });
    return { session_id: s.id, count: num(s.task_count), turns };
  });

  r.patch('/api/v1/sessions/:id', {
    config: { scope: 'sessions:write' },
    schema: {
      tags: ['sessions'], summary: "Rename a session (at most 60 characters)", params: IdParam,
      body: SessionTitleBody,
      response: { 200: SessionTitleResponse, ...errorResponses('PATCH', 'scope', [404]) },
    },
  }, async (req) => {
    const title = cleanTitle(req.body.title);
    if (!title) throw new ApiError('VALIDATION_ERROR', 'title cannot be empty', { path: 'title', reason: 'is empty' });
    if ([...title].length > MAX_SESSION_TITLE_CHARS) {
      throw new ApiError('VALIDATION_ERROR', `title must be ${MAX_SESSION_TITLE_CHARS} characters or less`, { path: 'title', reason: 'too long' });
    }
    const res = await sessionsSetTitle(db, { tenantId: req.principal.tenantId, id: req.params.id, title });
    if (!res) throw new ApiError('NOT_FOUND', `session ${req.params.id} not found`);
    return { session_id: req.params.id, title, updated_at: iso(res.updated_at)! };
  });

  r.delete('/api/v1/sessions/:id', {
    config: { scope: 'sessions:write' },
    schema: { tags: ['sessions'], summary: 'Delete a session (soft; repeating it is fine)', params: IdParam, response: { 204: Type.Null(), ...errorResponses('DELETE', 'scope', [404]) } },
  }, async (req, reply) => {
    if (!(await sessionsSoftDelete(db, { tenantId: req.principal.tenantId, id: req.params.id }))) {
      throw new ApiError('NOT_FOUND', `session ${req.params.id} not found`);
    }
    return reply.code(204).send(null);
  });
}
