// Seed 004's task endpoint (the Flask-era SwarmDirector API), kept for its clients:
// `POST /api/v1/task`, `GET|DELETE /api/v1/task/{id}`, `GET /api/v1/health`, with that
// document's response and error shapes. Each call is translated onto the canonical routes
// (through app.inject, so auth, limits, idempotency and validation are the same code).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ErrorResponse, errorResponses, ID_REGEX } from '../../contract/tasks.js';
import { ApiError } from '../../contract/errors.js';
import { RATE_LIMIT_HEADERS } from '../rate-limit.js';
import { enumValuesOf, mustBeOneOf, type ValidationIssue } from '../errors.js';
import type { Queryable } from '../../storage/db.js';
import type { DefinitionCatalog } from '../deps.js';
import { eventsLatestStepProgress } from '../../storage/queries/events.js';
import { hasScope } from '../../auth/scopes.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * false: the rate limiter does not count this route — it forwards to a canonical route that
     * counts (compat), or is bounded by the per-principal stream cap instead (SSE/WebSocket).
     */
    rateLimit?: boolean;
  }
}

const SubmitBody = Type.Object(
  {
    type: Type.String({ pattern: ID_REGEX }),
    args: Type.Record(Type.String(), Type.Unknown()),
    priority: Type.Optional(Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('urgent')])),
    metadata: Type.Optional(
      Type.Object(
        {
          user_id: Type.Optional(Type.String()),
          source: Type.Optional(Type.Union([Type.Literal('web'), Type.Literal('api'), Type.Literal('mobile')])),
          tags: Type.Optional(Type.Array(Type.String())),
          timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
        },
        { additionalProperties: true },
      ),
    ),
  },
  { additionalProperties: false },
);

/** Seed 004's error body (errorBody below). */
const CompatError = Type.Object({
  task_id: Type.Optional(Type.String()),
  status: Type.Literal('error'),
  message: Type.String(),
  errors: Type.Optional(Type.Array(Type.String())),
  timestamp: Type.String(),
});
/** Errors are seed 004's body; only a server shutting down answers before the route, in the envelope. */
const CompatErrorOrEnvelope = Type.Union([CompatError, ErrorResponse]);
const compatErrors = (method: 'GET' | 'POST' | 'DELETE', own: number[]) => ({
  ...errorResponses(method, 'scope', own, CompatError),
  503: { ...CompatErrorOrEnvelope, description: 'Unavailable: the server is shutting down or a dependency is down (with Retry-After)' },
});
const CompatTaskId = Type.Object({ id: Type.String({ pattern: ID_REGEX }) });
const CompatSubmitted = Type.Object({
  task_id: Type.String(), status: Type.Literal('accepted'), message: Type.String(), timestamp: Type.String(), estimated_completion: Type.String(),
});
const CompatTaskStatus = Type.Object({
  task_id: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('processing'), Type.Literal('completed'), Type.Literal('failed'), Type.Literal('cancelled')]),
  progress: Type.Integer({ minimum: 0, maximum: 100 }),
  result: Type.Unknown(),
  error: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
});
const CompatCancelled = Type.Object({ task_id: Type.String(), status: Type.Literal('cancelled'), message: Type.String(), timestamp: Type.String() });

const STATUS: Record<string, string> = {
  QUEUED: 'pending', PAUSED: 'pending', RUNNING: 'processing', COMPLETED: 'completed', FAILED: 'failed', TIMEOUT: 'failed', CANCELLED: 'cancelled',
};

const now = () => new Date().toISOString();

/** Seed 004's error body (also answered before a route is found: errors.ts errorBodyFor). */
export function errorBody(message: string, taskId?: string, errors?: string[]) {
  return { ...(taskId ? { task_id: taskId } : {}), status: 'error', message, ...(errors?.length ? { errors } : {}), timestamp: now() };
}

/** Headers worth forwarding to the canonical route: credentials, idempotency, tracing. */
function forward(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of ['x-api-key', 'authorization', 'idempotency-key', 'traceparent', 'x-request-id']) {
    const v = req.headers[h];
    if (typeof v === 'string') out[h] = v;
  }
  return out;
}

