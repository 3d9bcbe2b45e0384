// What the client commands (admin.ts, tasks.ts) share: the io they write through, flag readers,
// the SDK client built from --url/--key, a plain-text table, and how a failure becomes an exit code.
import { readFileSync } from 'node:fs';
import { loadClientConfig } from '../config/client.js';
import { TaskgateClient, TaskgateError } from '../sdk/index.js';
import { apiKeyProblem, baseUrlProblem, MAX_TIMER_MS } from '../sdk/transport.js';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Where TASKGATE_URL, TASKGATE_API_KEY, TASKGATE_DATA_DIR come from (default: the process environment). */
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  /** Aborting it stops a command that follows a task (watch, wait, submit --wait/--follow) as Ctrl-C does. */
  signal?: AbortSignal;
}

/** The real terminal: only with this io do commands take over SIGINT. */
export const processIo: CliIo = { out: (t) => process.stdout.write(t + '\n'), err: (t) => process.stderr.write(t + '\n') };

/**
 * For the real terminal's client commands: once the reader of stdout or stderr has gone
 * (`taskgate tasks list --json | head -1`, a `tasks watch | grep -m1 …`), exit at once and quietly
 * with the command's exit code so far — 0 if it has none yet — as `head`'s writers are expected to:
 * Node ignores SIGPIPE, so the failed write was an unhandled EPIPE and a stack. Not 141 (128 +
 * SIGPIPE): under `set -o pipefail` every `… | head` would fail. Not for serve: a server whose log
 * pipe broke still crashes, for its supervisor to restart.
 */
export function exitQuietlyOnBrokenPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(Number(process.exitCode ?? 0));
    });
  }
}

/** A command line the command cannot run: exit code 2 and the help (`help: false`: the message alone, when the help would not help). */
export class UsageError extends Error {
  constructor(message: string, readonly options: { help?: boolean } = {}) {
    super(message);
  }
}

export type Flags = Record<string, string | boolean>;

export function need(flags: Flags, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || v.trim() === '') throw new UsageError(`--${name} is required`);
  return v.trim();
}

export function optInt(flags: Flags, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer`);
  return n;
}

/**
 * A duration flag (ms) that ends up in a timer: 1 to 2^31 − 1 (~24.8 days), refused before anything
 * is sent — `submit --follow --timeout-ms 5000000000` submitted the task, then died with
 * AbortSignal.timeout's RangeError stack.
 */
export function optMs(flags: Flags, name: string): number | undefined {
  const n = optInt(flags, name);
  if (n !== undefined && (n < 1 || n > MAX_TIMER_MS)) throw new UsageError(`--${name} must be from 1 to ${MAX_TIMER_MS} ms (about 24.8 days)`);
  return n;
}

export function optStr(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/** The server for --url/TASKGATE_URL and the key from --key, TASKGATE_API_KEY or <data-dir>/admin.key. */
export function cliConnection(flags: Flags, io: CliIo): { baseUrl: string; apiKey: string | undefined } {
  const cfg = loadClientConfig(flags, io.env);
  const baseUrl = serverUrl(cfg.url, typeof flags.url === 'string' ? '--url' : 'TASKGATE_URL');
  let apiKey = cfg.apiKey;
  let from = typeof flags.key === 'string' ? '--key' : 'TASKGATE_API_KEY';
  if (!apiKey) {
    from = cfg.keyFile;
    try {
      apiKey = readFileSync(cfg.keyFile, 'utf8').trim();
    } catch {
      throw new UsageError(`no API key: pass --key, set TASKGATE_API_KEY, or run where ${cfg.keyFile} exists`);
    }
    if (!apiKey) throw new UsageError(`no API key: ${cfg.keyFile} is empty — pass --key or set TASKGATE_API_KEY`, { help: false });
  }
  // said here, not as a network error ("invalid header value") that blames the server
  const keyProblem = apiKeyProblem(apiKey);
  if (keyProblem) throw new UsageError(`the API key from ${from} is not one: ${keyProblem}`, { help: false });
  return { baseUrl, apiKey };
}

/** The SDK client for cliConnection's server and key. */
export function cliClient(flags: Flags, io: CliIo): TaskgateClient {
  return new TaskgateClient({ ...cliConnection(flags, io), fetch: io.fetch });
}

/** The server's URL, refused as the SDK would refuse it (`--url 127.0.0.1:8080` ended in a TypeError's stack). */
function serverUrl(raw: string, from: string): string {
  const problem = baseUrlProblem(raw);
  if (problem) throw new UsageError(`${from} ${problem}`, { help: false });
  return raw;
}

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? '-' : Array.isArray(r[c]) ? (r[c] as unknown[]).join(',') : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

/**
 * The exit code of a command that threw: 2 with `help` for a UsageError, 1 with
 * `taskgate: CODE (HTTP n): message` for an SDK error; anything else is rethrown (main.ts prints it).
 */
export function exitCodeFor(err: unknown, io: CliIo, help: string): number {
  if (err instanceof UsageError) {
    io.err(err.options.help === false ? `taskgate: ${err.message}` : `taskgate: ${err.message}\n\n${help}`);
    return 2;
  }
  if (err instanceof TaskgateError) {
    io.err(`taskgate: ${err.code}${err.status ? ` (HTTP ${err.status})` : ''}: ${err.message}`);
    return 1;
  }
  throw err;
}
