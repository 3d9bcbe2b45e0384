// `taskgate tasks …` run in process (cli/commands.ts run() with an injected io) against a real
// server on a real database: submit (plain, --json, --wait, --follow, @file input), get, list,
// events, watch, wait with its exit codes, control, an interrupt through io.signal, and the
// failures (usage: exit 2 with the help; an API error: exit 1 with its code).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/commands.js';
import type { TaskDefinition } from '../../src/executors/types.js';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, until, type TestServer } from '../helpers/server.js';
import { failingDef, gatedDef, gates, progressDef } from '../streaming/helpers.js';
import { startFakeOpenAi, type FakeOpenAi } from '../helpers/fake-llm/index.js';

/** An event with a payload and no message. */
const noteDef: TaskDefinition = {
  id: 'cli-note', name: 'note', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  async handler(_input, ctx) {
    await ctx.emit({ type: 'WARNING', payload: { low: 1 } });
    return { ok: true };
  },
};

let tdb: TestDb;
let oai: FakeOpenAi;
let server: TestServer;
let env: Record<string, string>;

beforeAll(async () => {
  tdb = await openTestDb();
  oai = await startFakeOpenAi();
  const llm = { OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: oai.baseUrl };
  server = await startTestServer(tdb.db, llm, { definitions: [progressDef, failingDef, gatedDef, noteDef] });
  env = { TASKGATE_URL: server.url, TASKGATE_API_KEY: ADMIN_KEY };
});
afterAll(async () => {
  process.exitCode = undefined;
  await server?.close();
  await oai?.stop();
  await tdb?.close();
});

interface Ran {
  code: number;
  out: string[];
  err: string[];
}

/** `taskgate tasks …args`; `out` fills as the command prints (for a test that watches it run). */
function tasks(args: string[], opts: { signal?: AbortSignal; env?: Record<string, string> } = {}): Promise<Ran> & { out: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const done = run(['tasks', ...args], { out: (t) => void out.push(...t.split('\n')), err: (t) => void err.push(t), env: opts.env ?? env, signal: opts.signal }).then(() => {
    const code = Number(process.exitCode ?? 0);
    process.exitCode = undefined;
    return { code, out, err };
  });
  return Object.assign(done, { out });
}

const idIn = (line: string) => /task_\w+/.exec(line)![0];

/** The lines of `seq  TYPE  message` output as [seq, type]. */
const seqTypes = (lines: string[]) => lines.map((l) => /^(\d+) {2}(\S+)/.exec(l)).filter((m) => m !== null).map((m) => [Number(m![1]), m![2]] as const);

