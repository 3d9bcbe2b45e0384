// /api/v1/admin: tenant administration for operators — principals holding `admin` in the system
// (default) tenant. A tenant's own `admin` scope covers that tenant only, so it cannot create
// tenants or mint keys for others. Per-tenant rate limits are set here, and the embedded
// database's online backup is taken here.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ApiError } from '../../contract/errors.js';
import { CreateTenantBody, CreateTenantKeyBody, CreatedApiKey, Page, TenantList, TenantView, UpdateTenantBody } from '../../contract/auth.js';
import { errorResponses, IdParam } from '../../contract/tasks.js';
import { createApiKey } from '../../auth/api-keys.js';
import { DEFAULT_TENANT_ID } from '../../auth/bootstrap.js';
import { hasScope, type Principal } from '../../auth/scopes.js';
import { newTenantId } from '../../domain/ids.js';
import { tenantsCount, tenantsGet, tenantsInsert, tenantsList, tenantsUpdate, type TenantRow } from '../../storage/queries/tenants.js';
import type { AppDeps } from '../deps.js';
import { auditLog } from '../audit.js';
import { checkGrant, keyView } from './auth-keys.js';

export const SYSTEM_TENANT_ID = DEFAULT_TENANT_ID;

export function requireOperator(p: Principal): void {
  if (p.tenantId !== SYSTEM_TENANT_ID || !hasScope(p.scopes, 'admin')) {
    throw new ApiError('FORBIDDEN', `Tenant administration needs the admin scope in the system tenant (${SYSTEM_TENANT_ID})`, { required_scope: 'admin' });
  }
}

export function tenantView(t: TenantRow): TenantView {
  return { tenant_id: t.id, name: t.name, rate_limit: t.rate_limit ?? null, max_running: t.max_running ?? null, created_at: t.created_at.toISOString() };
}

/** `taskgate-backup-20261206T213000Z.tar.gz`: the UTC time, sortable, safe in any file system. */
export function backupFileName(now: Date): string {
  return `taskgate-backup-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.tar.gz`;
}

