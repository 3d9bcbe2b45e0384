// First start with an empty database: create the default tenant and an admin API key.
import type { Db } from '../storage/db.js';
import { tenantsCount, tenantsInsert } from '../storage/queries/tenants.js';
import { apiKeyEverStored, createApiKey } from './api-keys.js';

export const DEFAULT_TENANT_ID = 'default';

export interface BootstrapResult {
  tenantId: string;
  /** The new admin key, present only when it was generated now (print it once). */
  generatedKey?: string;
  created: boolean;
  /** TASKGATE_ADMIN_KEY names a key that was revoked: it stays revoked (the server warns). */
  adminKeyRevoked?: boolean;
}

/**
 * Creates tenant + admin key if there is no tenant yet. `adminKey` (TASKGATE_ADMIN_KEY) is used
 * as the key instead of a generated one. Runs in one transaction so two starters cannot both
 * create a tenant (the second sees the first's row after the advisory lock).
 */
export async function bootstrap(db: Db, adminKey?: string): Promise<BootstrapResult> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(727270002)');
    if ((await tenantsCount(tx)) > 0) {
      if (adminKey) {
        // automation may set the key on an existing database: make sure it exists — once. A key
        // that was stored before (revoked, expired) is never created again: revoking it must hold
        // across restarts with the same environment.
        const defaultExists = (await tx.query('SELECT 1 FROM tenants WHERE id = $1', [DEFAULT_TENANT_ID])).rows.length > 0;
        const stored = defaultExists ? await apiKeyEverStored(tx, adminKey) : undefined;
        if (defaultExists && !stored) {
          await createApiKey(tx, { tenantId: DEFAULT_TENANT_ID, userId: 'admin', name: 'bootstrap admin', scopes: ['admin'], expiresAt: null, key: adminKey });
        }
        if (stored?.revoked) return { tenantId: DEFAULT_TENANT_ID, created: false, adminKeyRevoked: true };
      }
      return { tenantId: DEFAULT_TENANT_ID, created: false };
    }
    await tenantsInsert(tx, { id: DEFAULT_TENANT_ID, name: 'Default tenant' });
    const { key } = await createApiKey(tx, {
      tenantId: DEFAULT_TENANT_ID,
      userId: 'admin',
      name: 'bootstrap admin',
      scopes: ['admin'],
      expiresAt: null,
      key: adminKey,
    });
    return { tenantId: DEFAULT_TENANT_ID, created: true, generatedKey: adminKey ? undefined : key };
  });
}
