// DML for tenant task definitions (the admin API's). Every statement names its tenant; the
// periodic reload of every tenant's set is the one exception, and it says so in its name.
import type { Db, Queryable } from '../db.js';

export interface TenantDefinitionRow {
  tenant_id: string;
  id: string;
  definition: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  /** updated_at in epoch microseconds (text): what tenantDefinitionsVersionsAllTenants compares. */
  updated_us: string;
}

const COLUMNS = `tenant_id, id, definition, created_at, updated_at, (extract(epoch FROM updated_at) * 1000000)::bigint::text AS updated_us`;

/**
 * Creates or replaces a tenant's definition; `created` tells which. A create is refused (undefined)
 * when the tenant already holds `maxPerTenant` definitions; a replace never is. Writes of one
 * tenant's definitions are serialized (a transaction-scoped advisory lock taken before the count's
 * snapshot), so concurrent creates cannot pass the cap together.
 */
export async function tenantDefinitionsUpsert(
  db: Db,
  p: { tenantId: string; id: string; definition: Record<string, unknown>; maxPerTenant: number },
): Promise<(TenantDefinitionRow & { created: boolean }) | undefined> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('taskgate.tenant_definitions:' || $1, 0))`, [p.tenantId]);
    return upsertUnderLock(tx, p);
  });
}

async function upsertUnderLock(
  db: Queryable,
  p: { tenantId: string; id: string; definition: Record<string, unknown>; maxPerTenant: number },
): Promise<(TenantDefinitionRow & { created: boolean }) | undefined> {
  const res = await db.query<TenantDefinitionRow & { created: boolean }>(
    `INSERT INTO tenant_definitions (tenant_id, id, definition)
     SELECT $1, $2, $3::jsonb
      WHERE (SELECT count(*) FROM tenant_definitions WHERE tenant_id = $1) < $4
         OR EXISTS (SELECT 1 FROM tenant_definitions WHERE tenant_id = $1 AND id = $2)
     ON CONFLICT (tenant_id, id) DO UPDATE SET definition = excluded.definition, updated_at = now()
     RETURNING ${COLUMNS}, (xmax = 0) AS created`,
    [p.tenantId, p.id, JSON.stringify(p.definition), p.maxPerTenant],
  );
  return res.rows[0];
}

/** Whether the tenant has a definition by that id (one primary-key lookup). */
export async function tenantDefinitionsExists(db: Queryable, p: { tenantId: string; id: string }): Promise<boolean> {
  const res = await db.query('SELECT 1 FROM tenant_definitions WHERE tenant_id = $1 AND id = $2', [p.tenantId, p.id]);
  return res.rows.length > 0;
}

/** Deletes a tenant's definition; false when the tenant has none by that id. */
export async function tenantDefinitionsDelete(db: Queryable, p: { tenantId: string; id: string }): Promise<boolean> {
  const res = await db.query('DELETE FROM tenant_definitions WHERE tenant_id = $1 AND id = $2', [p.tenantId, p.id]);
  return res.rowCount > 0;
}

export async function tenantDefinitionsListByTenant(db: Queryable, tenantId: string): Promise<TenantDefinitionRow[]> {
  const res = await db.query<TenantDefinitionRow>(`SELECT ${COLUMNS} FROM tenant_definitions WHERE tenant_id = $1 ORDER BY id`, [tenantId]);
  return res.rows;
}

/** Every tenant's definitions: the start-up load and the periodic reload of the in-memory cache. */
export async function tenantDefinitionsListAllTenants(db: Queryable): Promise<TenantDefinitionRow[]> {
  const res = await db.query<TenantDefinitionRow>(`SELECT ${COLUMNS} FROM tenant_definitions ORDER BY tenant_id, id`);
  return res.rows;
}

/**
 * Every tenant's definitions in brief, without reading them: `count:newest updated_at (µs)`. The
 * periodic check compares it with what each tenant's last load saw (versionOfRows) and reloads
 * only the tenants that differ.
 */
export async function tenantDefinitionsVersionsAllTenants(db: Queryable): Promise<Map<string, string>> {
  const res = await db.query<{ tenant_id: string; version: string }>(
    `SELECT tenant_id, count(*) || ':' || max((extract(epoch FROM updated_at) * 1000000)::bigint) AS version
       FROM tenant_definitions GROUP BY tenant_id`,
  );
  return new Map(res.rows.map((r) => [r.tenant_id, r.version]));
}

/** The version tenantDefinitionsVersionsAllTenants reports for a tenant whose rows these are. */
export function versionOfRows(rows: readonly TenantDefinitionRow[]): string | undefined {
  if (rows.length === 0) return undefined;
  let newest = 0n;
  for (const r of rows) if (BigInt(r.updated_us) > newest) newest = BigInt(r.updated_us);
  return `${rows.length}:${newest}`;
}
