// The `taskgate` command's commands (cli/main.ts is the entry point). The line is read against
// the command's declared arguments and flags (specs.ts, args.ts) before anything runs. `serve` and
// `migrate` reach into main.ts; client commands (admin.ts, tasks.ts, backup.ts) use the SDK. Output goes
// through `io`, so tests run them in process.
import { resolve as resolvePath } from 'node:path';
import { ConfigError, loadConfig, parseDuration } from '../config/index.js';
import { currentVersion, latestVersion, migrate, otherSessions } from '../storage/migrate.js';
import { openDatabase, startServer } from '../main.js';
import { holdsPglite } from '../storage/pglite.js';
import { createLogger } from '../logger.js';
import { VERSION } from '../version.js';
import { RetentionSweeper } from '../engine/retention.js';
import { runAdminCommand } from './admin.js';
import { runBackup, runRestore } from './backup.js';
import { check, commandHelp, scan, type CommandSpec } from './args.js';
import { exitQuietlyOnBrokenPipe, processIo, UsageError, type CliIo, type Flags } from './shared.js';
import { ADMIN_HELP, GROUPS, SERVER_COMMANDS, TASKS_HELP, VALUE_FLAGS } from './specs.js';
import { runTasksCommand } from './tasks.js';

const HELP = `taskgate ${VERSION} — task gateway and durable execution engine

Usage:
  taskgate serve [--port 8080] [--host 127.0.0.1] [--data-dir ./.taskgate] [--database-url URL]
                 [--role api|worker|all] [--concurrency 10] [--tasks-dir DIR] [--no-auth]
  taskgate worker [the options of serve but --role]
                              serve --role worker: runs tasks; serves /health, /readiness, /metrics
  taskgate migrate [--data-dir DIR] [--database-url URL]
                              apply database migrations and exit
  taskgate prune [--older-than 30d] [--data-dir DIR] [--database-url URL]
                              delete tasks that ended (and sessions deleted) longer ago than that
                              (default: TASKGATE_TASK_RETENTION), once, and exit
  taskgate backup --out FILE [--force] [--url URL] [--key KEY]
                              download a running server's online PGlite backup (.tar.gz)
  taskgate restore FILE [--data-dir DIR]
                              load a backup into a new data directory (offline), then serve on it
  taskgate version
  taskgate help [COMMAND]     this help, or one command's (also: taskgate COMMAND --help or -h)

${ADMIN_HELP}

${TASKS_HELP}

Environment: DATABASE_URL (server PostgreSQL instead of embedded PGlite), PORT, HOST,
TASKGATE_DATA_DIR, TASKGATE_LEASE_MS, TASKGATE_ADMIN_KEY, … (docs/configuration.md)`;

