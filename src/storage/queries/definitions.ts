// DML for tenant task definitions (the admin API's). Every statement names its tenant; the
// periodic reload of every tenant's set is the one exception, and it says so in its name.
import type { Queryable } from '../db.js';

export interface TenantDefinitionRow {
  tenant_id: string;
  id: string;
  definition: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

/**
 * Creates or replaces a tenant's definition; `created` tells which. A create is refused (undefined)
 * when the tenant already holds `maxPerTenant` definitions; a replace never is.
 */
export async function tenantDefinitionsUpsert(
  db: Queryable,
  p: { tenantId: string; id: string; definition: Record<string, unknown>; maxPerTenant: number },
): Promise<(TenantDefinitionRow & { created: boolean }) | undefined> {
  const res = await db.query<TenantDefinitionRow & { created: boolean }>(
    `INSERT INTO tenant_definitions (tenant_id, id, definition)
     SELECT $1, $2, $3::jsonb
      WHERE (SELECT count(*) FROM tenant_definitions WHERE tenant_id = $1) < $4
         OR EXISTS (SELECT 1 FROM tenant_definitions WHERE tenant_id = $1 AND id = $2)
     ON CONFLICT (tenant_id, id) DO UPDATE SET definition = excluded.definition, updated_at = now()
     RETURNING *, (xmax = 0) AS created`,
    [p.tenantId, p.id, JSON.stringify(p.definition), p.maxPerTenant],
  );
  return res.rows[0];
}

/** Deletes a tenant's definition; false when the tenant has none by that id. */
export async function tenantDefinitionsDelete(db: Queryable, p: { tenantId: string; id: string }): Promise<boolean> {
  const res = await db.query('DELETE FROM tenant_definitions WHERE tenant_id = $1 AND id = $2', [p.tenantId, p.id]);
  return res.rowCount > 0;
}

export async function tenantDefinitionsListByTenant(db: Queryable, tenantId: string): Promise<TenantDefinitionRow[]> {
  const res = await db.query<TenantDefinitionRow>('SELECT * FROM tenant_definitions WHERE tenant_id = $1 ORDER BY id', [tenantId]);
  return res.rows;
}

/** Every tenant's definitions: the start-up load and the periodic reload of the in-memory cache. */
export async function tenantDefinitionsListAllTenants(db: Queryable): Promise<TenantDefinitionRow[]> {
  const res = await db.query<TenantDefinitionRow>('SELECT * FROM tenant_definitions ORDER BY tenant_id, id');
  return res.rows;
}
