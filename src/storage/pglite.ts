// Embedded PostgreSQL (PGlite) adapter. PGlite is single-connection and single-process: a lock
// file in the data directory makes a second live process refuse to start, while a lock left by a
// killed process (its pid no longer alive) is taken over.
import { chmodSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult } from './db.js';

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

const LOCK_FILE = 'taskgate.lock';

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Data directories this process holds. A lock file naming this process's pid is stale unless the
 * directory is in here: in a container every start tends to get the same pid, so a lock left by
 * the previous run names ours.
 */
const heldHere = new Set<string>();

/** Takes the data directory's lock file or throws DataDirLockedError; returns its release. */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, LOCK_FILE);
  const key = resolve(path);
  if (heldHere.has(key)) {
    throw new DataDirLockedError(`data directory ${resolve(dataDir)} is already open in this process`);
  }
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldHere.add(key);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        heldHere.delete(key);
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = NaN;
      try {
        holder = Number(readFileSync(path, 'utf8').trim());
      } catch {
        continue; // removed between our open and read: try again
      }
      if (holder !== process.pid && pidAlive(holder)) {
        throw new DataDirLockedError(
          `data directory ${resolve(dataDir)} is in use by another taskgate process (pid ${holder}); ` +
            'PGlite allows one process per data directory — stop it, or use DATABASE_URL for several processes',
        );
      }
      // stale lock from a process that is gone
      try {
        unlinkSync(path);
      } catch {
        /* raced with another starter; loop */
      }
    }
  }
  throw new DataDirLockedError(`could not take the lock on ${resolve(dataDir)}`);
}

export interface PgliteOptions {
  /** Directory for the database files; undefined for an in-memory database (tests). */
  dataDir?: string;
}

export async function openPglite(options: PgliteOptions = {}): Promise<Db> {
  let release: (() => void) | undefined;
  let pgDir: string | undefined;
  if (options.dataDir) {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    release = lockDataDir(options.dataDir);
    pgDir = join(options.dataDir, 'pgdata');
    // the database files are readable only by us, whatever the directory around them allows (as
    // PostgreSQL insists on for its data directory): PGlite would create this one 0755
    mkdirSync(pgDir, { recursive: true, mode: 0o700 });
    chmodSync(pgDir, 0o700);
  }
  let db: PGlite;
  try {
    db = await PGlite.create({ dataDir: pgDir });
  } catch (err) {
    release?.();
    throw err;
  }

  const wrap = (q: PGlite | Parameters<Parameters<PGlite['transaction']>[0]>[0]): Queryable => ({
    async query<T>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
      const res = await q.query<T>(sql, params as unknown[] | undefined);
      // PGlite reports affectedRows 0 for a SELECT: its row count is then the rows it returned (as pg does)
      return { rows: res.rows, rowCount: res.affectedRows || res.rows.length };
    },
  });
  const base = wrap(db);

  return {
    kind: 'pglite',
    schema: undefined,
    query: base.query,
    // PGlite commits when the function returns: commitEarly has nothing to send
    transaction: (fn) => db.transaction((tx) => fn({ ...wrap(tx), commitEarly: () => {} })),
    async exec(sql) {
      await db.exec(sql);
    },
    async listen(channel, onPayload) {
      const unsub = await db.listen(channel, onPayload);
      return async () => {
        await unsub();
      };
    },
    async notify(channel, payload) {
      await db.query('SELECT pg_notify($1, $2)', [channel, payload]);
    },
    async close() {
      try {
        if (!db.closed) await db.close();
      } finally {
        release?.();
      }
    },
  };
}

/** Writes a small file readable only by the owner (0600), e.g. the bootstrap admin key. */
export function writeSecretFile(path: string, contents: string): void {
  writeFileSync(path, contents, { mode: 0o600 });
}
