// `taskgate serve` / `taskgate migrate` with a DATABASE_URL that cannot be used (the built CLI,
// spawned): exit code 1 and one line naming host:port/database and the reason — no stack trace,
// never the password.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, freePort, runServeExpectingExit, spawnCli } from '../helpers/process.js';
import { usingPostgres } from '../helpers/db.js';

function expectOneLine(output: string, line: RegExp): void {
  const lines = output.trim().split('\n');
  expect(lines, output).toHaveLength(1);
  expect(lines[0]).toMatch(line);
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).not.toContain('hunter2');
}

async function runMigrate(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  let output = '';
  const child = spawn(process.execPath, [CLI, 'migrate'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, output };
}

describe('a DATABASE_URL that cannot be used', () => {
  it('a closed port: serve and migrate exit 1 with one line, no stack, no password', async () => {
    const port = await freePort();
    const url = `postgres://app:hunter2@127.0.0.1:${port}/tg`;
    const serve = await runServeExpectingExit(['--port', '0'], { DATABASE_URL: url });
    expect(serve.code).toBe(1);
    expectOneLine(serve.output, new RegExp(`^taskgate: cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port}/tg \\(DATABASE_URL\\): .*ECONNREFUSED`));
    const migrate = await runMigrate({ DATABASE_URL: url });
    expect(migrate.code).toBe(1);
    expectOneLine(migrate.output, new RegExp(`^taskgate: cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port}/tg \\(DATABASE_URL\\): .*ECONNREFUSED`));
  });

  it('a scheme that is not postgres: and a string that is not a URL are refused before connecting', async () => {
    const mysql = await runServeExpectingExit(['--port', '0'], { DATABASE_URL: 'mysql://app:hunter2@127.0.0.1/tg' });
    expect(mysql.code).toBe(1);
    expectOneLine(mysql.output, /^taskgate: database URL \(DATABASE_URL\) has scheme mysql; expected postgres:\/\/ or postgresql:\/\/$/);
    const junk = await runServeExpectingExit(['--port', '0'], { DATABASE_URL: 'host=db user=app password=hunter2' });
    expect(junk.code).toBe(1);
    expectOneLine(junk.output, /^taskgate: database URL \(DATABASE_URL\) is not a valid URL/);
  });

  it.skipIf(!usingPostgres())('a role that does not exist (PostgreSQL)', async () => {
    const url = new URL(process.env.DATABASE_URL!);
    url.username = 'taskgate_no_such_role';
    url.password = 'hunter2';
    const serve = await runServeExpectingExit(['--port', '0'], { DATABASE_URL: url.toString(), TASKGATE_DB_SCHEMA: 'tg_never_created' });
    expect(serve.code).toBe(1);
    expectOneLine(serve.output, /^taskgate: cannot connect to PostgreSQL at .+ \(DATABASE_URL\): .*role "taskgate_no_such_role" does not exist/);
  });
});

describe('a data directory that cannot be used (PGlite)', () => {
  it('a file where the directory should be: exit 1 with one line naming the setting, no stack', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'taskgate-datadir-')), 'not-a-dir');
    writeFileSync(file, 'x');
    // DATABASE_URL emptied: the PostgreSQL pass of the CI sets it for every test
    const serve = await runServeExpectingExit(['--port', '0'], { DATABASE_URL: '', TASKGATE_DATA_DIR: file });
    expect(serve.code).toBe(1);
    expectOneLine(serve.output, /^taskgate: data directory .*not-a-dir \(TASKGATE_DATA_DIR \/ --data-dir\) cannot be used: it, or a path inside it, is a file, not a directory$/);
  });

  // Node 20's recursive mkdir spun forever under /proc (a plain mkdir there fails ENOENT with the
  // parent present, and Node retried the parent): all three hung. 30 s is ~10x a loaded start.
  it.skipIf(process.platform !== 'linux')('under /proc: migrate, serve and restore exit 1 with one line at once, not hang', async () => {
    const archive = join(mkdtempSync(join(tmpdir(), 'taskgate-datadir-')), 'backup.tar.gz');
    writeFileSync(archive, 'x');
    const [migrated, serve, restored] = await Promise.all([
      spawnCli(['migrate', '--data-dir', '/proc/taskgate-x/y']),
      runServeExpectingExit(['--port', '0', '--data-dir', '/proc/taskgate-x'], { DATABASE_URL: '' }),
      spawnCli(['restore', archive, '--data-dir', '/proc/taskgate-x']),
    ]);
    const oneLine = /^taskgate: data directory \/proc\/taskgate-x\S* \(TASKGATE_DATA_DIR \/ --data-dir\) cannot be used: .*\/proc/;
    for (const run of [{ code: migrated.code, output: migrated.out + migrated.err }, serve, { code: restored.code, output: restored.out + restored.err }]) {
      expect(run.code, run.output).toBe(1);
      expectOneLine(run.output, oneLine);
    }
  }, 30_000);
});
