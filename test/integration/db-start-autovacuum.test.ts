// A PostgreSQL server running with autovacuum off is named at start: every finished task leaves
// dead row versions behind, and nothing reclaims them (this machine's shared server runs so).
// PGlite has no autovacuum at all (docs/configuration.md) and says nothing.
import { describe, expect, it } from 'vitest';
import { openTestDb } from '../helpers/db.js';
import { serverWithLogs } from '../helpers/server.js';

describe('start on a database without autovacuum', () => {
  it('warns on PostgreSQL when autovacuum is off, and only then', async () => {
    const tdb = await openTestDb();
    const { server, entries } = await serverWithLogs(tdb.db, { LOG_LEVEL: 'warn' });
    try {
      const warned = entries().some((e) => /autovacuum is off/.test(String(e.msg)));
      if (tdb.db.kind === 'pg') {
        const setting = (await tdb.db.query<{ on: string }>(`SELECT current_setting('autovacuum') AS on`)).rows[0]!.on;
        expect(warned, `autovacuum = ${setting}`).toBe(setting === 'off');
      } else {
        expect(warned).toBe(false);
      }
    } finally {
      await server.close();
      await tdb.close();
    }
  });
});
