// Embedded PostgreSQL (PGlite) adapter. PGlite is single-connection and single-process: a lock
// file in the data directory makes a second live process refuse to start, while a lock left by a
// killed process (its pid no longer alive, or now another process's: boot id and start time differ)
// is taken over.
import { chmodSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable, QueryResult } from './db.js';

/** The data directory cannot be used (not a directory, no permission, locked, a damaged database): a one-line start error. */
export class DataDirError extends Error {
  override name = 'DataDirError';
}

export class DataDirLockedError extends DataDirError {
  override name = 'DataDirLockedError';
}

/** A file-system failure on the data directory, as one line naming the setting. */
function dataDirProblem(dataDir: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'it, or a path inside it, is a file, not a directory'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EROFS' ? 'read-only file system'
    : code === 'ENOSPC' ? 'no space left on the device'
    : undefined;
  if (!why) return err;
  return new DataDirError(`data directory ${resolve(dataDir)} (TASKGATE_DATA_DIR / --data-dir) cannot be used: ${why}`, { cause: err });
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

/** This boot's id (Linux); undefined where /proc is missing (macOS). */
function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * When process `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat); undefined
 * where /proc is missing, the process is gone, or hidden (/proc mounted with hidepid).
 */
function readStartTicks(pid: number): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // field 2 is the command name in parentheses, which may itself hold spaces and ')'
    const ticks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3];
    return ticks !== undefined && /^\d+$/.test(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** When process `pid` started, as an ISO time, if /proc tells. */
function startedAt(pid: number): string | undefined {
  const ticks = readStartTicks(pid);
  if (ticks === undefined) return undefined;
  try {
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1];
    // USER_HZ: 100 ticks a second on every architecture Node runs on (x64, arm64, ppc64, s390x)
    return btime === undefined ? undefined : new Date(Number(btime) * 1000 + Number(ticks) * 10).toISOString();
  } catch {
    return undefined;
  }
}

/**
 * What this process writes into a lock: its pid, then (on Linux) the boot id and its start time,
 * which tell it apart from a later process given the same pid. Where /proc is missing, the pid alone
 * (as versions before the identity wrote it).
 */
function lockContent(): string {
  const bootId = readBootId();
  const ticks = readStartTicks(process.pid);
  return bootId && ticks ? `${process.pid}\nboot_id=${bootId}\nstart_ticks=${ticks}\n` : String(process.pid);
}

interface LockHolder {
  pid: number;
  bootId?: string;
  startTicks?: string;
}

function parseLock(content: string): LockHolder {
  const [first = '', ...rest] = content.trim().split('\n');
  const field = (name: string): string | undefined =>
    rest.find((line) => line.startsWith(`${name}=`))?.slice(name.length + 1).trim() || undefined;
  return { pid: Number(first.trim()), bootId: field('boot_id'), startTicks: field('start_ticks') };
}

/**
 * Whether the process that wrote a lock (or takeover marker) is gone: its pid is ours (a previous
 * run of a container, where every start tends to get the same pid) or not alive; or, when the lock
 * carries an identity and /proc can check it, it was written in another boot or the process now
 * with that pid started at another time (the pid was reused). A lock without the identity (written
 * by an earlier version, or where /proc is missing) is judged by its pid alone.
 */
function holderGone(content: string): boolean {
  const holder = parseLock(content);
  if (holder.pid === process.pid || !pidAlive(holder.pid)) return true;
  if (holder.bootId === undefined || holder.startTicks === undefined) return false;
  const bootId = readBootId();
  if (bootId === undefined) return false;
  if (holder.bootId !== bootId) return true;
  const ticks = readStartTicks(holder.pid);
  return ticks !== undefined && ticks !== holder.startTicks;
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
  const content = lockContent();
  for (let tries = 0; tries < TAKEOVER_TRIES; tries++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, content);
      closeSync(fd);
      heldHere.add(key);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        heldHere.delete(key);
        try {
          if (readFileSync(path, 'utf8') === content) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let seen: string;
      try {
        seen = readFileSync(path, 'utf8');
      } catch {
        continue; // removed between our open and read: try again
      }
      if (!holderGone(seen)) {
        const holder = parseLock(seen).pid;
        const started = startedAt(holder);
        throw new DataDirLockedError(
          `data directory ${resolve(dataDir)} is in use by process ${holder}${started ? ` (started ${started})` : ''}; ` +
            'PGlite allows one process per data directory — stop it, or use DATABASE_URL for several processes; ' +
            `if no taskgate process runs on this directory, remove ${key}`,
        );
      }
      // a stale lock from a process that is gone: removed by one starter at a time, and only if it
      // still is the lock we judged stale — else two starters could each remove the other's new lock
      if (!removeStaleLock(path, seen, content)) sleepSync(TAKEOVER_WAIT_MS);
    }
  }
  throw new DataDirLockedError(
    `could not take the lock on ${resolve(dataDir)}: another start kept taking over its stale lock ` +
      `(if none is running, remove ${resolve(path)}.takeover)`,
  );
}

const TAKEOVER_TRIES = 200;
const TAKEOVER_WAIT_MS = 10;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Removes the lock file at `path` if it still holds `seen`, under a takeover marker created
 * exclusively (`<lock>.takeover`, holding the taker's `content`, as a lock does). False when another
 * starter holds the marker (a marker whose writer is gone is cleared for the next try).
 */
function removeStaleLock(path: string, seen: string, content: string): boolean {
  const marker = `${path}.takeover`;
  let fd: number;
  try {
    fd = openSync(marker, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    try {
      const taker = readFileSync(marker, 'utf8');
      // empty: its writer is between create and write — busy, unless that writer is gone for good
      // (our own pid: a previous run of a container, as for the lock itself — we take no marker twice)
      if (taker.trim() !== '' && holderGone(taker)) unlinkSync(marker);
    } catch {
      /* gone meanwhile */
    }
    return false;
  }
  try {
    writeSync(fd, content);
    closeSync(fd);
    let now: string | undefined;
    try {
      now = readFileSync(path, 'utf8');
    } catch {
      /* removed meanwhile */
    }
    if (now === seen) unlinkSync(path);
    return true;
  } finally {
    try {
      unlinkSync(marker);
    } catch {
      /* already gone */
    }
  }
}

/** OID of timestamptz, the only date/time type in the schema. */
const TIMESTAMPTZ = 1184;

/** PostgreSQL's ISO output of a timestamptz: 5+ digit years, seconds in the offset, ` BC`. */
const PG_TIMESTAMPTZ = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;

/**
 * A timestamptz as PostgreSQL writes it, read as pg does. PGlite's own parser is `new Date(text)`,
 * whose legacy parsing takes years 0–99 as 1900/2000s (`0049-01-01` read back as 2049) and gives
 * up on ` BC` and 5-digit years; the fields are set one by one here (setUTCFullYear keeps 0–99).
 */
export function parseTimestamptz(text: string): Date | number {
  // the usual shape (years 1000–9999, UTC, as the session's TimeZone writes): new Date reads it
  // right, ~4× faster than the fields below (0.8 vs 3.1 µs)
  const c = text.charCodeAt(0);
  if (c >= 49 && c <= 57 && text.charCodeAt(4) === 45 && text.endsWith('+00')) return new Date(text);
  if (text === 'infinity') return Infinity;
  if (text === '-infinity') return -Infinity;
  const m = PG_TIMESTAMPTZ.exec(text);
  if (!m) return new Date(text);
  const year = Number(m[1]);
  const d = new Date(0);
  d.setUTCFullYear(m[12] ? 1 - year : year, Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4]), Number(m[5]), Number(m[6]), m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0);
  const offsetS = Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0);
  return new Date(d.getTime() - (m[8] === '-' ? -1 : 1) * offsetS * 1000);
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * A Date as timestamptz input PostgreSQL accepts for every year a Date can hold, as pg writes it:
 * PGlite's toISOString() writes year 0 as `0000` and years past 9999 as `+010000`, both refused
 * (a 400 on PGlite where PostgreSQL stores them); here 1 BC is `0001 … BC` and 10000 is `10000`.
 */
export function serializeTimestamptz(value: unknown): string {
  if (value === Infinity) return 'infinity';
  if (value === -Infinity) return '-infinity';
  if (typeof value === 'string') return value;
  const d = value instanceof Date ? value : new Date(value as number);
  if (Number.isNaN(d.getTime())) throw new RangeError('Invalid time value');
  const y = d.getUTCFullYear();
  return `${pad(y < 1 ? 1 - y : y, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:` +
    `${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}+00:00${y < 1 ? ' BC' : ''}`;
}

export interface PgliteOptions {
  /** Directory for the database files; undefined for an in-memory database (tests). */
  dataDir?: string;
}

export async function openPglite(options: PgliteOptions = {}): Promise<Db> {
  let release: (() => void) | undefined;
  let pgDir: string | undefined;
  if (options.dataDir) {
    try {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      release = lockDataDir(options.dataDir);
      pgDir = join(options.dataDir, 'pgdata');
      // the database files are readable only by us, whatever the directory around them allows (as
      // PostgreSQL insists on for its data directory): PGlite would create this one 0755
      mkdirSync(pgDir, { recursive: true, mode: 0o700 });
      chmodSync(pgDir, 0o700);
    } catch (err) {
      release?.();
      throw dataDirProblem(options.dataDir, err);
    }
  }
  // PGlite resumes a pgdata that has PG_VERSION and runs initdb into one that has not, as after a
  // first start killed early in initdb (PG_VERSION comes after the subdirectories): a failure there
  // is not a damaged database. (Killed later in initdb, pgdata cannot be resumed: reported as damaged.)
  const existing = pgDir !== undefined && existsSync(join(pgDir, 'PG_VERSION'));
  let db: PGlite;
  try {
    db = await PGlite.create({
      dataDir: pgDir,
      // timestamps read and written as the pg adapter does, so both backends agree on every year
      parsers: { [TIMESTAMPTZ]: parseTimestamptz },
      serializers: { [TIMESTAMPTZ]: serializeTimestamptz },
    });
  } catch (err) {
    release?.();
    if (!options.dataDir || !pgDir) throw err;
    const problem = dataDirProblem(options.dataDir, err);
    if (problem !== err || !existing) throw problem;
    // PGlite says only "PGlite failed to initialize properly" (PostgreSQL's own FATAL is not
    // passed on): a PG_VERSION it does not read or a pg_control whose checksum fails end the same
    throw new DataDirError(
      `data directory ${resolve(options.dataDir)} (TASKGATE_DATA_DIR / --data-dir): the database in ${resolve(pgDir)} could not be opened ` +
        '(damaged, or written by an incompatible PGlite version) — restore it from a backup or move it aside',
      { cause: err },
    );
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
