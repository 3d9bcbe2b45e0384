// /api/v1/auth: the caller's identity and its tenant's API keys (PRODUCT.md §3 "Auth and keys").
// A key is shown once, at creation; lists never carry it. A new key's scopes must be a subset of
// its creator's. Revocation is read by every request (no cache), so it holds on every node at once.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiError } from '../../contract/errors.js';
import { ApiKeyList, ApiKeyView, CreateApiKeyBody, CreatedApiKey, Me, Page } from '../../contract/auth.js';
import { ErrorResponse, IdParam } from '../../contract/tasks.js';
import { createApiKey } from '../../auth/api-keys.js';
import { ungrantable, type Principal } from '../../auth/scopes.js';
import { apiKeysCount, apiKeysGet, apiKeysListPage, apiKeysRevoke, type ApiKeyRow } from '../../storage/queries/tenants.js';
import type { AppDeps } from '../deps.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 429: ErrorResponse };

export function keyView(row: ApiKeyRow, now: Date = new Date()): ApiKeyView {
  const status = row.revoked_at ? 'revoked' : row.expires_at && row.expires_at.getTime() <= now.getTime() ? 'expired' : 'active';
  return {
    id: row.id, name: row.name, prefix: row.prefix, tenant_id: row.tenant_id, user_id: row.user_id, scopes: row.scopes, status,
    created_at: row.created_at.toISOString(), expires_at: row.expires_at?.toISOString() ?? null, revoked_at: row.revoked_at?.toISOString() ?? null,
  };
}

/** Checks a requested expiry and the scopes against what the caller may grant. */
export function checkGrant(caller: Pick<Principal, 'scopes'>, scopes: readonly string[], expiresAt: string | undefined): Date | null {
  const refused = ungrantable(caller.scopes, scopes);
  if (refused.length) {
    throw new ApiError('FORBIDDEN', `Cannot grant scopes you do not hold: ${refused.join(', ')}`, { required_scope: refused[0], ungrantable_scopes: refused });
  }
  if (expiresAt === undefined) return null;
  const at = new Date(expiresAt);
  if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now()) {
    throw new ApiError('VALIDATION_ERROR', 'expires_at must be a future RFC 3339 timestamp', { path: 'expires_at', reason: 'invalid value' });
  }
  return at;
}

export async function authKeyRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'db' | 'config' | 'signals'>): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { security } = deps.config;

  r.get('/api/v1/auth/me', {
    config: { authenticated: true },
    schema: { tags: ['auth'], summary: 'Who am I: tenant, user, scopes and rate limit of the credential', response: { 200: Me, ...errors } },
  }, async (req) => {
    const p = req.principal;
    const base = p.rateLimit ?? { per_minute: security.rateLimitPerMin, burst: security.rateLimitBurst };
    const m = security.readRateLimitMultiplier;
    return {
      tenant_id: p.tenantId, user_id: p.userId, principal_type: p.kind, subject: p.subjectId, scopes: [...p.scopes],
      rate_limit: security.rateLimitPerMin === 0 ? null : { per_minute: base.per_minute, burst: base.burst, read_per_minute: base.per_minute * m, read_burst: base.burst * m },
    };
  });

  r.post('/api/v1/auth/api-keys', {
    config: { scope: 'keys:manage', idempotencyRedact: ['key'] },
    schema: { tags: ['auth'], summary: "Create an API key in the caller's tenant (shown once)", body: CreateApiKeyBody, response: { 201: CreatedApiKey, ...errors } },
  }, async (req, reply) => {
    const expiresAt = checkGrant(req.principal, req.body.scopes, req.body.expires_at);
    const { key, row } = await createApiKey(deps.db, {
      tenantId: req.principal.tenantId, userId: req.principal.userId, name: req.body.name.trim(), scopes: req.body.scopes, expiresAt,
    });
    reply.header('cache-control', 'no-store');
    return reply.code(201).send({ ...keyView(row), key });
  });

  r.get('/api/v1/auth/api-keys', {
    config: { scope: 'keys:manage' },
    schema: { tags: ['auth'], summary: "The tenant's API keys (never the keys themselves)", querystring: Page, response: { 200: ApiKeyList, ...errors } },
  }, async (req) => {
    const limit = req.query.limit ?? 50;
    const offset = req.query.offset ?? 0;
    const tenantId = req.principal.tenantId;
    const [rows, total] = await Promise.all([apiKeysListPage(deps.db, { tenantId, limit, offset }), apiKeysCount(deps.db, tenantId)]);
    const now = new Date();
    return { api_keys: rows.map((row) => keyView(row, now)), total_count: total, limit, offset };
  });

  r.delete('/api/v1/auth/api-keys/:id', {
    config: { scope: 'keys:manage' },
    schema: { tags: ['auth'], summary: 'Revoke an API key (refused from the next request on; on other API nodes within milliseconds, at most TASKGATE_AUTH_CACHE_MS)', params: IdParam, response: { 204: Type.Null(), ...errors } },
  }, async (req, reply) => {
    const tenantId = req.principal.tenantId;
    if (!(await apiKeysRevoke(deps.db, { tenantId, id: req.params.id }))) throw new ApiError('NOT_FOUND', `API key ${req.params.id} not found`);
    deps.signals.credentials(req.params.id);
    return reply.code(204).send(null);
  });

  r.get('/api/v1/auth/api-keys/:id', {
    config: { scope: 'keys:manage' },
    schema: { tags: ['auth'], summary: 'One API key (never the key itself)', params: IdParam, response: { 200: ApiKeyView, ...errors } },
  }, async (req) => {
    const row = await apiKeysGet(deps.db, { tenantId: req.principal.tenantId, id: req.params.id });
    if (!row) throw new ApiError('NOT_FOUND', `API key ${req.params.id} not found`);
    return keyView(row);
  });
}