export async function adminRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'db' | 'signals'>): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post('/api/v1/admin/tenants', {
    config: { scope: 'admin' },
    schema: { tags: ['admin'], summary: 'Create a tenant', body: CreateTenantBody, response: { 201: TenantView, ...errorResponses('POST', 'scope', [409]) } },
  }, async (req, reply) => {
    requireOperator(req.principal);
    const id = req.body.tenant_id ?? newTenantId();
    if (await tenantsGet(deps.db, id)) throw new ApiError('CONFLICT', `tenant ${id} already exists`, { tenant_id: id });
    const row = await tenantsInsert(deps.db, {
      id, name: req.body.name.trim(), rate_limit: req.body.rate_limit ?? null, max_running: req.body.max_running ?? null,
    }).catch((err: unknown) => {
      if ((err as { code?: string }).code === '23505') throw new ApiError('CONFLICT', `tenant ${id} already exists`, { tenant_id: id });
      throw err;
    });
    // workers keep which tenants are capped (engine/worker.ts): tell them now, not at a later poll
    if (row.max_running !== null) deps.signals.tenant(row.id);
    await deps.signals.sent();
    auditLog(req, 'tenant created', { target_tenant_id: row.id, name: row.name, rate_limit: row.rate_limit, max_running: row.max_running });
    return reply.code(201).send(tenantView(row));
  });

  r.get('/api/v1/admin/tenants', {
    config: { scope: 'admin' },
    schema: { tags: ['admin'], summary: 'List tenants', querystring: Page, response: { 200: TenantList, ...errorResponses('GET', 'scope', [400]) } },
  }, async (req) => {
    requireOperator(req.principal);
    const limit = req.query.limit ?? 50;
    const offset = req.query.offset ?? 0;
    const [rows, total] = await Promise.all([tenantsList(deps.db, { limit, offset }), tenantsCount(deps.db)]);
    return { tenants: rows.map(tenantView), total_count: total, limit, offset };
  });

  r.get('/api/v1/admin/tenants/:id', {
    config: { scope: 'admin' },
    schema: { tags: ['admin'], summary: 'Get a tenant', params: IdParam, response: { 200: TenantView, ...errorResponses('GET', 'scope', [400, 404]) } },
  }, async (req) => {
    requireOperator(req.principal);
    const row = await tenantsGet(deps.db, req.params.id);
    if (!row) throw new ApiError('NOT_FOUND', `tenant ${req.params.id} not found`);
    return tenantView(row);
  });

  r.patch('/api/v1/admin/tenants/:id', {
    config: { scope: 'admin' },
    schema: { tags: ['admin'], summary: "Rename a tenant, change its rate limit or its cap on running tasks (null: back to the default, no cap)", params: IdParam, body: UpdateTenantBody, response: { 200: TenantView, ...errorResponses('PATCH', 'scope', [404]) } },
  }, async (req) => {
    requireOperator(req.principal);
    const row = await tenantsUpdate(deps.db, {
      id: req.params.id, name: req.body.name?.trim(), rate_limit: req.body.rate_limit, max_running: req.body.max_running,
    });
    if (!row) throw new ApiError('NOT_FOUND', `tenant ${req.params.id} not found`);
    if (req.body.max_running !== undefined) deps.signals.tenant(row.id); // workers keep the capped tenants
    if (req.body.rate_limit !== undefined) deps.signals.credentials('*'); // cached principals carry the rate limit
    // the 200 says the cap holds: the other processes hear of it first (their direct dispatch stops)
    await deps.signals.sent();
    auditLog(req, 'tenant changed', { target_tenant_id: row.id, changed: Object.keys(req.body) });
    return tenantView(row);
  });

  r.post('/api/v1/admin/tenants/:id/api-keys', {
    config: { scope: 'admin', idempotencyRedact: ['key'] },
    schema: { tags: ['admin'], summary: "Create an API key in a tenant (shown once)", params: IdParam, body: CreateTenantKeyBody, response: { 201: CreatedApiKey, ...errorResponses('POST', 'scope', [404]) } },
  }, async (req, reply) => {
    requireOperator(req.principal);
    if (!(await tenantsGet(deps.db, req.params.id))) throw new ApiError('NOT_FOUND', `tenant ${req.params.id} not found`);
    const expiresAt = checkGrant(req.principal, req.body.scopes, req.body.expires_at);
    const { key, row } = await createApiKey(deps.db, {
      tenantId: req.params.id, userId: req.body.user_id ?? 'admin', name: req.body.name.trim(), scopes: req.body.scopes, expiresAt, createdBy: req.principal.subjectId,
    });
    auditLog(req, 'api key created', { target_tenant_id: row.tenant_id, key_id: row.id, name: row.name, scopes: row.scopes });
    reply.header('cache-control', 'no-store');
    return reply.code(201).send({ ...keyView(row), key });
  });

  r.get('/api/v1/admin/backup', {
    // no HEAD: it would build the whole dump to send none of it
    exposeHeadRoute: false,
    config: { scope: 'admin' },
    schema: {
      tags: ['admin'], summary: 'Download an online backup of the embedded PGlite database (.tar.gz)',
      description: 'The PGlite data directory as a gzip\'d tarball, consistent (taken between statements after a CHECKPOINT) and built in memory; ' +
        '`taskgate restore FILE --data-dir DIR` loads it into a new directory. 409 on server PostgreSQL: use pg_dump.',
      response: {
        200: { description: 'application/gzip (Content-Disposition names the file)', content: { 'application/gzip': { schema: Type.String({ format: 'binary' }) } } },
        ...errorResponses('GET', 'scope', [409]),
      },
    },
  }, async (req, reply) => {
    requireOperator(req.principal);
    if (!deps.db.dumpDataDir) throw new ApiError('CONFLICT', 'the database is PostgreSQL: back it up with pg_dump (README: Backups)');
    const startedMs = Date.now();
    const dump = Buffer.from(await (await deps.db.dumpDataDir()).arrayBuffer());
    auditLog(req, 'backup taken', { bytes: dump.length, ms: Date.now() - startedMs });
    return reply
      .header('content-type', 'application/gzip')
      .header('content-disposition', `attachment; filename="${backupFileName(new Date())}"`)
      .header('cache-control', 'no-store')
      // the schema documents the bytes as a string; Fastify sends a Buffer as it is
      .send(dump as unknown as string);
  });
}