/** The canonical route counted the request: its rate-limit headers (and a 429's Retry-After) are this answer's. */
function relayLimits(reply: FastifyReply, res: { headers: Record<string, unknown> }): void {
  for (const h of RATE_LIMIT_HEADERS) {
    const v = res.headers[h];
    if (typeof v === 'string' || typeof v === 'number') reply.header(h, v);
  }
}

interface Envelope {
  error?: { code: string; message: string; details?: { path?: string; reason?: string } };
}

/** At most this many types named in an unknown type's 400 (a tenant may hold 500 definitions of its own). */
const MAX_TYPES_NAMED = 50;

/**
 * Seed 004's `type` is a schema enum, so an unknown one is a 400 validation error there, naming
 * the values: here the tenant's task types (definition ids), the first MAX_TYPES_NAMED of them.
 */
function unknownType(reply: FastifyReply, types: readonly string[]): FastifyReply {
  const named = types.slice(0, MAX_TYPES_NAMED);
  const more = types.length > named.length ? `, … (${types.length - named.length} more: GET /api/v1/definitions)` : '';
  return reply.code(400).send(errorBody('Request validation failed', undefined, [`Validation error at type: ${mustBeOneOf(named)}${more}`]));
}

function relayError(reply: FastifyReply, status: number, body: Envelope, taskId?: string): FastifyReply {
  const e = body.error;
  const errors = e?.details?.path ? [`Validation error at ${e.details.path}: ${e.details.reason ?? e.message}`] : undefined;
  // seed 004 reports schema violations as 400
  const code = status === 422 && e?.code === 'UNPROCESSABLE' ? 400 : status;
  return reply.code(code).send(errorBody(code === 400 && errors ? 'Request validation failed' : e?.message ?? 'Request failed', taskId, errors));
}

