// Forward-only numbered SQL migrations (migrations/NNNN_name.sql), applied in one transaction
// under an advisory lock so concurrent starters do not race; an up-to-date database is recognised
// with read-only queries first (no DDL, no lock: a data-only role can start). A database migrated by a newer
// Taskgate than this one is refused.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NO_QUERY_TIMEOUT_MS, type Db } from './db.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Arbitrary constant: the advisory lock id that serializes migrators. */
const MIGRATION_LOCK_ID = 727_270_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

let bundled: Migration[] | undefined;

/** The migrations shipped with this build, read once. */
export function loadMigrations(dir?: string): Migration[] {
  if (dir === undefined) return (bundled ??= readMigrations(MIGRATIONS_DIR));
  return readMigrations(dir);
}

function readMigrations(dir: string): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f.replace(/\.sql$/, ''), sql: readFileSync(dir + f, 'utf8') }));
}

export class SchemaTooNewError extends Error {
  override name = 'SchemaTooNewError';
}

/** A migration could not take its table locks while other sessions held them (every try). */
export class MigrationLockError extends Error {
  override name = 'MigrationLockError';
}

export interface MigrateOptions {
  /**
   * How long one statement waits for a table lock (`lock_timeout`). A migration waiting on a lock
   * queues every later query on that table behind it: bounded, the running service stalls for at
   * most this long per try instead of for as long as the longest open transaction.
   */
  lockTimeoutMs?: number;
  /** Tries before giving up, 1 s apart and doubling (the whole migration rolls back each time). */
  tries?: number;
}

const LOCK_NOT_AVAILABLE = '55P03';

export async function currentVersion(db: Db): Promise<number> {
  const exists = await db.query<{ ok: boolean }>(
    `SELECT to_regclass('taskgate_migrations') IS NOT NULL AS ok`,
  );
  if (!exists.rows[0]?.ok) return 0;
  const res = await db.query<{ v: number | null }>('SELECT max(version) AS v FROM taskgate_migrations');
  return res.rows[0]?.v ?? 0;
}

/**
 * Other client sessions on this PostgreSQL database: `taskgate`, those of Taskgate processes
 * (pg_stat_activity's application_name, which pg.ts sets), and `unnamed`, those with no
 * application name — builds before 2026-12-06 set none (nor do many other clients). Migrating
 * under them is a rolling upgrade. Both 0 on PGlite.
 */
export async function otherSessions(db: Db): Promise<{ taskgate: number; unnamed: number }> {
  if (db.kind !== 'pg') return { taskgate: 0, unnamed: 0 };
  const res = await db.query<{ taskgate: number; unnamed: number }>(
    `SELECT count(*) FILTER (WHERE application_name = 'taskgate')::int AS taskgate,
            count(*) FILTER (WHERE application_name = '' AND backend_type = 'client backend')::int AS unnamed
       FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
  );
  return res.rows[0] ?? { taskgate: 0, unnamed: 0 };
}

export function latestVersion(migrations: Migration[] = loadMigrations()): number {
  return migrations.at(-1)?.version ?? 0;
}

function refuseTooNew(applied: Set<number>, migrations: Migration[]): void {
  const newest = Math.max(0, ...applied);
  if (newest > latestVersion(migrations)) {
    throw new SchemaTooNewError(
      `database schema is at version ${newest}, newer than this Taskgate knows (${latestVersion(migrations)}); upgrade Taskgate`,
    );
  }
}

/**
 * Applies pending migrations; returns the versions applied. A database already at the latest
 * version is recognised with read-only queries first — no DDL, no advisory lock — so that a role
 * with only data rights (no CREATE on the schema) can start against a migrated database.
 */
export async function migrate(db: Db, migrations: Migration[] = loadMigrations(), opts: MigrateOptions = {}): Promise<number[]> {
  const exists = await db.query<{ ok: boolean }>(`SELECT to_regclass('taskgate_migrations') IS NOT NULL AS ok`);
  if (exists.rows[0]?.ok) {
    const res = await db.query<{ version: number }>('SELECT version FROM taskgate_migrations');
    const applied = new Set(res.rows.map((r) => r.version));
    refuseTooNew(applied, migrations);
    if (migrations.every((m) => applied.has(m.version))) return [];
  }
  const lockTimeoutMs = opts.lockTimeoutMs ?? 5_000;
  const tries = opts.tries ?? 6;
  for (let i = 1; ; i++) {
    try {
      return await applyPending(db, migrations, lockTimeoutMs);
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== LOCK_NOT_AVAILABLE) throw err;
      if (i >= tries) {
        throw new MigrationLockError(
          `migrations could not lock their tables in ${tries} tries of ${lockTimeoutMs} ms: other sessions hold them ` +
            `(${(err as Error).message}); end long transactions (pg_stat_activity) and run \`taskgate migrate\` again`,
          { cause: err },
        );
      }
      await new Promise((r) => setTimeout(r, 1_000 * 2 ** (i - 1)));
    }
  }
}

async function applyPending(db: Db, migrations: Migration[], lockTimeoutMs: number): Promise<number[]> {
  return db.transaction(async (tx) => {
    // another migrator may hold the lock for as long as its migrations take, and a migration may
    // build an index on a large table: no statement time limit here (lock_timeout bounds the waits)
    const long = { timeoutMs: NO_QUERY_TIMEOUT_MS };
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID], long);
    // after the advisory lock: another migrator may take as long as it needs
    await tx.query(`SET LOCAL lock_timeout = ${Math.trunc(lockTimeoutMs)}`);
    await tx.query(`CREATE TABLE IF NOT EXISTS taskgate_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const res = await tx.query<{ version: number }>('SELECT version FROM taskgate_migrations');
    const applied = new Set(res.rows.map((r) => r.version));
    refuseTooNew(applied, migrations);
    const done: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      // statements are separated by semicolons at line ends; no parameters in migrations
      for (const stmt of splitStatements(m.sql)) await tx.query(stmt, undefined, long);
      await tx.query('INSERT INTO taskgate_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      done.push(m.version);
    }
    return done;
  });
}

/**
 * Splits a migration into statements on `;` at end of line, except inside a dollar-quoted (`$$`)
 * function body, whose own statements end that way too.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  let inBody = false;
  for (const line of sql.split('\n')) {
    if (/^\s*--/.test(line)) continue;
    current.push(line);
    if ((line.match(/\$\$/g)?.length ?? 0) % 2 === 1) inBody = !inBody;
    if (!inBody && /;\s*$/.test(line)) {
      out.push(current.join('\n').replace(/;\s*$/, ''));
      current = [];
    }
  }
  out.push(current.join('\n'));
  return out.map((s) => s.trim()).filter(Boolean);
}
