// /api/v1/auth: the caller's identity and its tenant's API keys (PRODUCT.md §3 "Auth and keys").
// A key is shown once, at creation; lists never carry it. `keys:manage` is bounded by the caller's
// own credential: a new key's scopes must be a subset of the creator's and it cannot outlive the
// creator's expiry, and only a key whose scopes the caller holds can be revoked (so no manager can
// lock out an admin). Revocation reaches every node's key cache and open streams by Signals.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ApiError } from '../../contract/errors.js';
import { ApiKeyList, ApiKeyView, CreateApiKeyBody, CreatedApiKey, Me, Page } from '../../contract/auth.js';
import { errorResponses, IdParam } from '../../contract/tasks.js';
import { createApiKey } from '../../auth/api-keys.js';
import { ungrantable, type Principal } from '../../auth/scopes.js';
import { apiKeysCount, apiKeysGet, apiKeysListPage, apiKeysRevoke, type ApiKeyRow } from '../../storage/queries/tenants.js';
import type { AppDeps } from '../deps.js';
import { auditLog } from '../audit.js';
import { parseInstant } from '../task-view.js';

export function keyView(row: ApiKeyRow, now: Date = new Date()): ApiKeyView {
  const status = row.revoked_at ? 'revoked' : row.expires_at && row.expires_at.getTime() <= now.getTime() ? 'expired' : 'active';
  return {
    id: row.id, name: row.name, prefix: row.prefix, tenant_id: row.tenant_id, user_id: row.user_id, scopes: row.scopes, status,
    created_at: row.created_at.toISOString(), expires_at: row.expires_at?.toISOString() ?? null, revoked_at: row.revoked_at?.toISOString() ?? null,
    created_by: row.created_by ?? null,
  };
}

/**
 * Checks a requested expiry and the scopes against what the caller may grant. A caller whose own
 * credential expires (a key's expires_at, a JWT's exp) cannot create a key that outlives it: a
 * later expiry, or none, is a 400 naming the latest allowed (never silently shortened).
 */
export function checkGrant(caller: Pick<Principal, 'scopes' | 'expiresAt'>, scopes: readonly string[], expiresAt: string | undefined): Date | null {
  const refused = ungrantable(caller.scopes, scopes);
  if (refused.length) {
    throw new ApiError('FORBIDDEN', `Cannot grant scopes you do not hold: ${refused.join(', ')}`, { required_scope: refused[0], ungrantable_scopes: refused });
  }
  const limit = caller.expiresAt;
  if (expiresAt === undefined) {
    if (!limit) return null;
    throw new ApiError('VALIDATION_ERROR', `expires_at is required: your credential expires at ${limit.toISOString()} and a key you create cannot outlive it`, {
      path: 'expires_at', reason: 'required: the caller expires', max_expires_at: limit.toISOString(),
    });
  }
  const at = parseInstant(expiresAt, 'expires_at');
  if (at.getTime() <= Date.now()) {
    throw new ApiError('VALIDATION_ERROR', 'expires_at must be a future RFC 3339 timestamp', { path: 'expires_at', reason: 'invalid value' });
  }
  if (limit && at.getTime() > limit.getTime()) {
    throw new ApiError('VALIDATION_ERROR', `expires_at must not be later than your own credential's expiry (${limit.toISOString()})`, {
      path: 'expires_at', reason: "after the caller's expiry", max_expires_at: limit.toISOString(),
    });
  }
  return at;
}

/** A key may be revoked only by a caller holding every scope it holds (`admin` holds all). */
export function checkRevoke(caller: Pick<Principal, 'scopes'>, target: Pick<ApiKeyRow, 'id' | 'scopes'>): void {
  const missing = ungrantable(caller.scopes, target.scopes);
  if (missing.length) {
    throw new ApiError('FORBIDDEN', `Cannot revoke API key ${target.id}: it holds scopes you do not hold: ${missing.join(', ')}`, {
      required_scope: missing[0], missing_scopes: missing,
    });
  }
}

export async function authKeyRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'db' | 'config' | 'signals'>): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { security } = deps.config;

  r.get('/api/v1/auth/me', {
    config: { authenticated: true },
    schema: { tags: ['auth'], summary: 'Who am I: tenant, user, scopes and rate limit of the credential', response: { 200: Me, ...errorResponses('GET', 'authenticated') } },
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
    schema: { tags: ['auth'], summary: "Create an API key in the caller's tenant (shown once)", body: CreateApiKeyBody, response: { 201: CreatedApiKey, ...errorResponses('POST', 'scope') } },
  }, async (req, reply) => {
    const expiresAt = checkGrant(req.principal, req.body.scopes, req.body.expires_at);
    const { key, row } = await createApiKey(deps.db, {
      tenantId: req.principal.tenantId, userId: req.principal.userId, name: req.body.name.trim(), scopes: req.body.scopes, expiresAt, createdBy: req.principal.subjectId,
    });
    auditLog(req, 'api key created', { key_id: row.id, name: row.name, scopes: row.scopes });
    reply.header('cache-control', 'no-store');
    return reply.code(201).send({ ...keyView(row), key });
  });

  r.get('/api/v1/auth/api-keys', {
    config: { scope: 'keys:manage' },
    schema: { tags: ['auth'], summary: "The tenant's API keys (never the keys themselves)", querystring: Page, response: { 200: ApiKeyList, ...errorResponses('GET', 'scope', [400]) } },
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
    schema: {
      tags: ['auth'], params: IdParam, response: { 204: Type.Null(), ...errorResponses('DELETE', 'scope', [404]) },
      summary: 'Revoke an API key (refused from the next request on; on other API nodes within milliseconds, at most TASKGATE_AUTH_CACHE_MS; its open streams are closed)',
      description: "Only a key whose scopes are all the caller's (`admin` covers every scope): otherwise 403 naming the missing scopes.",
    },
  }, async (req, reply) => {
    const tenantId = req.principal.tenantId;
    const target = await apiKeysGet(deps.db, { tenantId, id: req.params.id });
    if (!target) throw new ApiError('NOT_FOUND', `API key ${req.params.id} not found`);
    // a key's scopes never change, so the check holds for the revoke that follows
    checkRevoke(req.principal, target);
    if (!(await apiKeysRevoke(deps.db, { tenantId, id: req.params.id }))) throw new ApiError('NOT_FOUND', `API key ${req.params.id} not found`);
    deps.signals.credentials(req.params.id);
    // the 204 says the key is refused: the other processes drop it from their caches first
    await deps.signals.sent();
    auditLog(req, 'api key revoked', { key_id: target.id, name: target.name });
    return reply.code(204).send(null);
  });

  r.get('/api/v1/auth/api-keys/:id', {
    config: { scope: 'keys:manage' },
    schema: { tags: ['auth'], summary: 'One API key (never the key itself)', params: IdParam, response: { 200: ApiKeyView, ...errorResponses('GET', 'scope', [400, 404]) } },
  }, async (req) => {
    const row = await apiKeysGet(deps.db, { tenantId: req.principal.tenantId, id: req.params.id });
    if (!row) throw new ApiError('NOT_FOUND', `API key ${req.params.id} not found`);
    return keyView(row);
  });
}
