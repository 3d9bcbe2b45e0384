// The embedded database on disk (storage/pglite.ts), in process: what a restart finds, and the
// data directory's lock — one live process per directory, a lock left by a dead one taken over.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirError, DataDirLockedError, lockDataDir, openPglite, unopenable, writeSecretFile } from '../../src/storage/pglite.js';
import { CLI, runServeExpectingExit } from '../helpers/process.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'taskgate-pglite-'));

/** The pid a lock file names (its first line). */
const lockPid = (path: string): number => Number(readFileSync(path, 'utf8').split('\n')[0]);

const hasProc = existsSync('/proc/self/stat') && existsSync('/proc/sys/kernel/random/boot_id');
const bootId = (): string => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
/** Field 22 of /proc/<pid>/stat: the process's start time in clock ticks since boot. */
const startTicks = (pid: number): string => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
};

/** A pid that was alive a moment ago and is not now. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('PGlite data directory', () => {
  it('keeps the database files private in a directory the operator made readable', async () => {
    // PostgreSQL refuses a data directory others can read; PGlite would create one 0755
    const dir = fresh();
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'pgdata'), { mode: 0o755 });
    const db = await openPglite({ dataDir: dir });
    try {
      expect(statSync(join(dir, 'pgdata')).mode & 0o777).toBe(0o700);
    } finally {
      await db.close();
    }
    const other = join(fresh(), 'made-by-us');
    await (await openPglite({ dataDir: other })).close();
    expect(statSync(join(other, 'pgdata')).mode & 0o777).toBe(0o700);
  });

  it('keeps committed rows across a close and a reopen; the directory and its lock are private', async () => {
    const dir = join(fresh(), 'data');
    const db = await openPglite({ dataDir: dir });
    await db.exec('CREATE TABLE kept (v text)');
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO kept VALUES ($1)', ['committed']);
    });
    await expect(db.transaction(async (tx) => {
      await tx.query('INSERT INTO kept VALUES ($1)', ['rolled back']);
      throw new Error('abort');
    })).rejects.toThrow('abort');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'taskgate.lock')).mode & 0o777).toBe(0o600);
    expect(lockPid(join(dir, 'taskgate.lock'))).toBe(process.pid);
    // a second opener in a live process is refused while the first holds the directory
    await expect(openPglite({ dataDir: dir })).rejects.toBeInstanceOf(DataDirLockedError);
    await db.close();
    expect(existsSync(join(dir, 'taskgate.lock'))).toBe(false);

    const again = await openPglite({ dataDir: dir });
    try {
      expect((await again.query<{ v: string }>('SELECT v FROM kept')).rows).toEqual([{ v: 'committed' }]);
    } finally {
      await again.close();
    }
  });

  it('refuses a directory locked by a live process and takes over the lock of a dead one', () => {
    const dir = fresh();
    const lock = join(dir, 'taskgate.lock');
    // the parent of this test process is alive (and is not us)
    writeFileSync(lock, String(process.ppid));
    expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
    // the message names the holder and the lock file, so an operator can tell a stale lock
    expect(() => lockDataDir(dir)).toThrow(`in use by process ${process.ppid}`);
    expect(() => lockDataDir(dir)).toThrow(`if no taskgate process runs on this directory, remove ${lock}`);
    writeFileSync(lock, String(deadPid()));
    const release = lockDataDir(dir);
    expect(lockPid(lock)).toBe(process.pid);
    release();
    expect(existsSync(lock)).toBe(false);
    // a lock naming this very pid that this process does not hold: the previous run of a container
    // (same pid every start) — stale; while held here, the same directory is refused
    writeFileSync(lock, String(process.pid));
    const mine = lockDataDir(dir);
    expect(() => lockDataDir(dir)).toThrow(/already open in this process/);
    mine();
    // garbage in the lock file is no holder either
    writeFileSync(lock, 'not a pid');
    const release2 = lockDataDir(dir);
    // a release does not remove a lock someone else has taken since
    writeFileSync(lock, String(process.ppid));
    release2();
    expect(readFileSync(lock, 'utf8')).toBe(String(process.ppid));
  });

  it('takes over a stale lock only under the takeover marker: never while another starter holds it, and clears a dead one', () => {
    const dir = fresh();
    const lock = join(dir, 'taskgate.lock');
    const marker = `${lock}.takeover`;
    const dead = String(deadPid());
    writeFileSync(lock, dead);
    // a live starter is taking it over: waiting for it, not removing the lock it may have just written
    writeFileSync(marker, String(process.ppid));
    expect(() => lockDataDir(dir)).toThrow(/another start kept taking over its stale lock/);
    expect(readFileSync(lock, 'utf8')).toBe(dead);
    // that starter died mid-takeover: its marker is cleared and the stale lock taken over
    writeFileSync(marker, String(deadPid()));
    const release = lockDataDir(dir);
    expect(lockPid(lock)).toBe(process.pid);
    expect(existsSync(marker)).toBe(false);
    release();
  });

  it.skipIf(!hasProc)('records boot id and start time in the lock: a live pid that is not the writer (pid reuse, a reboot) is no holder', async () => {
    const dir = fresh();
    const lock = join(dir, 'taskgate.lock');
    const release = lockDataDir(dir);
    expect(readFileSync(lock, 'utf8')).toBe(`${process.pid}\nboot_id=${bootId()}\nstart_ticks=${startTicks(process.pid)}\n`);
    expect(statSync(lock).mode & 0o777).toBe(0o600);
    release();
    expect(existsSync(lock)).toBe(false);

    // an unrelated live process got the pid of a killed server (after a reboot or a pid wrap)
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const pid = other.pid!;
      const started = Number(startTicks(pid));
      // the process that wrote the lock with that pid started at another time: stale, taken over
      writeFileSync(lock, `${pid}\nboot_id=${bootId()}\nstart_ticks=${started - 1}\n`);
      const taken = lockDataDir(dir);
      expect(lockPid(lock)).toBe(process.pid);
      taken();
      // the very process that wrote it: live, refused, naming it, its start and the lock file
      writeFileSync(lock, `${pid}\nboot_id=${bootId()}\nstart_ticks=${started}\n`);
      expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
      expect(() => lockDataDir(dir)).toThrow(new RegExp(`in use by process ${pid} \\(started \\d{4}-\\d\\d-\\d\\dT.*\\); .*remove ${lock}$`));
      // written in an earlier boot: stale whoever holds the pid now
      writeFileSync(lock, `${pid}\nboot_id=00000000-0000-4000-8000-000000000000\nstart_ticks=${started}\n`);
      lockDataDir(dir)();
    } finally {
      other.kill('SIGKILL');
    }
    // our own pid from an earlier boot, and a live one (our parent) from an earlier boot
    writeFileSync(lock, `${process.pid}\nboot_id=00000000-0000-4000-8000-000000000000\nstart_ticks=1\n`);
    lockDataDir(dir)();
    writeFileSync(lock, `${process.ppid}\nboot_id=00000000-0000-4000-8000-000000000000\nstart_ticks=${startTicks(process.ppid)}\n`);
    lockDataDir(dir)();
    // a lock without the identity (an earlier version's, still running): its pid alone decides
    writeFileSync(lock, `${process.ppid}\n`);
    expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
  });

  it('a damaged database is one DataDirError naming the directory (CLI: one line, exit 1); a first start killed in initdb is initialised again', async () => {
    const dir = fresh();
    // what a first start killed during initdb leaves: part of pgdata, without PG_VERSION (written
    // after the subdirectories) — PGlite takes it as no database and runs initdb again
    mkdirSync(join(dir, 'pgdata', 'base'), { recursive: true });
    mkdirSync(join(dir, 'pgdata', 'global'));
    const db = await openPglite({ dataDir: dir });
    await db.exec('CREATE TABLE kept (v text)');
    await db.close();
    const damaged = (dataDir: string) =>
      `data directory ${dataDir} (TASKGATE_DATA_DIR / --data-dir): the database in ${join(dataDir, 'pgdata')} could not be opened — ` +
      'if its disk is full, free some space and start again; otherwise it is damaged or written by an incompatible PGlite version: restore it from a backup or move it aside';
    // on a disk with (almost) no room left, that is what it says: its data is intact, not to be restored over
    expect(unopenable('/d', '/d/pgdata', 12)).toBe('data directory /d (TASKGATE_DATA_DIR / --data-dir): the database in /d/pgdata could not be opened — ' +
      'its disk has 12 MiB free, too little to open it: free some space and start again (the data is most likely intact; do not restore over it)');

    // a PG_VERSION this PostgreSQL does not read
    const versioned = fresh();
    cpSync(dir, versioned, { recursive: true });
    writeFileSync(join(versioned, 'pgdata', 'PG_VERSION'), '99\n');
    const err: unknown = await openPglite({ dataDir: versioned }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DataDirError);
    expect((err as Error).message).toBe(damaged(versioned));
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect(existsSync(join(versioned, 'taskgate.lock'))).toBe(false);

    // bytes overwritten at the start of pg_control
    const controlled = fresh();
    cpSync(dir, controlled, { recursive: true });
    const fd = openSync(join(controlled, 'pgdata', 'global', 'pg_control'), 'r+');
    writeSync(fd, Buffer.alloc(64, 0xab), 0, 64, 0);
    closeSync(fd);
    await expect(openPglite({ dataDir: controlled })).rejects.toThrow(damaged(controlled));

    // the built CLI: one line, no stack (DATABASE_URL emptied: the PostgreSQL pass of the CI sets it)
    const serve = await runServeExpectingExit(['--port', '0'], { DATABASE_URL: '', TASKGATE_DATA_DIR: versioned });
    expect(serve.code).toBe(1);
    expect(serve.output).toBe(`taskgate: ${damaged(versioned)}\n`);

    // a database that lost PG_VERSION (a partial copy or restore): refused, not initialised again
    // over its data (initdb ran there and the tasks were gone)
    const unversioned = fresh();
    cpSync(dir, unversioned, { recursive: true });
    rmSync(join(unversioned, 'pgdata', 'PG_VERSION'));
    const lost: unknown = await openPglite({ dataDir: unversioned }).then(() => undefined, (e: unknown) => e);
    expect(lost).toBeInstanceOf(DataDirError);
    expect((lost as Error).message).toContain('has no PG_VERSION');
    expect(existsSync(join(unversioned, 'taskgate.lock'))).toBe(false);
    writeFileSync(join(unversioned, 'pgdata', 'PG_VERSION'), readFileSync(join(dir, 'pgdata', 'PG_VERSION')));
    const back = await openPglite({ dataDir: unversioned });
    expect((await back.query('SELECT count(*)::int AS n FROM kept')).rows).toEqual([{ n: 0 }]);
    await back.close();
  });

  it('a first start killed while its database is being made leaves a directory the next start opens', async () => {
    // (pgdata with pg_control and no PG_VERSION was refused as damaged by every later start)
    for (const entries of [4, 8, 12]) {
      const dir = fresh();
      const child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], { env: { ...process.env, DATABASE_URL: '', TASKGATE_DATA_DIR: dir, LOG_LEVEL: 'warn' }, stdio: 'ignore' });
      const exited = new Promise((r) => child.on('exit', r));
      const count = (d: string) => (existsSync(d) ? readdirSync(d).length : 0);
      while (count(join(dir, 'pgdata')) + count(join(dir, 'pgdata.initialising')) < entries && child.exitCode === null) await new Promise((r) => setTimeout(r, 2));
      child.kill('SIGKILL');
      await exited;
      const db = await openPglite({ dataDir: dir });
      expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await db.close();
      expect(existsSync(join(dir, 'pgdata', 'PG_VERSION'))).toBe(true);
      expect(existsSync(join(dir, 'pgdata.initialising'))).toBe(false);
    }
  }, 120_000);

  it('writes secret files readable by the owner only', () => {
    const path = join(fresh(), 'admin.key');
    writeSecretFile(path, 'sk_secret');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toBe('sk_secret');
  });
});
