// /api/v1/definitions: the catalogue of task definitions (seed 003 shapes), and a tenant's own
// declarative definitions (http, agent, approval) through PUT/DELETE.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiError } from '../../contract/errors.js';
import { ErrorResponse, IdParam, ID_REGEX } from '../../contract/tasks.js';
import type { AppDeps, DefinitionView } from '../deps.js';

/** A stored definition's JSON at most, bytes (each process keeps every tenant's in memory). */
export const MAX_DEFINITION_BYTES = 256 * 1024;

const JsonSchemaObject = Type.Record(Type.String(), Type.Unknown(), {
  description: 'JSON Schema 2020-12 (draft-07 when `$schema` says so); must compile; no `$id`',
});
const DefinitionConfig = Type.Object(
  {
    method: Type.Optional(Type.Union(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'].map((m) => Type.Literal(m)), { description: 'http' })),
    url: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'http: URL template with {{input.path}} placeholders (SSRF-guarded at run time)' })),
    headers: Type.Optional(Type.Record(
      Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$" }),
      Type.String({ maxLength: 8192, pattern: '^[\\t\\x20-\\x7e\\x80-\\xff]*$' }),
      { additionalProperties: false, maxProperties: 50, description: 'http: request headers; write-only (never returned: they may hold credentials)' },
    )),
    prompt: Type.Optional(Type.String({ minLength: 1, maxLength: 20_000, description: 'agent: prompt template with {{field}} placeholders from the input' })),
    system: Type.Optional(Type.String({ maxLength: 20_000, description: 'agent: system prompt' })),
    mode: Type.Optional(Type.Union([Type.Literal('simple'), Type.Literal('standard'), Type.Literal('complex'), Type.Literal('supervisor')], { description: 'agent' })),
    model_tier: Type.Optional(Type.Union([Type.Literal('small'), Type.Literal('medium'), Type.Literal('large')], { description: 'agent' })),
  },
  { additionalProperties: false, description: "Executor settings; each kind takes only its own keys (approval: none). Write-only: responses leave config out." },
);
const DefinitionBody = Type.Object(
  {
    id: Type.Optional(Type.String({ pattern: ID_REGEX, description: 'if given, must equal the path id' })),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    kind: Type.Union([Type.Literal('http'), Type.Literal('agent'), Type.Literal('approval')], { description: 'declarative kinds only' }),
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'seed 003 classification, shown in listings' })),
    input_schema: Type.Optional(JsonSchemaObject),
    output_schema: Type.Optional(JsonSchemaObject),
    priority: Type.Optional(Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('urgent')])),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
    retry_policy: Type.Optional(Type.Object(
      {
        max_retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
        retry_interval_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
        backoff_multiplier: Type.Optional(Type.Number({ minimum: 1, maximum: 10 })),
      },
      { additionalProperties: false },
    )),
    approval: Type.Optional(Type.Object(
      { required: Type.Boolean(), timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86_400_000 })) },
      { additionalProperties: false },
    )),
    config: Type.Optional(DefinitionConfig),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    type: Type.Optional(Type.String({ maxLength: 64 })),
    search: Type.Optional(Type.String({ maxLength: 200 })),
    page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
);

const Summary = Type.Object({ id: Type.String(), name: Type.String(), description: Type.String(), type: Type.String(), kind: Type.String(), version: Type.String() });
const Detail = Type.Object({
  id: Type.String(), name: Type.String(), description: Type.String(), type: Type.String(), kind: Type.String(), version: Type.String(),
  input_schema: Type.Unknown(), output_schema: Type.Unknown(), priority: Type.String(), timeout_ms: Type.Union([Type.Number(), Type.Null()]),
  retry_policy: Type.Unknown(), approval: Type.Unknown(),
});
const ListResponse = Type.Object({
  items: Type.Array(Summary),
  pagination: Type.Object({ page: Type.Integer(), limit: Type.Integer(), total_items: Type.Integer(), total_pages: Type.Integer() }),
});

export function definitionSummary(d: DefinitionView) {
  return { id: d.id, name: d.name, description: d.description, type: d.type ?? d.kind.toUpperCase(), kind: d.kind, version: d.version };
}

export function definitionDetail(d: DefinitionView) {
  return {
    ...definitionSummary(d),
    input_schema: d.input_schema,
    output_schema: d.output_schema,
    priority: d.priority ?? 'medium',
    timeout_ms: d.timeout_ms ?? null,
    retry_policy: d.retry_policy ?? null,
    approval: d.approval ?? null,
  };
}