async function serve(flags: Flags): Promise<void> {
  const config = loadConfig(flags);
  const log = createLogger(config.logLevel);
  if (config.authDisabled) {
    process.stderr.write('\n*** WARNING: authentication is DISABLED (loopback only). Do not expose this server. ***\n\n');
  }
  const server = await startServer(config, { logger: log, announce: (line) => process.stdout.write(line + '\n'), showKey: process.stdout.isTTY === true });
  log.info({ url: server.url, role: config.role, database: server.db.kind, concurrency: config.concurrency }, 'taskgate listening');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn('second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownDrainMs + config.shutdownGraceMs + 15_000);
    force.unref();
    server.close({ drainMs: config.shutdownDrainMs }).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function migrateCmd(flags: Flags, io: CliIo): Promise<void> {
  const config = loadConfig(flags);
  const db = await openDatabase(config);
  try {
    const others = (await currentVersion(db)) < latestVersion() ? await otherSessions(db) : { taskgate: 0, unnamed: 0 };
    if (others.taskgate + others.unnamed > 0) {
      // workers from before December 2026 have no schema guard: they fail tasks of kinds they do not know
      const seen = [
        others.taskgate ? `${others.taskgate} of Taskgate (application_name taskgate)` : '',
        // builds before 2026-12-06 connected with no application name: these may be theirs
        others.unnamed ? `${others.unnamed} with no application name (Taskgate builds before 2026-12-06 set none)` : '',
      ].filter(Boolean).join(' and ');
      io.err(
        `taskgate migrate: other connections are open on this database (pg_stat_activity): ${seen}. ` +
          'Workers of this release stop claiming once it is migrated, but workers built before December 2026 do not and would fail tasks of kinds they do not know — stop those first',
      );
    }
    const applied = await migrate(db);
    io.out(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database is up to date');
  } finally {
    await db.close();
  }
}

/** One retention sweep now (engine/retention.ts), e.g. from cron where no worker sweeps. */
async function prune(flags: Flags, io: CliIo): Promise<void> {
  const config = loadConfig(flags);
  const raw = flags['older-than'];
  const age = typeof raw === 'string' ? raw : undefined;
  let retentionMs: number;
  try {
    retentionMs = raw === undefined ? config.taskRetentionMs : parseDuration('--older-than', age, null);
  } catch (err) {
    // a flag's value it cannot read is a usage error (exit 2), as every other command's
    if (!(err instanceof ConfigError)) throw err;
    io.err(`taskgate prune: ${err.message}`);
    process.exitCode = 2;
    return;
  }
  if (!(retentionMs > 0)) {
    io.err('taskgate prune: say how old, e.g. --older-than 30d (or set TASKGATE_TASK_RETENTION)');
    process.exitCode = 2;
    return;
  }
  // a mistyped --data-dir opened (and so created) an empty database there, then failed with a
  // stack trace: prune deletes from a Taskgate database, never makes one
  if (!config.databaseUrl && !holdsPglite(config.dataDir)) {
    io.err(`taskgate prune: no Taskgate database in ${resolvePath(config.dataDir)} (TASKGATE_DATA_DIR / --data-dir)`);
    process.exitCode = 1;
    return;
  }
  const db = await openDatabase(config);
  try {
    const [at, latest] = [await currentVersion(db), latestVersion()];
    if (at !== latest) {
      io.err(
        at === 0
          ? `taskgate prune: the database holds no Taskgate schema (${config.databaseUrl ? 'DATABASE_URL' : 'TASKGATE_DATA_DIR'}): nothing to prune`
          : `taskgate prune: the database schema is at version ${at}, this build's is ${latest}: ${at < latest ? 'run taskgate migrate (or serve) first' : 'prune with the newer build that migrated it'}`,
      );
      process.exitCode = 1;
      return;
    }
    const swept = await new RetentionSweeper({ retentionMs, intervalMs: config.retentionIntervalMs }, { db }).sweepOnce();
    io.out(`deleted ${swept.tasks} ended task(s) and ${swept.sessions} deleted session(s) older than ${age ?? 'TASKGATE_TASK_RETENTION'}`);
  } finally {
    await db.close();
  }
}

/** What the words name: a command (with how many words name it), a group's help, or the top-level help. */
type Resolved = { spec: CommandSpec; path: number } | { help: string; problem?: string; bare?: boolean };

function resolve(words: readonly string[]): Resolved {
  const [first, second] = words;
  if (first === undefined) return { help: HELP };
  const top = SERVER_COMMANDS[first];
  if (top) return { spec: top, path: 1 };
  const group = GROUPS[first];
  if (!group) return { help: HELP, problem: `unknown command: ${first}` };
  if (second === undefined) return { help: group.help, problem: `taskgate ${first} needs a command`, bare: true };
  if (second === 'help') return { help: group.help };
  const spec = group.commands[second];
  return spec ? { spec, path: 2 } : { help: group.help, problem: `unknown command: ${first} ${second}` };
}

/** A usage error: the message and the help that goes with it on stderr, exit code 2. */
function usage(io: CliIo, message: string, help: string): void {
  io.err(`taskgate: ${message}\n\n${help}`);
  process.exitCode = 2;
}

/**
 * Runs one command; sets process.exitCode on failure (2: a usage error, which runs nothing).
 * `--help`/`-h` anywhere prints the named command's help and runs nothing. `serve` runs until a
 * signal stops it.
 */
export async function run(argv: string[], io: CliIo = processIo): Promise<void> {
  if (argv.length === 1 && argv[0] === '--version') return io.out(VERSION);
  const scanned = scan(argv, VALUE_FLAGS);
  const asksHelp = scanned.words[0] === 'help';
  const found = resolve(asksHelp ? scanned.words.slice(1) : scanned.words);
  const serving = 'spec' in found && (found.spec.name === 'serve' || found.spec.name === 'worker');
  if (io === processIo && !serving) exitQuietlyOnBrokenPipe();
  if (!('spec' in found)) {
    if (found.problem && !(found.bare && (asksHelp || scanned.help))) return usage(io, found.problem, found.help);
    if (!asksHelp && !scanned.help && scanned.flags.length) return usage(io, `unknown option ${scanned.flags[0]!.written}: give a command first`, HELP);
    return io.out(found.help);
  }
  const { spec, path } = found;
  if (asksHelp || scanned.help) {
    if (asksHelp && scanned.words.length > path + 1) return usage(io, `unexpected argument '${scanned.words[path + 1]}'`, HELP);
    return io.out(commandHelp(spec));
  }
  let flags: Flags;
  let args: string[];
  try {
    ({ flags, args } = check(spec, scanned, path));
  } catch (err) {
    if (err instanceof UsageError) return usage(io, err.message, commandHelp(spec));
    throw err;
  }
  switch (spec.name) {
    case 'serve':
    case 'worker':
      return serve(spec.name === 'worker' ? { ...flags, role: 'worker' } : flags);
    case 'migrate':
      return migrateCmd(flags, io);
    case 'prune':
      return prune(flags, io);
    case 'backup':
      process.exitCode = await runBackup(flags, io);
      return;
    case 'restore':
      process.exitCode = await runRestore(args[0]!, flags, io);
      return;
    case 'version':
      return io.out(VERSION);
  }
  const [group, sub] = scanned.words as [string, string];
  process.exitCode = group === 'tasks' ? await runTasksCommand([sub, ...args], flags, io) : await runAdminCommand(group, [sub, ...args], flags, io);
}
