// The embedded database on disk (storage/pglite.ts), in process: what a restart finds, and the
// data directory's lock — one live process per directory, a lock left by a dead one taken over.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLockedError, lockDataDir, openPglite, writeSecretFile } from '../../src/storage/pglite.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'taskgate-pglite-'));

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
    expect(readFileSync(join(dir, 'taskgate.lock'), 'utf8')).toBe(String(process.pid));
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
    expect(() => lockDataDir(dir)).toThrow(new RegExp(`pid ${process.ppid}`));
    writeFileSync(lock, String(deadPid()));
    const release = lockDataDir(dir);
    expect(readFileSync(lock, 'utf8')).toBe(String(process.pid));
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
    expect(readFileSync(lock, 'utf8')).toBe(String(process.pid));
    expect(existsSync(marker)).toBe(false);
    release();
  });

  it('writes secret files readable by the owner only', () => {
    const path = join(fresh(), 'admin.key');
    writeSecretFile(path, 'sk_secret');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toBe('sk_secret');
  });
});