describe('taskgate tasks: submit', () => {
  it('prints the task id (a note on stderr), or the API answer with --json; get shows a summary, or the view; the same --idempotency-key gives the same task', async () => {
    const s = await tasks(['submit', '--definition', 'test-progress', '--input', '{"count":2,"key":"cli-basic"}', '--idempotency-key', 'cli-k1']);
    expect(s.code).toBe(0);
    expect(s.out).toEqual([expect.stringMatching(/^task_\w+$/)]);
    const id = s.out[0]!;
    expect(s.err).toEqual([`Submitted test-progress task ${id} (QUEUED).`]);
    const again = await tasks(['submit', '--definition', 'test-progress', '--input', '{"count":2,"key":"cli-basic"}', '--idempotency-key', 'cli-k1', '--json']);
    expect(JSON.parse(again.out.join('\n'))).toMatchObject({ task_id: id, workflow_id: id, replayed: true });
    expect((await tasks(['wait', id])).code).toBe(0);
    // a replay says so, with the task's status now rather than the first answer's QUEUED
    const replay = await tasks(['submit', '--definition', 'test-progress', '--input', '{"count":2,"key":"cli-basic"}', '--idempotency-key', 'cli-k1']);
    expect(replay.out).toEqual([id]);
    expect(replay.err).toEqual([`Already submitted with this idempotency key: test-progress task ${id} (now COMPLETED).`]);

    const g = await tasks(['get', id]);
    expect(g.code).toBe(0);
    const text = g.out.join('\n');
    expect(text).toMatch(new RegExp(`^task_id +${id}$`, 'm'));
    expect(text).toMatch(/^status +COMPLETED$/m);
    expect(text).toMatch(/^definition +test-progress$/m);
    expect(text).toMatch(/^input +\{.*"count":2.*\}$/m);
    expect(text).toMatch(/^attempts +1 of \d+$/m);
    expect(text).toMatch(/^completed_at +\d{4}-/m);
    expect(text).toMatch(/^output +\{\n +"count": 2\n +\}$/m);
    const gj = await tasks(['get', id, '--json']);
    expect(JSON.parse(gj.out.join('\n'))).toMatchObject({ task_id: id, status: 'COMPLETED', output: { count: 2 } });

    const j = await tasks(['submit', '--definition', 'test-progress', '--input', '{"count":0,"key":"cli-json"}', '--priority', 'high', '--json']);
    expect(j.code).toBe(0);
    expect(j.err).toEqual([]);
    expect(JSON.parse(j.out.join('\n'))).toMatchObject({ task_id: expect.stringMatching(/^task_/), status: 'QUEUED' });
  });

  it('--wait prints the final status and output: exit 0 when COMPLETED, 1 with the error when FAILED; --input @file reads the file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'taskgate-cli-')), 'input.json');
    // as a Windows editor saves it: with a byte-order mark
    writeFileSync(file, '\uFEFF' + JSON.stringify({ count: 1, key: 'cli-file' }));
    const ok = await tasks(['submit', '--definition', 'test-progress', '--input', `@${file}`, '--wait']);
    expect(ok.code).toBe(0);
    expect(ok.out[0]).toMatch(/^COMPLETED task_\w+$/);
    expect(JSON.parse(ok.out.slice(1).join('\n'))).toEqual({ count: 1 });
    expect(ok.err[0]).toMatch(/^Submitted test-progress task task_\w+; waiting for its end/);

    const failed = await tasks(['submit', '--definition', 'test-fail', '--wait']);
    expect(failed.code).toBe(1);
    expect(failed.out).toEqual([expect.stringMatching(/^FAILED task_\w+: .*it broke/)]);
    const failedJson = await tasks(['submit', '--definition', 'test-fail', '--wait', '--json']);
    expect(failedJson.code).toBe(1);
    expect(JSON.parse(failedJson.out.join('\n'))).toMatchObject({ status: 'FAILED', error: expect.stringContaining('it broke') });
  });

  it('--follow prints the events as they arrive, then the outcome, and exits by it; with --json one event per line', async () => {
    const f = tasks(['submit', '--definition', 'test-progress', '--input', '{"count":2,"key":"cli-follow","gated":true}', '--follow']);
    await until(() => f.out.some((l) => l.includes('WORKFLOW_STARTED')), 'the first event');
    expect(f.out.some((l) => l.includes('PROGRESS'))).toBe(false);
    gates.open('cli-follow:start');
    const r = await f;
    expect(r.code).toBe(0);
    expect(seqTypes(r.out)).toEqual([[1, 'WORKFLOW_STARTED'], [2, 'PROGRESS'], [3, 'PROGRESS'], [4, 'WORKFLOW_COMPLETED'], [5, 'STREAM_END']]);
    expect(r.out).toContain('2  PROGRESS  event 1');
    const end = r.out.findIndex((l) => l.startsWith('5  STREAM_END'));
    expect(r.out[end + 1]).toMatch(/^COMPLETED task_\w+$/);

    const j = await tasks(['submit', '--definition', 'test-fail', '--follow', '--json']);
    expect(j.code).toBe(1);
    const events = j.out.map((l) => JSON.parse(l) as { type: string; seq: number; event?: string });
    expect(events.at(-1)!.type).toBe('STREAM_END');
    expect(events.map((e) => e.type)).toContain('WORKFLOW_FAILED');
    expect(events.every((e) => e.event === undefined)).toBe(true);
  });
});

