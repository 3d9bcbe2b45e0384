// How `taskgate` reads its command line (cli/args.ts against cli/specs.ts), run in process against a
// real server on a real database: an unknown or misspelt flag and a value flag without its value
// are usage errors (exit 2) that run nothing — `tasks list --key` ran with the admin key, and
// `--stauts FAILED` listed every task; a word a switch cannot take is named as such; switches never
// take the next word; and every flag the README, the docs and the help texts show is one the
// command declares. A server URL without http:// or https:// is a usage error too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliRun } from '../helpers/cli.js';
import { check, scan, type CommandSpec } from '../../src/cli/args.js';
import { ADMIN_HELP, GROUPS, SERVER_COMMANDS, TASKS_HELP, VALUE_FLAGS } from '../../src/cli/specs.js';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, type TestServer } from '../helpers/server.js';
import { gatedDef, gates } from '../streaming/helpers.js';

let tdb: TestDb;
let server: TestServer;
/** A data directory whose admin.key is the server's: what a client finds when --key is left out. */
let dataDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db, {}, { definitions: [gatedDef] });
  dataDir = mkdtempSync(join(tmpdir(), 'taskgate-cli-flags-'));
  writeFileSync(join(dataDir, 'admin.key'), ADMIN_KEY + '\n');
  env = { TASKGATE_URL: server.url, TASKGATE_DATA_DIR: dataDir };
});
afterAll(async () => {
  process.exitCode = undefined;
  await server?.close();
  await tdb?.close();
});

type Ran = CliRun;
const cli = (args: string[], runEnv: Record<string, string> = env): Promise<Ran> => runCli(args, runEnv);

/** The first line of what a usage error printed (the help follows it). */
const firstLine = (r: Ran) => r.err.split('\n')[0];

describe('unknown flags and flags without their value', () => {
  let taskId: string;
  beforeAll(async () => {
    const s = await cli(['tasks', 'submit', '--definition', 'test-gated', '--input', '{"key":"flags-1"}']);
    expect(s.code).toBe(0);
    taskId = s.out;
  });
  afterAll(async () => {
    gates.open('flags-1');
  });

  it('a misspelt or unknown flag is exit 2 naming it (the nearest known one suggested), and nothing is listed', async () => {
    const typo = await cli(['tasks', 'list', '--stauts', 'FAILED', '--limit', '2']);
    expect({ code: typo.code, out: typo.out }).toEqual({ code: 2, out: '' });
    expect(firstLine(typo)).toBe('taskgate: unknown option --stauts for taskgate tasks list (did you mean --status?)');
    expect(typo.err).toContain('Usage: taskgate tasks list');
    const page = await cli(['tasks', 'list', '--page', '2']);
    expect({ code: page.code, out: page.out, first: firstLine(page) }).toEqual({ code: 2, out: '', first: 'taskgate: unknown option --page for taskgate tasks list' });
    // a flag of another subcommand is unknown here too, and a short option other than -h
    for (const args of [['tasks', 'get', taskId, '--status', 'FAILED'], ['tasks', 'pause', taskId, '--force'], ['keys', 'list', '-v'], ['tenants', 'list', '--nmae', 'x']]) {
      const r = await cli(args);
      expect({ args, code: r.code, out: r.out }).toEqual({ args, code: 2, out: '' });
      expect(firstLine(r)).toMatch(/^taskgate: unknown option (--status|--force|-v|--nmae) for taskgate /);
    }
  });

  it('a value flag without its value is exit 2 — --key forgotten does not fall back to <data-dir>/admin.key, --url not to TASKGATE_URL', async () => {
    for (const args of [
      ['tasks', 'list', '--key'],
      ['tasks', 'list', '--key', '--json'],
      ['tasks', 'list', '--key', ''],
      ['tasks', 'list', '--key='],
      ['tasks', 'get', taskId, '--url'],
      ['keys', 'list', '--limit'],
    ]) {
      const r = await cli(args);
      expect({ args, code: r.code, out: r.out }).toEqual({ args, code: 2, out: '' });
      expect(firstLine(r)).toMatch(/^taskgate: --(key|url|limit) needs a value \(--(key KEY|url URL|limit N)\)$/);
    }
    // the same commands with the value run, with the admin key from the data directory
    expect((await cli(['tasks', 'get', taskId, '--url', server.url])).code).toBe(0);
    expect((await cli(['tasks', 'list', '--key', ADMIN_KEY, '--json'])).code).toBe(0);
  });

  it("a word after a switch is an unexpected argument, named, with what is wrong (it was 'put it after the arguments')", async () => {
    const force = await cli(['tasks', 'cancel', taskId, '--force', 'true']);
    expect({ code: force.code, out: force.out }).toEqual({ code: 2, out: '' });
    expect(firstLine(force)).toBe("taskgate: unexpected argument 'true' (taskgate tasks cancel takes only TASK_ID; --force takes no value)");
    const extra = await cli(['tasks', 'list', '--json', 'extra']);
    expect({ code: extra.code, out: extra.out }).toEqual({ code: 2, out: '' });
    expect(firstLine(extra)).toBe("taskgate: unexpected argument 'extra' (taskgate tasks list takes no arguments; --json takes no value)");
    const two = await cli(['tasks', 'get', taskId, 'task_other']);
    expect(firstLine(two)).toBe("taskgate: unexpected argument 'task_other' (taskgate tasks get takes only TASK_ID)");
    const inline = await cli(['tasks', 'cancel', taskId, '--force=true']);
    expect(firstLine(inline)).toBe('taskgate: --force takes no value (got "true")');
    // none of them cancelled the task
    expect(JSON.parse((await cli(['tasks', 'get', taskId, '--json'])).out).status).toMatch(/^(QUEUED|RUNNING)$/);
  });

  it('switches stay switches: --json before the task id does not take it as a value', async () => {
    const r = await cli(['tasks', 'get', '--json', taskId]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).task_id).toBe(taskId);
  });
});

