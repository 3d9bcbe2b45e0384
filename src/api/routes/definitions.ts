// /api/v1/definitions: the catalogue of task definitions (seed 003 shapes), and a tenant's own
// declarative definitions (http, agent, approval) through PUT/DELETE.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiError } from '../../contract/errors.js';
import { DefinitionBody, DefinitionDetail, DefinitionList, DefinitionListQuery } from '../../contract/definitions.js';
import { errorResponses, IdParam } from '../../contract/tasks.js';
import type { AppDeps, DefinitionView } from '../deps.js';

/** A stored definition's JSON at most, bytes (each process keeps every tenant's in memory). */
export const MAX_DEFINITION_BYTES = 256 * 1024;

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
    schema: { tags: ['definitions'], summary: 'List task definitions', querystring: DefinitionListQuery, response: { 200: DefinitionList, ...errorResponses('GET', 'scope', [400]) } },
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
    schema: { tags: ['definitions'], summary: 'Get a task definition', params: IdParam, response: { 200: DefinitionDetail, ...errorResponses('GET', 'scope', [400, 404]) } },
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
      response: { 200: DefinitionDetail, 201: DefinitionDetail, ...errorResponses('PUT', 'scope', [405, 409]) },
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
      response: { 204: Type.Null(), ...errorResponses('DELETE', 'scope', [400, 404, 405, 409]) },
    },
  }, async (req, reply) => {
    const { id } = req.params;
    const a = admin();
    if (a.isBuiltIn(id)) throw new ApiError('CONFLICT', `task definition ${id} is built in (shipped or --tasks-dir) and cannot be deleted`, { definition_id: id, reason: 'built_in' });
    if (!(await a.remove(req.principal.tenantId, id))) throw new ApiError('NOT_FOUND', `task definition ${id} not found`);
    return reply.code(204).send(null);
  });
}
