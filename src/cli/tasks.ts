// `taskgate tasks submit|get|list|events|watch|wait|cancel|pause|resume`: drive tasks from a shell,
// over the SDK like admin.ts. Readable text by default; --json gives the API's JSON (one event per
// line for watch and --follow). Exit codes: 0 done (or COMPLETED), 1 an error or a task that ended
// FAILED/CANCELLED/TIMEOUT, 2 usage, 3 --timeout-ms ran out, 130 Ctrl-C (the task goes on); output
// into a pipe whose reader left (`| head`) ends the command quietly with its code so far, else 0.
import { readFileSync } from 'node:fs';
import { TaskTimeoutError, type StreamEvent, type TaskgateError, type SubmitTaskBody, type TaskgateClient, type TaskView } from '../sdk/index.js';
import { commandHelp } from './args.js';
import { cliClient, exitCodeFor, optInt, optMs, optStr, processIo, table, UsageError, type CliIo, type Flags } from './shared.js';
import { GROUPS, TASKS_HELP } from './specs.js';

export const EXIT_TASK_FAILED = 1;
export const EXIT_WAIT_TIMEOUT = 3;
/** 128 + SIGINT, as shells report a command stopped by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

const PRIORITIES = ['low', 'medium', 'high', 'urgent'];
/** Longest query shown in a `list` row, characters. */
const LIST_QUERY_CHARS = 40;
const TASK_COMMANDS = GROUPS.tasks!.commands;

/** A switch (cli/args.ts has refused a value for it). */
const flag = (flags: Flags, name: string): boolean => flags[name] === true;

function parseInput(raw: string | boolean | undefined): unknown {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') throw new UsageError('--input needs a JSON value or @file.json');
  let text = raw;
  if (raw.startsWith('@')) {
    try {
      // a leading byte-order mark (Windows editors write one) is no part of the JSON
      text = readFileSync(raw.slice(1), 'utf8').replace(/^\uFEFF/, '');
    } catch (err) {
      throw new UsageError(`--input ${raw}: cannot read ${raw.slice(1)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--input ${raw.startsWith('@') ? raw + ' ' : ''}is not valid JSON: ${(err as Error).message}`);
  }
}

function submitBody(flags: Flags): SubmitTaskBody {
  const query = optStr(flags, 'query');
  const definition = optStr(flags, 'definition');
  if ((query === undefined) === (definition === undefined)) throw new UsageError('give either --query TEXT (an agent task) or --definition ID');
  const input = parseInput(flags.input);
  if (input !== undefined && query !== undefined) throw new UsageError('--input goes with --definition, not --query');
  const priority = optStr(flags, 'priority');
  if (priority !== undefined && !PRIORITIES.includes(priority.toLowerCase())) throw new UsageError(`--priority must be one of ${PRIORITIES.join(', ')}`);
  return { query, task_definition_id: definition, input, session_id: optStr(flags, 'session'), priority };
}

const oneLine = (s: string) => s.replace(/\s*[\r\n]+\s*/g, ' ');

/** `seq  TYPE  message` (the payload as compact JSON when there is no message). */
function eventLine(e: { seq: number; type: string; message?: string | null; payload?: unknown }): string {
  const text = e.message ? oneLine(e.message) : e.payload != null ? JSON.stringify(e.payload) : '';
  return `${e.seq}  ${e.type}  ${text}`.trimEnd();
}

/** The event as the server sent it (without the SDK's `event`, the SSE name). */
function eventJson({ event: _sseName, ...wire }: StreamEvent): string {
  return JSON.stringify(wire);
}

/** What the task produced, as text: a definition's output as JSON, else the agent's result. */
function produced(t: TaskView): string | undefined {
  if (t.output !== null && t.output !== undefined) return JSON.stringify(t.output, null, 2);
  return t.result ?? undefined;
}

/** Prints a task that has ended; its exit code. */
function printOutcome(io: CliIo, t: TaskView, json: boolean): number {
  if (json) {
    io.out(JSON.stringify(t, null, 2));
  } else {
    io.out(`${t.status} ${t.task_id}${t.error ? `: ${t.error}` : ''}`);
    const text = produced(t);
    if (text !== undefined) io.out(text);
  }
  return t.status === 'COMPLETED' ? 0 : EXIT_TASK_FAILED;
}

/** `get`: one labelled line per field; a multi-line value goes on under its first line. */
function summary(t: TaskView): string {
  const rows: [string, unknown][] = [
    ['task_id', t.task_id],
    ['status', t.status],
    t.task_definition_id ? ['definition', t.task_definition_id] : ['query', t.query],
    ['input', t.task_definition_id ? JSON.stringify(t.input) : undefined],
    ['session', t.session_id],
    ['priority', t.priority],
    ['attempts', `${t.attempts} of ${t.max_attempts}`],
    ['created_at', t.created_at],
    ['started_at', t.started_at],
    ['completed_at', t.completed_at],
    ['duration', t.execution_metadata.duration_ms !== null ? `${t.execution_metadata.duration_ms} ms` : undefined],
    ['usage', t.usage.total_tokens ? `${t.usage.total_tokens} tokens (${t.model_used ?? 'model unknown'})` : undefined],
    [t.output !== null && t.output !== undefined ? 'output' : 'result', produced(t)],
    ['error', t.error],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows
    .filter(([k, v]) => (v !== null && v !== undefined) || k.endsWith('_at'))
    .map(([k, v]) => k.padEnd(width) + String(v ?? '-').split('\n').join('\n' + ' '.repeat(width)))
    .join('\n');
}

function listRow(t: { task_id: string; status: string; priority: string; task_definition_id: string | null; query: string; created_at: string }) {
  const q = oneLine(t.query);
  const what = t.task_definition_id ?? `"${q.length > LIST_QUERY_CHARS ? q.slice(0, LIST_QUERY_CHARS - 1) + '…' : q}"`;
  return { task_id: t.task_id, status: t.status, priority: t.priority, 'definition/query': what, created_at: t.created_at };
}

/**
 * Aborts on Ctrl-C — a SIGINT handler only when the io is the real terminal (tests run commands
 * in the same process) — or when `io.signal` aborts. A second Ctrl-C, with the handler gone, ends
 * the process as usual.
 */
function interruption(io: CliIo): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const stop = () => ac.abort(new Error('interrupted'));
  if (io === processIo) process.once('SIGINT', stop);
  if (io.signal?.aborted) stop();
  io.signal?.addEventListener('abort', stop, { once: true });
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', stop);
      io.signal?.removeEventListener('abort', stop);
    },
  };
}