describe('the server URL', () => {
  it('one without http:// or https:// is a one-line usage error (exit 2) saying so, not a TypeError stack', async () => {
    const bare = await cli(['tasks', 'get', 'task_x', '--url', '127.0.0.1:18210', '--key', 'sk_x']);
    expect({ code: bare.code, out: bare.out }).toEqual({ code: 2, out: '' });
    expect(bare.err).toBe("taskgate: --url 127.0.0.1:18210: the server's URL needs http:// or https://, e.g. http://127.0.0.1:18210");
    const fromEnv = await cli(['keys', 'list'], { TASKGATE_URL: 'localhost:8080', TASKGATE_API_KEY: 'sk_x' });
    expect(fromEnv.code).toBe(2);
    expect(firstLine(fromEnv)).toBe("taskgate: TASKGATE_URL localhost:8080: the server's URL needs http:// or https://, e.g. http://localhost:8080");
    const other = await cli(['tasks', 'list', '--url', 'ftp://me:s3cret@example.com']);
    expect(other.code).toBe(2);
    expect(firstLine(other)).toBe("taskgate: --url ftp://…@example.com: the server's URL needs http:// or https://, e.g. http://127.0.0.1:8080");
    // the SDK's other refusals are usage errors too, the password never shown
    const creds = await cli(['tasks', 'list', '--url', 'http://me:s3cret@127.0.0.1:1', '--key', 'sk_x']);
    expect(creds.code).toBe(2);
    expect(firstLine(creds)).toBe('taskgate: --url http://…@127.0.0.1:1: must not carry credentials (pass the API key on its own)');
    expect((await cli(['tasks', 'list', '--url', `${server.url}/`, '--json'])).code).toBe(0);
  });
});

/** `taskgate …` lines of a text: the words after `taskgate`, with `# comments`, quotes and [optional] brackets taken off. */
function commandLines(text: string): string[][] {
  const lines: string[][] = [];
  for (const raw of text.split('\n')) {
    const at = raw.search(/(^|\s)taskgate (serve|worker|migrate|prune|tenants|keys|tasks)\b/);
    if (at < 0) continue;
    // to a comment, the end of inline code, or a help text's note (three spaces on)
    const line = raw.slice(at).replace(/\s#\s.*$/, '').replace(/`.*$/, '').replace(/\s{3,}\S.*$/, '');
    const words = [...line.replace(/[[\]]/g, '').matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
    lines.push(words.slice(words.indexOf('taskgate') + 1));
  }
  return lines;
}

function specOf(words: string[]): CommandSpec[] {
  const top = SERVER_COMMANDS[words[0]!];
  if (top) return [top];
  const group = GROUPS[words[0]!]!;
  return words[1]!.split('|').map((sub) => group.commands[sub]!);
}

describe('every documented flag is declared', () => {
  const root = new URL('../../', import.meta.url);
  const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

  it('the README and docs/security.md examples read without a usage error', () => {
    const examples = [...commandLines(read('README.md')), ...commandLines(read('docs/security.md'))];
    expect(examples.length).toBeGreaterThan(12);
    for (const words of examples) {
      const [spec] = specOf(words);
      expect(spec, words.join(' ')).toBeDefined();
      const scanned = scan(words, VALUE_FLAGS);
      expect(() => check(spec!, scanned, spec!.name.split(' ').length), words.join(' ')).not.toThrow();
    }
  });

  it('each flag the help texts and docs/configuration.md name is one its command declares', () => {
    for (const words of commandLines(`${ADMIN_HELP}\n${TASKS_HELP}`)) {
      for (const spec of specOf(words)) {
        expect(spec, words.join(' ')).toBeDefined();
        const text = words.join(' ').replace(spec.name === 'tasks cancel' ? '' : /--force \(cancel only\)/, '');
        for (const flag of text.matchAll(/--([a-z][a-z-]*)/g)) expect(Object.keys(spec.flags), `${spec.name}: ${flag[0]}`).toContain(flag[1]);
      }
    }
    const config = read('docs/configuration.md');
    const processFlags = [...config.split('## Engine')[0]!.matchAll(/\| `--([a-z-]+)` \|/g)].map((m) => m[1]);
    expect(processFlags).toEqual(expect.arrayContaining(['port', 'host', 'role', 'concurrency', 'data-dir', 'database-url', 'tasks-dir']));
    for (const flag of [...processFlags, 'no-auth']) expect(Object.keys(SERVER_COMMANDS.serve!.flags)).toContain(flag);
    const clientFlags = [...config.split('Client commands')[1]!.split('##')[0]!.matchAll(/\| `--([a-z-]+)` \|/g)].map((m) => m[1]!);
    expect(clientFlags).toEqual(['url', 'key', 'data-dir']);
    for (const group of Object.values(GROUPS)) {
      for (const spec of Object.values(group.commands)) for (const flag of [...clientFlags, 'json']) expect(Object.keys(spec.flags), spec.name).toContain(flag);
    }
  });

  it('a flag is a switch in every command or takes a value in every command (the line is split before the command is known)', () => {
    const kinds = new Map<string, Set<boolean>>();
    const all = [...Object.values(SERVER_COMMANDS), ...Object.values(GROUPS).flatMap((g) => Object.values(g.commands))];
    for (const spec of all) for (const [name, f] of Object.entries(spec.flags)) kinds.set(name, (kinds.get(name) ?? new Set()).add(f.value !== undefined));
    expect([...kinds].filter(([, k]) => k.size > 1).map(([name]) => name)).toEqual([]);
  });
});
