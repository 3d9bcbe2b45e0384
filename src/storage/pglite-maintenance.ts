// What PostgreSQL's background processes do and PGlite (single-user, no background workers) does
// not: checkpoints, so pg_wal stays bounded, and autovacuum, so finished tasks' dead row versions
// are reused and the planner's statistics follow the tables. One look every 30 s does both.
import type { PGlite } from '@electric-sql/pglite';

/**
 * PGlite runs PostgreSQL single-user: no checkpointer, so nothing ever checkpoints on its own and
 * pg_wal grows without end — 16 to 82 MB in a 20-minute soak, 3.2 GB in a 300 MB write test, every
 * byte of it in each backup and replayed after a crash (8 s for 257 MB). Once this much WAL has
 * been written since the last one, the next look runs a CHECKPOINT (which recycles the segments
 * before it): pg_wal then stays near this plus min_wal_size. A checkpoint holds the database
 * (and, PGlite running on the event loop, the process) ~0.1–0.2 s per 64 MB of WAL.
 */
export const PGLITE_CHECKPOINT_WAL_BYTES = 64 * 1024 * 1024;
/** How often the maintenance looks (WAL written, tables' dead rows). */
export const PGLITE_CHECKPOINT_POLL_MS = 30_000;

/**
 * A table is vacuumed once its dead row versions pass 50 + 20 % of its live rows (PostgreSQL's
 * autovacuum default). Without it a PGlite table only reclaims what page pruning finds as rows are
 * read (a 20-minute soak left ~20 % of the tables reclaimable) and its indexes keep dead entries.
 * Measured on a 200,000-task table with 100,000 dead versions: VACUUM 123 ms, a second one 22 ms.
 */
const VACUUM_THRESHOLD = 50;
const VACUUM_SCALE_FACTOR = 0.2;
/**
 * Analyzed once its changes since the last analyze pass 50 + 100 % of its live rows (PostgreSQL:
 * 10 %): ANALYZE samples 30,000 rows whatever changed and held PGlite 0.5–0.9 s on that same table,
 * and a task changes its row three or four times, so at 10 % a busy table would be analyzed every
 * few thousand tasks. At 100 % it is analyzed each time it has grown by about a quarter; VACUUM
 * keeps the planner's row count (reltuples) current in between.
 */
const ANALYZE_THRESHOLD = 50;
const ANALYZE_SCALE_FACTOR = 1;

/**
 * The table that most needs it, one statement per look: VACUUM and ANALYZE hold the database (and
 * the event loop) while they run, so a look does one table's worth, vacuums first.
 */
const DUE_SQL = `
  SELECT name, CASE WHEN vacuum_due THEN 'VACUUM' ELSE 'ANALYZE' END AS command
    FROM (SELECT format('%I.%I', schemaname, relname) AS name, n_dead_tup, n_mod_since_analyze,
                 n_dead_tup > ${VACUUM_THRESHOLD} + ${VACUUM_SCALE_FACTOR} * n_live_tup AS vacuum_due,
                 n_mod_since_analyze > ${ANALYZE_THRESHOLD} + ${ANALYZE_SCALE_FACTOR} * n_live_tup AS analyze_due
            FROM pg_stat_user_tables) s
   WHERE vacuum_due OR analyze_due
   ORDER BY vacuum_due DESC, n_dead_tup DESC, n_mod_since_analyze DESC
   LIMIT 1`;

/** The checkpoints and vacuums PGlite's missing background processes would make. */
export class PgliteMaintenance {
  #since = 0;
  #timer: NodeJS.Timeout | undefined;
  #looking: Promise<void> | undefined;
  constructor(
    readonly db: PGlite,
    readonly walBytes: number,
    readonly pollMs: number,
  ) {}

  async start(): Promise<void> {
    this.#since = await this.#walPosition();
    this.#timer = setInterval(() => (this.#looking ??= this.#look().finally(() => (this.#looking = undefined))), this.pollMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#looking;
  }

  /** Checkpoints now (a backup's copy), counting the WAL from here. */
  async checkpoint(): Promise<void> {
    const at = await this.#walPosition();
    await this.db.exec('CHECKPOINT');
    this.#since = at;
  }

  /** Bytes of WAL written since the database was made: a number (exact far beyond any disk). */
  async #walPosition(): Promise<number> {
    const { rows } = await this.db.query<{ at: string }>(`SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::text AS at`);
    return Number(rows[0]!.at);
  }

  async #look(): Promise<void> {
    try {
      if (this.db.closed) return;
      const { rows } = await this.db.query<{ name: string; command: 'VACUUM' | 'ANALYZE' }>(DUE_SQL);
      const due = rows[0];
      // VACUUM cannot run inside a transaction block: exec sends it alone, between transactions
      if (due && !this.db.closed) await this.db.exec(`${due.command} ${due.name}`);
      if (!this.db.closed && (await this.#walPosition()) - this.#since >= this.walBytes) await this.checkpoint();
    } catch {
      // closing, or the disk is full: the next look tries again
    }
  }
}
