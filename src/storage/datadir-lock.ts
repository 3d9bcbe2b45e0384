// The data directory's lock: PGlite is single-connection and single-process, so a lock file in the
// data directory makes a second live process refuse to start, while a lock left by a killed
// process (its pid no longer alive, or now another process's: boot id and start time differ) is
// taken over. Also the data directory's one-line start errors.
import { accessSync, closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The data directory cannot be used (not a directory, no permission, locked, a damaged database): a one-line start error. */
export class DataDirError extends Error {
  override name = 'DataDirError';
}

export class DataDirLockedError extends DataDirError {
  override name = 'DataDirLockedError';
}

/** A file-system failure on the data directory, as one line naming the setting. */
export function dataDirProblem(dataDir: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'it, or a path inside it, is a file, not a directory'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EROFS' ? 'read-only file system'
    : code === 'ENOSPC' ? 'no space left on the device'
    : code === 'ENOENT' ? missingAncestor(resolve(dataDir))
    : undefined;
  if (!why) return err;
  return new DataDirError(`data directory ${resolve(dataDir)} (TASKGATE_DATA_DIR / --data-dir) cannot be used: ${why}`, { cause: err });
}

/**
 * Why a directory on `path`'s way could not be made. ENOENT says too little: a component is a
 * symbolic link to nothing, or the nearest existing ancestor refuses directories in it (/proc) or
 * is read-only (Node's recursive mkdir said ENOENT there, measured on Node 20, a tmpfs mounted
 * ro): so the path is walked up to tell.
 */
function missingAncestor(path: string): string {
  for (let dir = path; ; dir = dirname(dir)) {
    let isLink: boolean;
    try {
      isLink = lstatSync(dir).isSymbolicLink();
    } catch {
      if (dir === dirname(dir)) break;
      continue;
    }
    if (isLink) {
      try {
        statSync(dir);
      } catch {
        let target = '?';
        try {
          target = readlinkSync(dir);
        } catch {
          /* gone meanwhile */
        }
        return `${dir} is a symbolic link to ${target}, which does not exist`;
      }
    }
    try {
      accessSync(dir, constants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EROFS') return `${dir} is on a read-only file system`;
      if (code === 'EACCES' || code === 'EPERM') return `permission denied on ${dir}`;
    }
    // a directory we may write to that still refuses entries (ENOENT): /proc and the like
    return `nothing can be created in ${dir} (on a special file system, such as /proc or /sys?)`;
  }
  return 'a directory on its path does not exist and could not be created';
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

/**
 * `mkdir -p` (0700), one level at a time: Node's recursive mkdir never returns under /proc (Node
 * 20: `mkdirSync('/proc/x', { recursive: true })` spins, sync and async alike), since a plain
 * mkdir there fails ENOENT with the parent present and Node retries the parent forever. Here each
 * missing level is made once, at most one try per path component, and its error is thrown.
 */
export function makeDirs(path: string): void {
  const missing: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    try {
      statSync(dir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.push(dir);
    if (dir === dirname(dir)) break;
  }
  // none missing: a file at `path` fails here (EEXIST) as the recursive mkdir did
  if (missing.length === 0) {
    if (!statSync(path).isDirectory()) mkdirSync(path);
    return;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // made meanwhile by another starter: fine; a symbolic link to nothing: stat's ENOENT, which
      // dataDirProblem traces to the link
      if (!statSync(dir).isDirectory()) throw err;
    }
  }
}

/** Creates the data directory (0700) if missing and takes its lock; returns the release. Failures are one line. */
export function claimDataDir(dataDir: string): () => void {
  try {
    makeDirs(dataDir);
    return lockDataDir(dataDir);
  } catch (err) {
    throw dataDirProblem(dataDir, err);
  }
}
