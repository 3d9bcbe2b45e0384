// DML for tenants and API keys.
import type { Queryable } from '../db.js';

export interface TenantRow {
  id: string;
  name: string;
  rate_limit: { per_minute: number; burst: number } | null;
  /** At most this many of the tenant's tasks RUNNING at once (migration 0010); null: no cap. */
  max_running: number | null;
  created_at: Date;
}

export interface ApiKeyRow {
  id: string;
  tenant_id: string;
  user_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  scopes: string[];
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  created_at: Date;
  /** The creating credential's subject (docs/security.md); null for the bootstrap key and older keys. */
  created_by: string | null;
}

export async function tenantsInsert(
  db: Queryable,
  t: { id: string; name: string; rate_limit?: TenantRow['rate_limit']; max_running?: number | null },
): Promise<TenantRow> {
  const res = await db.query<TenantRow>(
    'INSERT INTO tenants (id, name, rate_limit, max_running) VALUES ($1, $2, $3::jsonb, $4) RETURNING *',
    [t.id, t.name, t.rate_limit ? JSON.stringify(t.rate_limit) : null, t.max_running ?? null],
  );
  return res.rows[0]!;
}

export async function tenantsCount(db: Queryable): Promise<number> {
  const res = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM tenants');
  return res.rows[0]?.n ?? 0;
}

export async function tenantsGet(db: Queryable, id: string): Promise<TenantRow | undefined> {
  const res = await db.query<TenantRow>('SELECT * FROM tenants WHERE id = $1', [id]);
  return res.rows[0];
}

export async function tenantsList(db: Queryable, p: { limit: number; offset: number }): Promise<TenantRow[]> {
  const res = await db.query<TenantRow>('SELECT * FROM tenants ORDER BY created_at, id LIMIT $1 OFFSET $2', [p.limit, p.offset]);
  return res.rows;
}

/** Tenant ids after `after` in id order, `limit` at a time (walks every tenant without OFFSET). */
export async function tenantsIdsAfter(db: Queryable, p: { after: string; limit: number }): Promise<string[]> {
  const res = await db.query<{ id: string }>('SELECT id FROM tenants WHERE id > $1 ORDER BY id LIMIT $2', [p.after, p.limit]);
  return res.rows.map((r) => r.id);
}

export async function apiKeysInsert(
  db: Queryable,
  k: Omit<ApiKeyRow, 'revoked_at' | 'last_used_at' | 'created_at'>,
): Promise<ApiKeyRow> {
  const res = await db.query<ApiKeyRow>(
    `INSERT INTO api_keys (id, tenant_id, user_id, name, prefix, key_hash, scopes, expires_at, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, $9) RETURNING *`,
    [k.id, k.tenant_id, k.user_id, k.name, k.prefix, k.key_hash, k.scopes, k.expires_at, k.created_by],
  );
  return res.rows[0]!;
}

/** The tenants with a cap on their running tasks (max_running), as each worker keeps them. */
export async function tenantsCappedIds(db: Queryable): Promise<string[]> {
  const res = await db.query<{ id: string }>('SELECT id FROM tenants WHERE max_running IS NOT NULL', [], { name: 'tenants_capped' });
  return res.rows.map((r) => r.id);
}

/** A key row with what the request path needs of its tenant. */
export type ApiKeyWithTenant = ApiKeyRow & { tenant_rate_limit: TenantRow['rate_limit'] };

/** Candidate keys for lookup prefixes, with their tenant's limits; the caller compares hashes. */
export async function apiKeysFindByPrefixes(db: Queryable, prefixes: readonly string[]): Promise<ApiKeyWithTenant[]> {
  const res = await db.query<ApiKeyWithTenant>(
    `SELECT k.*, t.rate_limit AS tenant_rate_limit FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
      WHERE k.prefix = ANY($1::text[])`,
    [prefixes],
  );
  return res.rows;
}

export async function apiKeysList(db: Queryable, tenantId: string): Promise<ApiKeyRow[]> {
  const res = await db.query<ApiKeyRow>('SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id', [tenantId]);
  return res.rows;
}

/** Revokes a key of the tenant; false when it does not exist there. Repeated revokes keep the first time. */
export async function apiKeysRevoke(db: Queryable, p: { tenantId: string; id: string }): Promise<boolean> {
  const res = await db.query(
    'UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND tenant_id = $2',
    [p.id, p.tenantId],
  );
  return res.rowCount > 0;
}

/**
 * Changes a tenant's name, rate limit and/or cap on running tasks (`null` clears an override);
 * undefined when it does not exist.
 */
export async function tenantsUpdate(
  db: Queryable,
  p: { id: string; name?: string; rate_limit?: TenantRow['rate_limit']; max_running?: number | null },
): Promise<TenantRow | undefined> {
  const res = await db.query<TenantRow>(
    `UPDATE tenants SET name = coalesce($2, name), rate_limit = CASE WHEN $3::boolean THEN $4::jsonb ELSE rate_limit END,
            max_running = CASE WHEN $5::boolean THEN $6::int ELSE max_running END
      WHERE id = $1 RETURNING *`,
    [p.id, p.name ?? null, p.rate_limit !== undefined, p.rate_limit ? JSON.stringify(p.rate_limit) : null,
      p.max_running !== undefined, p.max_running ?? null],
  );
  return res.rows[0];
}

export async function apiKeysListPage(db: Queryable, p: { tenantId: string; limit: number; offset: number }): Promise<ApiKeyRow[]> {
  const res = await db.query<ApiKeyRow>(
    'SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3',
    [p.tenantId, p.limit, p.offset],
  );
  return res.rows;
}

export async function apiKeysCount(db: Queryable, tenantId: string): Promise<number> {
  const res = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM api_keys WHERE tenant_id = $1', [tenantId]);
  return res.rows[0]?.n ?? 0;
}

export async function apiKeysGet(db: Queryable, p: { tenantId: string; id: string }): Promise<ApiKeyRow | undefined> {
  const res = await db.query<ApiKeyRow>('SELECT * FROM api_keys WHERE id = $1 AND tenant_id = $2', [p.id, p.tenantId]);
  return res.rows[0];
}

/**
 * Of these key ids, the ones that would still authenticate: not revoked, with their expiry (past
 * expiries are returned too; the caller compares with its clock, as verification does), and only
 * while their tenant exists. An id missing from the answer is gone.
 */
export async function apiKeysStates(db: Queryable, ids: readonly string[]): Promise<{ id: string; expires_at: Date | null }[]> {
  const res = await db.query<{ id: string; expires_at: Date | null }>(
    `SELECT k.id, k.expires_at FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
      WHERE k.id = ANY($1::text[]) AND k.revoked_at IS NULL`,
    [ids],
  );
  return res.rows;
}