export async function definitionRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get('/api/v1/definitions', {
    config: { scope: 'tasks:definitions:list' },
    schema: { tags: ['definitions'], summary: 'List task definitions', querystring: ListQuery, response: { 200: ListResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse } },
  }, async (req) => {
    const { type, search, page, offset, limit = 20 } = req.query;
    const needle = search?.toLowerCase();
    const all = deps.catalog.list(req.principal.tenantId).filter((d) => {
      if (type && (d.type ?? d.kind).toLowerCase() !== type.toLowerCase() && d.kind !== type.toLowerCase()) return false;
      if (needle && !`${d.id} ${d.name} ${d.description}`.toLowerCase().includes(needle)) return false;
      return true;
    });
    const start = offset ?? ((page ?? 1) - 1) * limit;
    return {
      items: all.slice(start, start + limit).map(definitionSummary),
      pagination: { page: Math.floor(start / limit) + 1, limit, total_items: all.length, total_pages: Math.max(1, Math.ceil(all.length / limit)) },
    };
  });

  r.get('/api/v1/definitions/:id', {
    config: { scope: 'tasks:definitions:read' },
    schema: { tags: ['definitions'], summary: 'Get a task definition', params: IdParam, response: { 200: Detail, 400: ErrorResponse, 404: ErrorResponse } },
  }, async (req) => {
    const def = await deps.catalog.getFresh(req.principal.tenantId, req.params.id);
    if (!def) throw new ApiError('NOT_FOUND', `task definition ${req.params.id} not found`);
    return definitionDetail(def);
  });

  // a tenant's own definitions; another tenant's are invisible (same id: a separate definition)
  const admin = () => {
    if (!deps.definitions) throw new ApiError('METHOD_NOT_ALLOWED', 'definitions cannot be changed on this server');
    return deps.definitions;
  };

  r.put('/api/v1/definitions/:id', {
    config: { scope: 'tasks:definitions:write' },
    schema: {
      tags: ['definitions'], summary: "Create or replace one of the tenant's task definitions (http, agent, approval)",
      description: 'Creates (201) or replaces (200) the definition; shipped and --tasks-dir ids answer 409 CONFLICT. Other processes see the change within seconds.',
      params: IdParam, body: DefinitionBody,
      response: { 200: Detail, 201: Detail, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse },
    },
  }, async (req, reply) => {
    const { id } = req.params;
    if (req.body.id !== undefined && req.body.id !== id) {
      throw new ApiError('VALIDATION_ERROR', `body.id ${req.body.id} does not match the path id ${id}`, { location: 'body', path: 'id', reason: 'does not match the path id' });
    }
    if (Buffer.byteLength(JSON.stringify(req.body)) > MAX_DEFINITION_BYTES) {
      throw new ApiError('PAYLOAD_TOO_LARGE', `a task definition is at most ${MAX_DEFINITION_BYTES} bytes of JSON`);
    }
    const res = await admin().save(req.principal.tenantId, id, req.body as Record<string, unknown>);
    if (!res.ok) {
      if (res.reason === 'invalid') throw new ApiError('VALIDATION_ERROR', res.message, { location: 'body', path: res.path ?? '', reason: res.message });
      throw new ApiError('CONFLICT', res.message, { definition_id: id, reason: res.reason });
    }
    return reply.code(res.created ? 201 : 200).send(definitionDetail(res.definition));
  });

  r.delete('/api/v1/definitions/:id', {
    config: { scope: 'tasks:definitions:write' },
    schema: {
      tags: ['definitions'], summary: "Delete one of the tenant's task definitions",
      description: 'Tasks already submitted against it fail when they run ("task definition … no longer exists").',
      params: IdParam,
      response: { 204: Type.Null(), 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
    },
  }, async (req, reply) => {
    const { id } = req.params;
    const a = admin();
    if (a.isBuiltIn(id)) throw new ApiError('CONFLICT', `task definition ${id} is built in (shipped or --tasks-dir) and cannot be deleted`, { definition_id: id, reason: 'built_in' });
    if (!(await a.remove(req.principal.tenantId, id))) throw new ApiError('NOT_FOUND', `task definition ${id} not found`);
    return reply.code(204).send(null);
  });
}
