// The admin key generated on a first start is shown once and saved to <data-dir>/admin.key. It is
// committed before the file is written: a file that cannot be written must not lose the only copy.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { startServer } from '../../src/main.js';
import { createLogger } from '../../src/logger.js';
import { openTestDb } from '../helpers/db.js';

describe('the generated admin key', () => {
  it('is still announced, with the reason, when <data-dir>/admin.key cannot be written', async () => {
    const tdb = await openTestDb();
    const notADir = join(mkdtempSync(join(tmpdir(), 'taskgate-key-')), 'file');
    writeFileSync(notADir, 'x');
    const config = loadConfig({}, { PORT: '0', TASKGATE_DATA_DIR: notADir, TASKGATE_ROLE: 'api' });
    const lines: string[] = [];
    // (not shown on a stdout that is no terminal, unless it could not be saved: then it is)
    const server = await startServer(config, { db: tdb.db, logger: createLogger('silent'), announce: (l) => lines.push(l), showKey: false });
    try {
      expect(lines).toHaveLength(1);
      const key = /\n {2}(\S+)$/.exec(lines[0]!)?.[1];
      expect(lines[0]).toMatch(/shown once, NOT saved: .*admin\.key: /);
      const me = await fetch(`${server.url}/api/v1/auth/me`, { headers: { 'x-api-key': key! } });
      expect(me.status).toBe(200);
    } finally {
      await server.close();
      await tdb.close();
    }
  });
});