function interrupted(io: CliIo, taskId: string, what: 'waiting for' | 'following'): number {
  io.err(`Stopped ${what} ${taskId}; the task goes on (taskgate tasks cancel ${taskId} stops it).`);
  return EXIT_INTERRUPTED;
}

/**
 * wait()'s onRetry for a person at a terminal: one line when the server stops answering (it is
 * restarting, or gone), not one per read; the wait goes on until the task ends, --timeout or Ctrl-C.
 */
function stillWaiting(io: CliIo, taskId: string): (err: TaskgateError) => void {
  let said = false;
  return (err) => {
    if (said) return;
    said = true;
    io.err(`taskgate: ${err.code}: ${err.message} — still waiting for ${taskId} (Ctrl-C stops waiting; the task goes on)`);
  };
}

async function waitFor(client: TaskgateClient, taskId: string, timeoutMs: number | undefined, io: CliIo, json: boolean): Promise<number> {
  const stop = interruption(io);
  try {
    return printOutcome(io, await client.wait(taskId, { timeoutMs, signal: stop.signal, onRetry: stillWaiting(io, taskId) }), json);
  } catch (err) {
    if (stop.signal.aborted) return interrupted(io, taskId, 'waiting for');
    if (err instanceof TaskTimeoutError) {
      io.err(`taskgate: ${err.code}: ${err.message}`);
      return EXIT_WAIT_TIMEOUT;
    }
    throw err;
  } finally {
    stop.dispose();
  }
}

interface FollowOptions {
  types?: string[];
  lastEventId?: number;
  /** Stop following after this many ms (exit 3). */
  timeoutMs?: number;
  /** After the last event, read the final status and exit by it (submit --follow); else exit 0 (watch). */
  outcome: boolean;
}

async function follow(client: TaskgateClient, taskId: string, opts: FollowOptions, io: CliIo, json: boolean): Promise<number> {
  const stop = interruption(io);
  const deadline = opts.timeoutMs !== undefined ? AbortSignal.timeout(opts.timeoutMs) : undefined;
  const signal = deadline ? AbortSignal.any([stop.signal, deadline]) : stop.signal;
  try {
    // the iteration ends at the task's end, or (quietly) when the signal aborts
    for await (const e of client.task(taskId).stream({ types: opts.types, lastEventId: opts.lastEventId, signal })) {
      io.out(json ? eventJson(e) : eventLine(e));
    }
    if (stop.signal.aborted) return interrupted(io, taskId, 'following');
    if (deadline?.aborted) {
      io.err(`taskgate: WAIT_TIMEOUT: task ${taskId} has not ended after ${opts.timeoutMs} ms`);
      return EXIT_WAIT_TIMEOUT;
    }
    if (!opts.outcome) return 0;
    // the stream ended with the task, so this is one read
    const task = await client.wait(taskId, { signal: stop.signal });
    return json ? (task.status === 'COMPLETED' ? 0 : EXIT_TASK_FAILED) : printOutcome(io, task, false);
  } catch (err) {
    if (stop.signal.aborted) return interrupted(io, taskId, 'following');
    throw err;
  } finally {
    stop.dispose();
  }
}