export async function compatRoutes(app: FastifyInstance, deps: { db: Queryable; catalog: Pick<DefinitionCatalog, 'list' | 'isBuiltIn'> }): Promise<void> {
  // the response schemas document seed 004's bodies; the bodies are sent as built, key order
  // included (a schema serializer would put an error's optional task_id after its timestamp)
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: ValidationIssue[] }, req, reply) => {
    const raw = err instanceof ApiError ? err.status : err.statusCode;
    const status = raw && raw >= 400 && raw < 500 ? raw : raw === 503 ? 503 : 500;
    if (status === 500) req.log.error({ err }, 'compat route failed');
    const v = err.validation?.[0];
    const allowed = enumValuesOf(err.validation);
    const reason = allowed ? mustBeOneOf(allowed) : v?.message ?? 'invalid';
    const errors = v ? [`Validation error at ${(v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || 'body'}: ${reason}`] : undefined;
    const message = status === 500 ? 'Internal server error' : v ? 'Request validation failed' : err.message;
    const id = (req.params as { id?: string } | undefined)?.id;
    const headers = (err as { headers?: Record<string, string> }).headers;
    if (headers) reply.headers(headers);
    return reply.code(status).send(errorBody(message, id, errors));
  });

  app.get('/api/v1/health', {
    config: { public: true },
    schema: {
      tags: ['compat'], summary: 'Health (seed 004)',
      response: {
        200: Type.Object({ status: Type.Literal('healthy'), timestamp: Type.String() }),
        ...errorResponses('GET', 'public', [], CompatError),
        503: { ...CompatErrorOrEnvelope, description: 'Unavailable: the server is shutting down (with Retry-After)' },
      },
    },
  }, async () => ({
    status: 'healthy', timestamp: now(),
  }));

  app.post('/api/v1/task', {
    config: { scope: 'tasks:execute', rateLimit: false },
    schema: {
      tags: ['compat'], summary: 'Submit a typed task (seed 004)', body: SubmitBody,
      // the canonical submit's 422 UNPROCESSABLE (input vs the definition's schema) and 404 (no
      // such definition: seed 004's `type` is a schema enum) are seed 004's 400
      response: { 201: CompatSubmitted, ...compatErrors('POST', []) },
    },
  }, async (req, reply) => {
    const body = req.body as { type: string; args: Record<string, unknown>; priority?: string; metadata?: Record<string, unknown> & { timeout?: number } };
    const res = await app.inject({
      method: 'POST', url: '/api/v1/tasks', headers: { ...forward(req), 'content-type': 'application/json' },
      payload: {
        task_definition_id: body.type, input: body.args, ...(body.priority ? { priority: body.priority } : {}),
        ...(body.metadata ? { metadata: body.metadata } : {}), ...(body.metadata?.timeout ? { timeout_ms: body.metadata.timeout * 1000 } : {}),
      },
    });
    relayLimits(reply, res);
    const out = res.json() as Envelope & { task_id?: string; created_at?: string };
    // the only 404 of a submit: no definition by that id for this tenant
    // the tenant's own ids are named to a key that may list them (tasks:definitions:list); to
    // another, only the shipped ones every tenant has
    if (res.statusCode === 404 && out.error?.code === 'NOT_FOUND') {
      const mayList = hasScope(req.principal.scopes, 'tasks:definitions:list');
      return unknownType(reply, deps.catalog.list(req.principal.tenantId).filter((d) => mayList || deps.catalog.isBuiltIn(d.id)).map((d) => d.id));
    }
    if (res.statusCode !== 200) return relayError(reply, res.statusCode, out);
    // seed 004's body has no delay: the task is runnable from its creation (a second request here
    // to read run_at cost ~3× the throughput under load: 1.9k vs 5.6k req/s at 128 connections)
    const timeoutMs = (body.metadata?.timeout ?? 0) * 1000 || 30 * 60_000;
    return reply.code(201).send({
      task_id: out.task_id, status: 'accepted', message: `Task ${body.type} accepted for processing`, timestamp: now(),
      estimated_completion: new Date(new Date(out.created_at!).getTime() + timeoutMs).toISOString(),
    });
  });

  app.get('/api/v1/task/:id', {
    config: { scope: 'tasks:read', rateLimit: false },
    schema: { tags: ['compat'], summary: 'Task status (seed 004)', params: CompatTaskId, response: { 200: CompatTaskStatus, ...compatErrors('GET', [400, 404]) } },
  }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const res = await app.inject({ method: 'GET', url: `/api/v1/tasks/${id}`, headers: forward(req) });
    relayLimits(reply, res);
    if (res.statusCode !== 200) return relayError(reply, res.statusCode, res.json() as Envelope, id);
    const t = res.json() as { status: string; output: unknown; result: string | null; error: string | null; created_at: string; updated_at: string };
    let progress = t.status === 'COMPLETED' ? 100 : 0;
    if (t.status === 'RUNNING' || t.status === 'PAUSED') {
      // the newest step progress (the task was just read as this caller's, so its tenant is theirs);
      // reading the first page of events froze progress once a task had more than a page of them
      const last = await eventsLatestStepProgress(deps.db, { tenantId: req.principal.tenantId, taskId: id });
      if (last && Number(last.steps) > 0) progress = Math.max(0, Math.min(99, Math.round((Number(last.step) / Number(last.steps)) * 100)));
    }
    return {
      task_id: id, status: STATUS[t.status] ?? 'pending', progress, result: t.result ?? t.output ?? null, error: t.error,
      created_at: t.created_at, updated_at: t.updated_at,
    };
  });

  app.delete('/api/v1/task/:id', {
    config: { scope: 'tasks:cancel', rateLimit: false },
    schema: {
      tags: ['compat'], summary: 'Cancel a task (seed 004)',
      description: 'A task that has already finished answers 400. An Idempotency-Key is passed on to the canonical cancel (422 when reused with another request).',
      params: CompatTaskId, response: { 200: CompatCancelled, ...compatErrors('DELETE', [400, 404, 422]) },
    },
  }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const res = await app.inject({ method: 'POST', url: `/api/v1/tasks/${id}/cancel`, headers: { ...forward(req), 'content-type': 'application/json' }, payload: {} });
    relayLimits(reply, res);
    const out = res.json() as Envelope & { status?: string };
    // seed 004 answers a task that cannot be cancelled with 400
    if (res.statusCode === 409) return reply.code(400).send(errorBody(out.error?.message ?? 'Task cannot be cancelled', id));
    if (res.statusCode !== 202) return relayError(reply, res.statusCode, out, id);
    return {
      task_id: id, status: 'cancelled',
      message: out.status === 'CANCELLED' ? 'Task cancelled successfully' : 'Cancellation requested; the running task is being stopped',
      timestamp: now(),
    };
  });
}
