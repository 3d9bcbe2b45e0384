// How `taskgate restore` (and the data directory's creation) fails, on the real process from dist/:
// a damaged archive, a full disk, a data directory under a dangling symbolic link are each one line
// on stderr and exit 1, never a stack; the next step's hint is a command a shell can run as printed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../helpers/process.js';
import { describeError, fsErrorCode } from '../../src/storage/restore-archive.js';

/** Exit 1 and one line on stderr: no stack, no zlib error code. */
function expectOneLine(r: { code: number | null; err: string }): void {
  expect(r.code, r.err).toBe(1);
  expect(r.err.trimEnd().split('\n'), r.err).toHaveLength(1);
  expect(r.err).not.toContain('    at ');
  expect(r.err).not.toContain('Z_DATA_ERROR');
}

const work = mkdtempSync(join(tmpdir(), 'taskgate-restore-'));
let backup: string;

beforeAll(async () => {
  // a Taskgate-shaped backup, as the server's dumpDataDir writes it: enough for restore's check
  const db = await PGlite.create();
  await db.exec('CREATE TABLE taskgate_migrations (version int); INSERT INTO taskgate_migrations VALUES (7)');
  backup = join(work, 'backup.tar.gz');
  writeFileSync(backup, Buffer.from(await (await db.dumpDataDir('gzip')).arrayBuffer()));
  await db.close();
}, 120_000);

describe('restore: a damaged archive', () => {
  it('a truncated and a byte-flipped gzip are refused as damaged, in one line', async () => {
    const whole = readFileSync(backup);
    const truncated = join(work, 'truncated.tar.gz');
    writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    const flipped = join(work, 'flipped.tar.gz');
    const copy = Buffer.from(whole);
    copy[Math.floor(copy.length / 2)]! ^= 0xff;
    writeFileSync(flipped, copy);
    for (const file of [truncated, flipped]) {
      const r = await spawnCli(['restore', file, '--data-dir', join(work, `into-${basename(file)}`)]);
      expectOneLine(r);
      expect(r.err).toMatch(new RegExp(`^taskgate: ${file} is damaged: `));
    }
  });

  it('a tar whose second header is damaged: PGlite retries it as gzip, and that zlib error is still one line', async () => {
    const src = join(work, 'tar-src');
    mkdirSync(src);
    writeFileSync(join(src, 'PG_VERSION'), '17\n');
    writeFileSync(join(src, 'b'), 'b\n');
    expect(spawnSync('tar', ['--format=ustar', '-cf', join(work, 'two.tar'), '-C', src, 'PG_VERSION', 'b']).status).toBe(0);
    const tar = readFileSync(join(work, 'two.tar'));
    tar.write('XXXXX', 512 + 512 + 257, 'latin1'); // the second header's "ustar"
    writeFileSync(join(work, 'bad.tar'), tar);
    const r = await spawnCli(['restore', join(work, 'bad.tar'), '--data-dir', join(work, 'into-bad-tar')]);
    expectOneLine(r);
    expect(r.err).toMatch(/could not be restored/);
  });

  it('a file that is neither gzip nor tar is refused before any pgdata is made', async () => {
    const junk = join(work, 'junk.bin');
    writeFileSync(junk, gzipSync('x').subarray(2)); // not even the gzip magic
    const r = await spawnCli(['restore', junk, '--data-dir', join(work, 'into-junk')]);
    expectOneLine(r);
    expect(r.err).toBe(`taskgate: ${junk} is neither a gzip file nor a tar archive\n`);
    expect(existsSync(join(work, 'into-junk', 'pgdata'))).toBe(false);
  });
});

describe('restore: where it lands', () => {
  it('the Next: hint shell-quotes a data directory with a space', async () => {
    const target = join(work, 'with space', 'd');
    const r = await spawnCli(['restore', backup, '--data-dir', target]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`Next: taskgate serve --data-dir '${target}'.`);
  });

  it('a data directory under a dangling symbolic link: restore and migrate say so in one line', async () => {
    const link = join(work, 'dangling');
    symlinkSync('/nonexistent/taskgate-x', link);
    for (const args of [['restore', backup, '--data-dir', link], ['migrate', '--data-dir', join(link, 'sub')]]) {
      const r = await spawnCli(args);
      expectOneLine(r);
      expect(r.err).toContain(`cannot be used: ${link} is a symbolic link to /nonexistent/taskgate-x, which does not exist`);
    }
  });

  describe('on a full disk (a 3 MB tmpfs; root only)', () => {
    const mnt = join(work, 'small');
    let mounted = false;
    beforeAll(() => {
      if (process.getuid?.() !== 0) return;
      mkdirSync(mnt);
      mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]).status === 0;
    });
    afterAll(() => {
      if (mounted) spawnSync('umount', [mnt]);
    });

    it('says no space left on the device, not that the archive is at fault', async (ctx) => {
      if (!mounted) ctx.skip();
      const r = await spawnCli(['restore', backup, '--data-dir', join(mnt, 'r')]);
      expectOneLine(r);
      expect(r.err).toMatch(/could not be restored into .*: no space left on the device \(the archive is not at fault/);
      expect(r.err).not.toContain('[object Object]');
    });
  });
});

describe('restore: a failure that is not an Error', () => {
  it("PGlite's file-system error ({ name: 'ErrnoError', errno }: WASI numbers) is read by its fields", () => {
    expect(fsErrorCode({ name: 'ErrnoError', errno: 51 })).toBe('ENOSPC');
    expect(fsErrorCode({ name: 'ErrnoError', errno: 69 })).toBe('EROFS');
    expect(fsErrorCode(Object.assign(new Error('x'), { code: 'ENOSPC' }))).toBe('ENOSPC');
    expect(describeError({ name: 'ErrnoError', errno: 51 })).toBe('ErrnoError ENOSPC (errno 51)');
    expect(describeError({ code: 'X1', message: 'went wrong' })).toBe('error X1: went wrong');
    expect(describeError(new Error('plain'))).toBe('plain');
    expect(describeError('text')).toBe('text');
  });
});