describe('taskgate tasks: reading', () => {
  it('an agent task (--query) prints its result; list shows a table filtered by session and status; --json is the API page', async () => {
    const session = 'cli-list-session';
    const a = idIn((await tasks(['submit', '--definition', 'test-progress', '--input', '{"count":0,"key":"l1"}', '--session', session, '--priority', 'urgent', '--wait'])).out[0]!);
    const long = 'why is the sky blue and not green, asked the child, twice, at length';
    oai.script({ kind: 'text', text: 'Rayleigh\nscattering.', usage: { prompt_tokens: 20, completion_tokens: 5 } });
    const agent = await tasks(['submit', '--query', long, '--session', session, '--wait']);
    expect(agent.code).toBe(0);
    expect(agent.out).toEqual([expect.stringMatching(/^COMPLETED task_\w+$/), 'Rayleigh', 'scattering.']);
    const b = idIn(agent.out[0]!);
    const got = (await tasks(['get', b])).out;
    expect(got).toContain(`query         ${long}`);
    expect(got).toEqual(expect.arrayContaining([expect.stringMatching(/^usage +25 tokens \(\S+\)$/), 'result        Rayleigh', '              scattering.']));
    const c = idIn((await tasks(['submit', '--definition', 'test-fail', '--session', session, '--wait'])).out[0]!);
    await tasks(['submit', '--definition', 'test-progress', '--input', '{"count":0,"key":"l3"}']);

    const l = await tasks(['list', '--session', session]);
    expect(l.code).toBe(0);
    expect(l.out[0]!.split(/\s{2,}/)).toEqual(['TASK_ID', 'STATUS', 'PRIORITY', 'DEFINITION/QUERY', 'CREATED_AT']);
    expect(l.out).toHaveLength(4);
    expect(l.out[1]).toMatch(new RegExp(`^${c} +FAILED +medium +test-fail +\\d{4}-`));
    expect(l.out[2]).toMatch(new RegExp(`^${b} +COMPLETED +medium +"why is the sky blue and not green, aske…" +\\d{4}-`));
    expect(l.out[3]).toMatch(new RegExp(`^${a} +COMPLETED +urgent +test-progress +\\d{4}-`));

    const failed = await tasks(['list', '--session', session, '--status', 'FAILED', '--json']);
    const page = JSON.parse(failed.out.join('\n'));
    expect(page.tasks.map((t: { task_id: string }) => t.task_id)).toEqual([c]);
    expect(page.total_count).toBe(1);

    const first = await tasks(['list', '--session', session, '--limit', '1']);
    expect(first.out).toHaveLength(2);
    expect(first.err).toEqual(['1 of 3 tasks; --offset 1 for the next page.']);
  });

  it('events prints `seq  TYPE  message` (the payload when there is no message), a page of them, or the API answer', async () => {
    const id = idIn((await tasks(['submit', '--definition', 'cli-note', '--wait'])).out[0]!);
    const e = await tasks(['events', id]);
    expect(e.code).toBe(0);
    expect(e.out).toEqual([
      '1  WORKFLOW_STARTED  Task started (attempt 1)',
      '2  WARNING  {"low":1}',
      expect.stringMatching(/^3 {2}WORKFLOW_COMPLETED {2}\S/),
      '4  STREAM_END  Stream ended',
    ]);
    const page = await tasks(['events', id, '--limit', '2', '--offset', '1']);
    expect(seqTypes(page.out)).toEqual([[2, 'WARNING'], [3, 'WORKFLOW_COMPLETED']]);
    const j = await tasks(['events', id, '--json']);
    expect(JSON.parse(j.out.join('\n'))).toMatchObject({ count: 4, events: expect.arrayContaining([expect.objectContaining({ type: 'WARNING', payload: { low: 1 } })]) });
  });

  it('watch prints one line per event in seq order until STREAM_END; --types and --last-event-id with --json give NDJSON', async () => {
    const id = (await tasks(['submit', '--definition', 'test-progress', '--input', '{"count":3,"key":"cli-watch","gated":true}'])).out[0]!;
    const w = tasks(['watch', id]);
    await until(() => w.out.length > 0, 'the first event');
    gates.open('cli-watch:start');
    const r = await w;
    expect(r.code).toBe(0);
    const seen = seqTypes(r.out);
    expect(seen).toHaveLength(r.out.length);
    expect(seen.map(([seq]) => seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen.at(-1)).toEqual([6, 'STREAM_END']);

    const j = await tasks(['watch', id, '--json', '--types', 'PROGRESS', '--last-event-id', '2']);
    expect(j.code).toBe(0);
    expect(j.out.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({ seq: 3, type: 'PROGRESS', message: 'event 2' }),
      expect.objectContaining({ seq: 4, type: 'PROGRESS', message: 'event 3' }),
    ]);
  });
});