async function submit(flags: Flags, io: CliIo, json: boolean): Promise<number> {
  const body = submitBody(flags);
  const wait = flag(flags, 'wait');
  const following = flag(flags, 'follow');
  if (wait && following) throw new UsageError('--wait or --follow, not both');
  const timeoutMs = optMs(flags, 'timeout-ms');
  if (timeoutMs !== undefined && !(wait || following)) throw new UsageError('--timeout-ms goes with --wait or --follow');
  const client = cliClient(flags, io);
  const handle = await client.submitTask(body, { idempotencyKey: optStr(flags, 'idempotency-key') });
  const what = body.task_definition_id ? `${body.task_definition_id} task` : 'agent task';
  // a replayed submit's answer is the first one's: the task may have moved on since
  const now = handle.replayed ? (await handle.status()).status : (handle.submitted.status ?? 'QUEUED');
  const said = handle.replayed ? `Already submitted with this idempotency key: ${what} ${handle.taskId} (now ${now})` : `Submitted ${what} ${handle.taskId}`;
  if (!wait && !following) {
    io.out(json ? JSON.stringify(handle.replayed ? { ...handle.submitted, replayed: true, status: now } : handle.submitted, null, 2) : handle.taskId);
    if (!json) io.err(handle.replayed ? `${said}.` : `${said} (${now}).`);
    return 0;
  }
  if (!json) io.err(`${said}; ${wait ? 'waiting for its end' : 'following its events'} (Ctrl-C stops ${wait ? 'waiting' : 'following'}).`);
  return wait ? waitFor(client, handle.taskId, timeoutMs, io, json) : follow(client, handle.taskId, { timeoutMs, outcome: true }, io, json);
}

/**
 * Runs `tasks SUB TASK_ID?`, read against its spec by cli/args.ts (commands.ts run()): the
 * arguments are there and every flag is one the subcommand takes. Returns the process exit code.
 */
export async function runTasksCommand(args: string[], flags: Flags, io: CliIo): Promise<number> {
  const [sub, taskId] = args;
  const spec = sub !== undefined && Object.hasOwn(TASK_COMMANDS, sub) ? TASK_COMMANDS[sub] : undefined;
  try {
    if (!spec) throw new UsageError(`unknown command: tasks ${sub ?? ''}`.trim());
    const json = flag(flags, 'json');
    const page = { limit: optInt(flags, 'limit'), offset: optInt(flags, 'offset') };
    switch (sub) {
      case 'submit':
        return await submit(flags, io, json);
      case 'list': {
        const res = await cliClient(flags, io).listTasks({
          ...page, status: optStr(flags, 'status'), session_id: optStr(flags, 'session'), task_definition_id: optStr(flags, 'definition'), tag: optStr(flags, 'tag'),
        });
        if (json) {
          io.out(JSON.stringify(res, null, 2));
        } else {
          io.out(table(res.tasks.map(listRow), ['task_id', 'status', 'priority', 'definition/query', 'created_at']));
          const next = res.offset + res.tasks.length;
          if (res.total_count > next) io.err(`${res.tasks.length} of ${res.total_count} tasks; --offset ${next} for the next page.`);
        }
        return 0;
      }
      case 'get': {
        const t = await cliClient(flags, io).getStatus(taskId!);
        io.out(json ? JSON.stringify(t, null, 2) : summary(t));
        return 0;
      }
      case 'events': {
        const res = await cliClient(flags, io).getEvents(taskId!, page);
        if (json) io.out(JSON.stringify(res, null, 2));
        else if (res.events.length) io.out(res.events.map(eventLine).join('\n'));
        return 0;
      }
      case 'watch': {
        const types = optStr(flags, 'types')?.split(',').map((s) => s.trim()).filter(Boolean);
        return await follow(cliClient(flags, io), taskId!, { types, lastEventId: optInt(flags, 'last-event-id'), outcome: false }, io, json);
      }
      case 'wait': {
        return await waitFor(cliClient(flags, io), taskId!, optMs(flags, 'timeout-ms'), io, json);
      }
      default: {
        const client = cliClient(flags, io);
        const reason = optStr(flags, 'reason');
        const r = sub === 'cancel' ? await client.cancel(taskId!, { reason, force: flag(flags, 'force') })
          : sub === 'pause' ? await client.pause(taskId!, { reason })
          : await client.resume(taskId!, { reason });
        io.out(json ? JSON.stringify(r, null, 2) : `${r.message} (${r.task_id}: ${r.status})`);
        return 0;
      }
    }
  } catch (err) {
    return exitCodeFor(err, io, spec ? commandHelp(spec) : TASKS_HELP);
  }
}
