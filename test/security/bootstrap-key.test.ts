// TASKGATE_ADMIN_KEY across restarts: set on an existing database it is created once; revoked, it
// stays revoked when the server starts again with the same environment (it came back as a new
// active admin row); and a secret with any revoked row never authenticates, whatever the row order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { bootstrap, DEFAULT_TENANT_ID } from '../../src/auth/bootstrap.js';
import { createApiKey, generateKey, hashKey, keyPrefix, verifyApiKey } from '../../src/auth/api-keys.js';

let tdb: TestDb;
beforeAll(async () => {
  tdb = await openTestDb();
});
afterAll(async () => {
  await tdb?.close();
});

const rowsOf = async (key: string) =>
  (await tdb.db.query<{ id: string; revoked: boolean }>('SELECT id, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE key_hash = $1 ORDER BY created_at', [hashKey(key)])).rows;

describe('the environment admin key', () => {
  it('is created on an existing database once, and a revoked one is never brought back', async () => {
    const first = await bootstrap(tdb.db); // a fresh database: generated key
    expect(first.created).toBe(true);
    const envKey = generateKey();
    // automation sets the key later: it is added (once) to the existing database
    expect(await bootstrap(tdb.db, envKey)).toEqual({ tenantId: DEFAULT_TENANT_ID, created: false });
    expect(await bootstrap(tdb.db, envKey)).toEqual({ tenantId: DEFAULT_TENANT_ID, created: false });
    const rows = await rowsOf(envKey);
    expect(rows).toHaveLength(1);
    expect((await verifyApiKey(tdb.db, envKey))?.scopes).toEqual(['admin']);

    await tdb.db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [rows[0]!.id]);
    expect(await verifyApiKey(tdb.db, envKey)).toBeUndefined();
    // the same environment on the next starts: no new row, still refused, and the server is told
    for (let i = 0; i < 2; i++) {
      expect(await bootstrap(tdb.db, envKey)).toEqual({ tenantId: DEFAULT_TENANT_ID, created: false, adminKeyRevoked: true });
    }
    expect(await rowsOf(envKey)).toEqual([{ id: rows[0]!.id, revoked: true }]);
    expect(await verifyApiKey(tdb.db, envKey)).toBeUndefined();
  });

  it('a secret with a revoked row is refused even beside an active copy of it, in either order', async () => {
    for (const revokedFirst of [true, false]) {
      const key = `operator-chosen-secret-${revokedFirst}-${Date.now()}`;
      const make = () => createApiKey(tdb.db, { tenantId: DEFAULT_TENANT_ID, userId: 'admin', name: 'dup', scopes: ['admin'], expiresAt: null, key });
      const a = await make();
      const b = await make();
      await tdb.db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [(revokedFirst ? a : b).row.id]);
      expect(keyPrefix(key)).toMatch(/^h/);
      expect(await verifyApiKey(tdb.db, key), `revoked ${revokedFirst ? 'first' : 'second'}`).toBeUndefined();
    }
  });
});