describe('taskgate tasks: waiting and control', () => {
  it('wait exits 3 when --timeout-ms runs out; pause, resume and cancel steer the task; wait then exits 1', async () => {
    const id = (await tasks(['submit', '--definition', 'test-gated', '--input', '{"key":"cli-ctl"}'])).out[0]!;
    const w = await tasks(['wait', id, '--timeout-ms', '300']);
    expect(w.code).toBe(3);
    expect(w.out).toEqual([]);
    // (a status read still unanswered at the deadline — a loaded machine — is cut and said so)
    expect(w.err).toEqual([expect.stringMatching(new RegExp(
      `^taskgate: WAIT_TIMEOUT: task ${id} (is still (QUEUED|RUNNING) after 300 ms|has not been seen to end within 300 ms \\(last seen (QUEUED|RUNNING|never); a status read was still unanswered\\))$`,
    ))]);

    const p = await tasks(['pause', id, '--reason', 'hold on', '--json']);
    expect(p.code).toBe(0);
    expect(JSON.parse(p.out.join('\n'))).toMatchObject({ success: true, task_id: id });
    const r = await tasks(['resume', id]);
    expect(r.code).toBe(0);
    expect(r.out).toEqual([expect.stringMatching(new RegExp(`\\(${id}: (RUNNING|QUEUED)\\)$`))]);
    const c = await tasks(['cancel', id, '--reason', 'enough', '--force']);
    expect(c.code).toBe(0);
    expect(c.out).toEqual([expect.stringMatching(new RegExp(`^Task cancel.*\\(${id}: \\w+\\)$`))]);

    const end = await tasks(['wait', id]);
    expect(end.code).toBe(1);
    expect(end.out[0]).toMatch(new RegExp(`^CANCELLED ${id}`));
    const again = await tasks(['cancel', id]);
    expect(again.code).toBe(1);
    expect(again.err).toEqual([expect.stringMatching(/^taskgate: TASK_ALREADY_FINISHED \(HTTP 409\): /)]);
  });

  it('an interrupt (Ctrl-C; io.signal in process) stops watch and wait with exit 130, and the task goes on', async () => {
    const id = (await tasks(['submit', '--definition', 'test-gated', '--input', '{"key":"cli-int"}'])).out[0]!;
    const ac = new AbortController();
    const w = tasks(['watch', id], { signal: ac.signal });
    await until(() => w.out.some((l) => l.includes('WORKFLOW_STARTED')), 'the first event');
    ac.abort();
    const r = await w;
    expect(r.code).toBe(130);
    expect(r.err).toEqual([`Stopped following ${id}; the task goes on (taskgate tasks cancel ${id} stops it).`]);
    const waited = await tasks(['wait', id], { signal: AbortSignal.abort() });
    expect(waited.code).toBe(130);
    expect(waited.err).toEqual([`Stopped waiting for ${id}; the task goes on (taskgate tasks cancel ${id} stops it).`]);
    const followed = tasks(['submit', '--definition', 'test-gated', '--input', '{"key":"cli-int2"}', '--follow'], { signal: ac.signal });
    expect((await followed).code).toBe(130);

    expect(JSON.parse((await tasks(['get', id, '--json'])).out.join('\n')).status).toBe('RUNNING');
    expect((await tasks(['cancel', id, '--force'])).code).toBe(0);
    const other = (await tasks(['list', '--definition', 'test-gated', '--status', 'QUEUED,RUNNING', '--json'])).out.join('\n');
    for (const t of JSON.parse(other).tasks as { task_id: string }[]) expect((await tasks(['cancel', t.task_id, '--force'])).code).toBe(0);
  });
});

