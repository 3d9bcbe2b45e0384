// /api/v1/definitions: the catalogue of task definitions (seed 003 shapes).
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiError } from '../../contract/errors.js';
import { ErrorResponse, IdParam } from '../../contract/tasks.js';
import type { AppDeps, DefinitionView } from '../deps.js';

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
    const def = deps.catalog.get(req.principal.tenantId, req.params.id);
    if (!def) throw new ApiError('NOT_FOUND', `task definition ${req.params.id} not found`);
    return definitionDetail(def);
  });
}
