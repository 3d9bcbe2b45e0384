// `--help` / `-h` anywhere on a `taskgate` line prints that command's help, exit 0, and runs nothing:
// `serve --help` started a server (a new data directory, a new admin key), `migrate --help` migrated,
// `tasks list --help` listed. Every command and command group has help; a bare group lists its
// commands. The built CLI is spawned where running the command would have side effects outside
// the test; the rest runs in process against a real server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { GROUPS } from '../../src/cli/specs.js';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, type TestServer } from '../helpers/server.js';
import { CLI, freePort } from '../helpers/process.js';

/** Runs the built CLI in `cwd`; a run still going after `guardMs` (a server that started) is killed and reported as code null. */
async function spawnCli(args: string[], cwd: string, env: Record<string, string>, guardMs = 20_000): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const guard = setTimeout(() => child.kill('SIGKILL'), guardMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(guard);
  return { code, out, err };
}

describe('--help runs nothing', () => {
  it('serve, worker, migrate, prune, backup and restore print their help and exit 0: no data directory, no admin key, no server, no file', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'taskgate-help-'));
    const env = { TASKGATE_DATA_DIR: join(cwd, 'data'), PORT: String(await freePort()) };
    const runs = await Promise.all([
      spawnCli(['serve', '--help'], cwd, env),
      spawnCli(['serve', '--port', '0', '-h'], cwd, env),
      spawnCli(['worker', '--concurrency', '2', '--help'], cwd, env),
      spawnCli(['migrate', '--help'], cwd, env),
      spawnCli(['prune', '--older-than', '1d', '--help'], cwd, env),
      spawnCli(['backup', '--out', 'x.tar.gz', '--help'], cwd, env),
      spawnCli(['restore', 'x.tar.gz', '-h'], cwd, env),
    ]);
    const names = ['serve', 'serve', 'worker', 'migrate', 'prune', 'backup', 'restore'];
    runs.forEach((r, i) => {
      expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
      expect(r.out).toMatch(new RegExp(`^Usage: taskgate ${names[i]} `));
      expect(r.out).not.toMatch(/\bsk_\w|listening/);
    });
    expect(readdirSync(cwd)).toEqual([]);
    expect(existsSync(env.TASKGATE_DATA_DIR)).toBe(false);
  });

  it('an unknown flag or a value flag without its value on serve is exit 2 before anything starts', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'taskgate-help-'));
    const env = { TASKGATE_DATA_DIR: join(cwd, 'data'), PORT: String(await freePort()) };
    const [typo, bare] = await Promise.all([spawnCli(['serve', '--prot', '9000'], cwd, env), spawnCli(['serve', '--port'], cwd, env)]);
    expect(typo.code).toBe(2);
    expect(typo.err.split('\n')[0]).toBe('taskgate: unknown option --prot for taskgate serve (did you mean --port?)');
    expect(bare.code).toBe(2);
    expect(bare.err.split('\n')[0]).toBe('taskgate: --port needs a value (--port N)');
    expect(readdirSync(cwd)).toEqual([]);
  });
});

let tdb: TestDb;
let server: TestServer;
let env: Record<string, string>;

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db);
  env = { TASKGATE_URL: server.url, TASKGATE_API_KEY: ADMIN_KEY };
});
afterAll(async () => {
  process.exitCode = undefined;
  await server?.close();
  await tdb?.close();
});

const cli = (args: string[]) => runCli(args, env);

describe('help for every command and group', () => {
  it('each client subcommand answers --help and -h with its own usage and options, running nothing', async () => {
    const before = await cli(['tasks', 'list', '--json']);
    const count = JSON.parse(before.out).total_count;
    for (const [group, { commands }] of Object.entries(GROUPS)) {
      for (const [sub, spec] of Object.entries(commands)) {
        for (const args of [[group, sub, '--help'], [group, sub, '-h'], ['help', group, sub]]) {
          const r = await cli(args);
          expect({ args, code: r.code, err: r.err }).toEqual({ args, code: 0, err: '' });
          expect(r.out).toMatch(new RegExp(`^Usage: taskgate ${group} ${sub}\\b`));
          for (const flag of Object.keys(spec.flags)) expect(r.out).toContain(`--${flag}`);
          expect(r.out).toContain('-h, --help');
        }
      }
    }
    // what used to run, or fail for a missing option, instead of helping
    for (const args of [['tasks', 'submit', '--help'], ['tasks', 'get', '--help'], ['tasks', 'submit', '--definition', 'noop', '--wait', '-h'], ['keys', 'create', '--name', 'x', '--help']]) {
      const r = await cli(args);
      expect({ args, code: r.code }).toEqual({ args, code: 0 });
    }
    expect(JSON.parse((await cli(['tasks', 'list', '--json'])).out).total_count).toBe(count);
    expect(JSON.parse((await cli(['keys', 'list', '--json'])).out).api_keys.map((k: { name: string }) => k.name)).not.toContain('x');
  });

  it('a group with --help, -h or help lists its commands (exit 0); bare, it lists them as a usage error (exit 2)', async () => {
    for (const group of ['tasks', 'keys', 'tenants']) {
      for (const args of [[group, '--help'], [group, '-h'], [group, 'help'], ['help', group]]) {
        const r = await cli(args);
        expect({ args, code: r.code, err: r.err }).toEqual({ args, code: 0, err: '' });
        for (const sub of Object.keys(GROUPS[group]!.commands)) expect(r.out).toMatch(new RegExp(`taskgate ${group} (\\S+\\|)?${sub}\\b`));
        expect(r.out).toContain(`taskgate ${group} COMMAND --help`);
      }
      const bare = await cli([group]);
      expect(bare.code).toBe(2);
      expect(bare.err).toMatch(new RegExp(`^taskgate: taskgate ${group} needs a command\\n\\n`));
      expect(bare.err).toContain(`taskgate ${group} list`);
      const unknown = await cli([group, 'frobnicate', '--help']);
      expect(unknown.code).toBe(2);
      expect(unknown.err.split('\n')[0]).toBe(`taskgate: unknown command: ${group} frobnicate`);
    }
  });

  it('taskgate -h, --help and help print the whole help: the worker alias, --data-dir for client commands, help per command', async () => {
    const whole = await cli(['help']);
    expect(whole.code).toBe(0);
    for (const args of [['-h'], ['--help'], []]) expect(await cli(args)).toEqual({ code: 0, out: whole.out, err: '' });
    expect(whole.out).toContain('taskgate worker');
    expect(whole.out).toContain('taskgate backup --out FILE');
    expect(whole.out).toContain('taskgate restore FILE [--data-dir DIR]');
    expect(whole.out).toMatch(/Client commands[\s\S]*--data-dir DIR \(TASKGATE_DATA_DIR/);
    expect(whole.out).toContain('taskgate COMMAND --help');
    expect((await cli(['help', 'serve'])).out).toMatch(/^Usage: taskgate serve /);
    expect((await cli(['version', '--help'])).out).toMatch(/^Usage: taskgate version/);
    const stray = await cli(['help', 'serve', 'now']);
    expect(stray.code).toBe(2);
    expect(stray.err.split('\n')[0]).toBe("taskgate: unexpected argument 'now'");
    const unknown = await cli(['help', 'frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.err.split('\n')[0]).toBe('taskgate: unknown command: frobnicate');
  });
});