describe('taskgate tasks: failures', () => {
  it("usage errors exit 2 with the subcommand's help: bad --input JSON, an unreadable @file, --query with --definition, no task id, a stray argument", async () => {
    const bad = await tasks(['submit', '--definition', 'test-progress', '--input', '{"count":']);
    expect(bad.code).toBe(2);
    expect(bad.err[0]).toMatch(/^taskgate: --input is not valid JSON: /);
    expect(bad.err[0]).toContain('Usage: taskgate tasks submit');
    const missing = await tasks(['submit', '--definition', 'test-progress', '--input', '@/nonexistent/input.json']);
    expect(missing.code).toBe(2);
    expect(missing.err[0]).toMatch(/^taskgate: --input @\/nonexistent\/input.json: cannot read \/nonexistent\/input.json \(ENOENT\)/);
    for (const args of [
      ['submit', '--query', 'hi', '--definition', 'test-progress'],
      ['submit', '--query', 'hi', '--input', '{}'],
      ['submit', '--definition', 'test-progress', '--priority', 'whenever'],
      ['submit', '--definition', 'test-progress', '--timeout-ms', '5'],
      ['submit', '--definition', 'test-progress', '--wait', '--follow'],
      ['get'],
      ['get', 'task_x', '--json', 'task_y'],
      ['pause', 'task_x', '--force'],
      ['frobnicate'],
    ]) {
      const r = await tasks(args);
      expect({ args, code: r.code, out: r.out }).toEqual({ args, code: 2, out: [] });
      expect(r.err[0]).toMatch(args[0] === 'frobnicate' ? /^taskgate: .+\n\nTask commands/ : new RegExp(`^taskgate: .+\\n\\nUsage: taskgate tasks ${args[0]}`));
    }
    const list = await tasks(['list', '--definition', 'test-progress', '--json']);
    expect(JSON.parse(list.out.join('\n')).tasks.every((t: { task_definition_id: string }) => t.task_definition_id === 'test-progress')).toBe(true);
  });

  it('an unknown task is exit 1 with NOT_FOUND (get, watch, wait); a refused key with UNAUTHORIZED', async () => {
    for (const sub of ['get', 'watch', 'wait', 'events', 'cancel']) {
      const r = await tasks([sub, 'task_nope']);
      expect({ sub, code: r.code }).toEqual({ sub, code: 1 });
      expect(r.err).toEqual([expect.stringMatching(/^taskgate: NOT_FOUND \(HTTP 404\): /)]);
    }
    const denied = await tasks(['get', 'task_nope', '--url', server.url, '--key', 'sk_not_a_key'], { env: {} });
    expect(denied.code).toBe(1);
    expect(denied.err).toEqual([expect.stringMatching(/^taskgate: UNAUTHORIZED \(HTTP 401\): /)]);
  });

  it('wait says once that the server does not answer, then goes on waiting (here until --timeout-ms: exit 3)', async () => {
    const away = await tasks(['wait', 'task_somewhere', '--timeout-ms', '1500'], { env: { TASKGATE_URL: 'http://127.0.0.1:1', TASKGATE_API_KEY: ADMIN_KEY } });
    expect(away.code).toBe(3);
    expect(away.err).toHaveLength(2);
    expect(away.err[0]).toMatch(/^taskgate: NETWORK_ERROR: cannot reach http:\/\/127\.0\.0\.1:1: .* still waiting for task_somewhere/);
    expect(away.err[1]).toMatch(/^taskgate: WAIT_TIMEOUT: /);
  });
});
