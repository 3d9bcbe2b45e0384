// The `taskgate` command's commands (cli/main.ts is the entry point). `serve` and `migrate` reach
// into main.ts; client commands (admin.ts, tasks.ts) use the SDK. Output goes through `io`, so
// tests run them in process.
import { loadConfig, parseDuration, parseFlags } from '../config/index.js';
import { migrate } from '../storage/migrate.js';
import { openDatabase, startServer } from '../main.js';
import { createLogger } from '../logger.js';
import { VERSION } from '../version.js';
import { RetentionSweeper } from '../engine/retention.js';
import { ADMIN_HELP, runAdminCommand } from './admin.js';
import { processIo, type CliIo } from './shared.js';
import { runTasksCommand, TASKS_HELP } from './tasks.js';

const HELP = `taskgate ${VERSION} — task gateway and durable execution engine

Usage:
  taskgate serve [--port 8080] [--host 127.0.0.1] [--data-dir ./.taskgate] [--role api|worker|all]
                 [--concurrency 10] [--tasks-dir DIR]
  taskgate migrate            apply database migrations and exit
  taskgate prune [--older-than 30d]
                              delete tasks that ended (and sessions deleted) longer ago than that
                              (default: TASKGATE_TASK_RETENTION), once, and exit
  taskgate version

${ADMIN_HELP}

${TASKS_HELP}

Environment: DATABASE_URL (server PostgreSQL instead of embedded PGlite), PORT, HOST,
TASKGATE_DATA_DIR, TASKGATE_LEASE_MS, TASKGATE_ADMIN_KEY, … (docs/configuration.md)`;

async function serve(flags: Record<string, string | boolean>): Promise<void> {
  const config = loadConfig(flags);
  const log = createLogger(config.logLevel);
  if (config.authDisabled) {
    process.stderr.write('\n*** WARNING: authentication is DISABLED (loopback only). Do not expose this server. ***\n\n');
  }
  const server = await startServer(config, { logger: log, announce: (line) => process.stdout.write(line + '\n') });
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
    }, config.shutdownGraceMs + 15_000);
    force.unref();
    server.close().then(
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

async function migrateCmd(flags: Record<string, string | boolean>, io: CliIo): Promise<void> {
  const config = loadConfig(flags);
  const db = await openDatabase(config);
  try {
    const applied = await migrate(db);
    io.out(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database is up to date');
  } finally {
    await db.close();
  }
}

/** One retention sweep now (engine/retention.ts), e.g. from cron where no worker sweeps. */
async function prune(flags: Record<string, string | boolean>, io: CliIo): Promise<void> {
  const config = loadConfig(flags);
  const raw = flags['older-than'];
  const age = typeof raw === 'string' ? raw : undefined;
  const retentionMs = raw === undefined ? config.taskRetentionMs : parseDuration('--older-than', age);
  if (!(retentionMs > 0)) {
    io.err('taskgate prune: say how old, e.g. --older-than 30d (or set TASKGATE_TASK_RETENTION)');
    process.exitCode = 2;
    return;
  }
  const db = await openDatabase(config);
  try {
    const swept = await new RetentionSweeper({ retentionMs, intervalMs: config.retentionIntervalMs }, { db }).sweepOnce();
    io.out(`deleted ${swept.tasks} ended task(s) and ${swept.sessions} deleted session(s) older than ${age ?? 'TASKGATE_TASK_RETENTION'}`);
  } finally {
    await db.close();
  }
}

/** Runs one command; sets process.exitCode on failure. `serve` runs until a signal stops it. */
export async function run(argv: string[], io: CliIo = processIo): Promise<void> {
  const { positional, flags } = parseFlags(argv);
  const cmd = positional[0] ?? 'help';
  switch (cmd) {
    case 'serve':
    case 'worker':
      return serve(cmd === 'worker' ? { ...flags, role: 'worker' } : flags);
    case 'tenants':
    case 'keys':
      process.exitCode = await runAdminCommand(cmd, positional.slice(1), flags, io);
      return;
    case 'tasks':
      process.exitCode = await runTasksCommand(positional.slice(1), flags, io);
      return;
    case 'migrate':
      return migrateCmd(flags, io);
    case 'prune':
      return prune(flags, io);
    case 'version':
    case '--version':
      io.out(VERSION);
      return;
    case 'help':
    case '--help':
      io.out(HELP);
      return;
    default:
      io.err(`unknown command: ${cmd}\n\n${HELP}`);
      process.exitCode = 2;
  }
}
