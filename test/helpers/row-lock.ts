// PostgreSQL only: a transaction of its own holding one row FOR UPDATE, so that statements writing
// the row wait on it — races made deterministic — and a count of who waits.
import type { Db } from '../../src/storage/db.js';
import { until } from './server.js';

export interface RowLock {
  /** The holding backend. */
  pid: number;
  /** Backends waiting on the lock, directly or queued behind another waiter's tuple lock. */
  waiting(): Promise<number>;
  /** Ends the holding transaction; resolves once it has. */
  release(): Promise<void>;
}

export async function holdRow(db: Db, table: 'tasks' | 'approvals', id: string): Promise<RowLock> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let pid = 0;
  const done = db.transaction(async (tx) => {
    pid = (await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await tx.query(`SELECT 1 FROM ${table} WHERE id = $1 FOR UPDATE`, [id]);
    await released;
  });
  await until(() => pid !== 0, `the ${table} row lock`);
  return {
    pid,
    async waiting() {
      const { rows } = await db.query<{ pid: number; by: number[] }>(
        "SELECT pid, pg_blocking_pids(pid) AS by FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
      );
      const blocked = new Set([pid]);
      for (let grew = true; grew; ) {
        grew = false;
        for (const r of rows) if (!blocked.has(r.pid) && r.by.some((p) => blocked.has(p))) grew = Boolean(blocked.add(r.pid));
      }
      return blocked.size - 1;
    },
    release: async () => {
      release();
      await done;
    },
  };
}
