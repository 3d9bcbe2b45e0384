// PGlite has no checkpointer: openPglite checkpoints once enough WAL has been written, so pg_wal
// stays bounded instead of growing for as long as the server runs (a soak saw it only grow).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPglite } from '../../src/storage/pglite.js';
import { until } from '../helpers/server.js';

const segments = (dir: string) => readdirSync(join(dir, 'pgdata', 'pg_wal')).filter((f) => /^[0-9A-F]{24}$/.test(f)).length;

describe('PGlite WAL', () => {
  it('is checkpointed once enough has been written: pg_wal stays bounded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskgate-wal-'));
    const db = await openPglite({ dataDir: dir, checkpointWalBytes: 4 * 1024 * 1024, checkpointPollMs: 20 });
    try {
      const checkpointAt = async () => (await db.query<{ at: string }>(`SELECT (checkpoint_lsn - '0/0'::pg_lsn)::text AS at FROM pg_control_checkpoint()`)).rows[0]!.at;
      const first = await checkpointAt();
      await db.exec('CREATE TABLE w (v text)');
      // ~160 MB of WAL, ten segments' worth at a time, with pauses the checkpointer can look in
      for (let i = 0; i < 16; i++) {
        await db.query(`INSERT INTO w SELECT repeat(md5(g::text), 30) FROM generate_series(1, 10000) g`);
        await db.query('DELETE FROM w');
        await new Promise((r) => setTimeout(r, 60));
      }
      await until(async () => (await checkpointAt()) !== first, 'a checkpoint', 10_000);
      // 16 MB segments: min_wal_size (32 MB) kept for reuse, the current one, and what was written since the last look
      expect(segments(dir)).toBeLessThanOrEqual(5);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
