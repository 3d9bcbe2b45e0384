// Every `taskgate` command: its arguments, its flags and its help, in one table (cli/args.ts reads
// a command line against it). Keep it in step with README.md's CLI section and docs/configuration.md.
import { DEFAULT_CONCURRENCY, DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT } from '../config/index.js';
import { DEFAULT_SERVER_URL } from '../config/client.js';
import type { CommandSpec, FlagSpec } from './args.js';

type FlagTable = Readonly<Record<string, FlagSpec>>;

const DATABASE_FLAGS: FlagTable = {
  'data-dir': { value: 'DIR', about: `embedded PGlite's files, admin.key and the process lock (TASKGATE_DATA_DIR; default ${DEFAULT_DATA_DIR})` },
  'database-url': { value: 'URL', about: 'server PostgreSQL (postgres://…) instead of PGlite (DATABASE_URL)' },
};

const LISTEN_FLAGS: FlagTable = {
  port: { value: 'N', about: `HTTP port (PORT; default ${DEFAULT_PORT}; 0 picks a free one)` },
  host: { value: 'HOST', about: `bind address (HOST; default ${DEFAULT_HOST})` },
  ...DATABASE_FLAGS,
};

const RUN_FLAGS: FlagTable = {
  concurrency: { value: 'N', about: `worker slots: attempts running at once (TASKGATE_CONCURRENCY; default ${DEFAULT_CONCURRENCY})` },
  'tasks-dir': { value: 'DIR', about: 'a folder of .js/.mjs task-definition modules (TASKGATE_TASKS_DIR)' },
  'no-auth': { about: 'development only, loopback only: every request acts as admin (TASKGATE_AUTH_DISABLED)' },
};

const CLIENT_FLAGS: FlagTable = {
  url: { value: 'URL', about: `the server, http:// or https:// (TASKGATE_URL; default ${DEFAULT_SERVER_URL})` },
  key: { value: 'KEY', about: 'the API key (TASKGATE_API_KEY; default the one in <data-dir>/admin.key)' },
  'data-dir': { value: 'DIR', about: `where admin.key is looked for (TASKGATE_DATA_DIR; default ${DEFAULT_DATA_DIR})` },
  json: { about: "print the API's JSON" },
};

const ENVIRONMENT = 'Every setting and its environment variable: docs/configuration.md.';

export const SERVER_COMMANDS: Readonly<Record<string, CommandSpec>> = {
  serve: {
    name: 'serve',
    synopsis: '[--port 8080] [--host 127.0.0.1] [--data-dir DIR] [--database-url URL]\n    [--role api|worker|all] [--concurrency 10] [--tasks-dir DIR] [--no-auth]',
    about: `Runs the API, the workers and the dashboard (or one --role) until SIGTERM/SIGINT; migrates the database first.\n${ENVIRONMENT}`,
    args: [],
    flags: {
      ...LISTEN_FLAGS,
      role: { value: 'api|worker|all', about: 'api: HTTP only; worker: runs tasks, serves only /health, /readiness, /metrics (TASKGATE_ROLE; default all)' },
      ...RUN_FLAGS,
    },
  },
  worker: {
    name: 'worker',
    synopsis: '[--port 8080] [--host 127.0.0.1] [--data-dir DIR] [--database-url URL]\n    [--concurrency 10] [--tasks-dir DIR] [--no-auth]',
    about: `taskgate serve --role worker: runs tasks and serves only /health, /readiness and /metrics.\n${ENVIRONMENT}`,
    args: [],
    flags: { ...LISTEN_FLAGS, ...RUN_FLAGS },
  },
  migrate: {
    name: 'migrate',
    synopsis: '[--data-dir DIR] [--database-url URL]',
    about: 'Applies the database migrations and exits (serve applies them too, with a role that may create tables).',
    args: [],
    flags: DATABASE_FLAGS,
  },
  prune: {
    name: 'prune',
    synopsis: '[--older-than 30d] [--data-dir DIR] [--database-url URL]',
    about: 'Deletes, once, the tasks that ended (with their events, steps, approvals) and the sessions deleted\nlonger ago than --older-than (default: TASKGATE_TASK_RETENTION), and exits.',
    args: [],
    flags: { 'older-than': { value: 'AGE', about: 'a duration with its unit: 30d, 12h, 90m, 45s' }, ...DATABASE_FLAGS },
  },
  backup: {
    name: 'backup',
    synopsis: '--out FILE [--force] [--url URL] [--key KEY] [--data-dir DIR] [--json]',
    about: "Downloads an online backup of a running server's embedded PGlite database (an admin key in the system\ntenant) into FILE, a .tar.gz, and prints its path and size. The server builds the whole compressed\ndump in memory. On PostgreSQL it refuses (exit 1): use pg_dump. Restore it with taskgate restore.",
    args: [],
    flags: {
      out: { value: 'FILE', about: 'where to write the backup (e.g. taskgate-backup.tar.gz)' },
      force: { about: 'overwrite FILE if it exists' },
      ...CLIENT_FLAGS,
    },
  },
  restore: {
    name: 'restore',
    synopsis: 'FILE [--data-dir DIR]',
    about: 'Loads a backup made by taskgate backup into DIR, offline, and exits; then start taskgate serve\n--data-dir DIR. Refuses a DIR that already holds a database (DIR/pgdata) or that a server is using.',
    args: ['FILE'],
    flags: { 'data-dir': { value: 'DIR', about: `a new data directory for the restored database (TASKGATE_DATA_DIR; default ${DEFAULT_DATA_DIR})` } },
  },
  version: { name: 'version', synopsis: '', about: 'Prints the version (also: taskgate --version).', args: [], flags: {} },
};

const PAGE_FLAGS = (limit: number): FlagTable => ({
  limit: { value: 'N', about: `at most N (default ${limit})` },
  offset: { value: 'N', about: 'skip the first N' },
});

/** A client command: talks to a running server with the client flags. */
function client(name: string, synopsis: string, about: string, args: readonly string[], flags: FlagTable): CommandSpec {
  return { name, synopsis, about, args, flags: { ...flags, ...CLIENT_FLAGS } };
}

export interface CommandGroup {
  readonly help: string;
  readonly commands: Readonly<Record<string, CommandSpec>>;
}

const CLIENT_OPTIONS = `Options: --url URL (TASKGATE_URL; default ${DEFAULT_SERVER_URL}), --key KEY (TASKGATE_API_KEY; default
the key in <data-dir>/admin.key), --data-dir DIR (TASKGATE_DATA_DIR; default ${DEFAULT_DATA_DIR}), --json`;

const TENANTS_LINES = `  taskgate tenants create --name NAME [--id ID] [--rate-per-min N --burst N] [--max-running N]
  taskgate tenants update TENANT_ID [--name NAME] [--rate-per-min N --burst N | --default-rate] [--max-running N | --no-cap]
  taskgate tenants list [--limit 50] [--offset 0]`;
const KEYS_LINES = `  taskgate keys create --name NAME --scopes tasks:read,tasks:execute [--tenant ID] [--expires-at RFC3339] [--user ID]
  taskgate keys list [--limit 50] [--offset 0]
  taskgate keys revoke KEY_ID`;
const ONE_COMMAND = (group: string) => `taskgate ${group} COMMAND --help shows one command's options.`;

/** tenants and keys, for the top-level help. */
export const ADMIN_HELP = `Client commands (talk to a running server):
${TENANTS_LINES}
${KEYS_LINES}
${CLIENT_OPTIONS}`;

export const TASKS_HELP = `Task commands (talk to a running server):
  taskgate tasks submit (--query TEXT | --definition ID [--input JSON | --input @file.json]) [--session ID]
                        [--priority low|medium|high|urgent] [--idempotency-key K] [--wait | --follow] [--timeout-ms N]
  taskgate tasks get TASK_ID
  taskgate tasks list [--status S] [--session ID] [--definition ID] [--tag T] [--limit 20] [--offset 0]
  taskgate tasks events TASK_ID [--limit 50] [--offset 0]
  taskgate tasks watch TASK_ID [--types A,B] [--last-event-id N]   the live events, until the task ends
  taskgate tasks wait TASK_ID [--timeout-ms N]     exit 0 COMPLETED, 1 FAILED/CANCELLED/TIMEOUT, 3 time ran out
  taskgate tasks cancel|pause|resume TASK_ID [--reason TEXT] [--force (cancel only)]
Options: --url, --key, --data-dir as above, --json (the API's JSON; watch and --follow: one event per line).
Ctrl-C stops watch, wait, --wait and --follow (exit 130); the task goes on.`;

const REASON: FlagTable = { reason: { value: 'TEXT', about: 'why (kept with the task)' } };
const CONTROL = (verb: string) => `${verb} a task (needs the tasks:cancel scope).`;

export const GROUPS: Readonly<Record<string, CommandGroup>> = {
  tenants: {
    help: `Tenant commands (an admin key; talk to a running server):\n${TENANTS_LINES}\n${CLIENT_OPTIONS}\n${ONE_COMMAND('tenants')}`,
    commands: {
      create: client('tenants create', '--name NAME [--id ID] [--rate-per-min N --burst N] [--max-running N]', 'Creates an isolated tenant and prints its id.', [], {
        name: { value: 'NAME', about: 'its name' },
        id: { value: 'ID', about: 'its id (default: generated, tnt_…)' },
        'rate-per-min': { value: 'N', about: "its rate limit: submits a minute per key (with --burst; default: the server's)" },
        burst: { value: 'N', about: 'submits allowed at once (with --rate-per-min)' },
        'max-running': { value: 'N', about: 'at most N of its tasks running at once, across every worker (default: no cap)' },
      }),
      update: client(
        'tenants update', 'TENANT_ID [--name NAME] [--rate-per-min N --burst N | --default-rate] [--max-running N | --no-cap]',
        'Renames a tenant or changes its rate limit or its cap on running tasks; prints the tenant.', ['TENANT_ID'], {
          name: { value: 'NAME', about: 'its new name' },
          'rate-per-min': { value: 'N', about: 'its rate limit: submits a minute per key (with --burst)' },
          burst: { value: 'N', about: 'submits allowed at once (with --rate-per-min)' },
          'default-rate': { about: "back to the server's rate limit" },
          'max-running': { value: 'N', about: 'at most N of its tasks running at once, across every worker' },
          'no-cap': { about: 'lift its cap on running tasks' },
        },
      ),
      list: client('tenants list', '[--limit 50] [--offset 0]', 'Lists the tenants.', [], PAGE_FLAGS(50)),
    },
  },
  keys: {
    help: `API key commands (talk to a running server):\n${KEYS_LINES}\n${CLIENT_OPTIONS}\n${ONE_COMMAND('keys')}`,
    commands: {
      create: client('keys create', '--name NAME --scopes tasks:read,tasks:execute [--tenant ID] [--expires-at RFC3339] [--user ID]',
        'Creates an API key and prints it: it is shown only once. Scopes: docs/security.md.', [], {
          name: { value: 'NAME', about: 'what it is for' },
          scopes: { value: 'S,S', about: 'comma-separated scopes, e.g. tasks:execute,tasks:read,tasks:list' },
          tenant: { value: 'ID', about: "in this tenant (an admin key) instead of the caller's" },
          'expires-at': { value: 'RFC3339', about: 'refused after this time, e.g. 2027-01-01T00:00:00Z' },
          user: { value: 'ID', about: 'the user it acts as (with --tenant)' },
        }),
      list: client('keys list', '[--limit 50] [--offset 0]', 'Lists the API keys (never their secrets).', [], PAGE_FLAGS(50)),
      revoke: client('keys revoke', 'KEY_ID', 'Revokes an API key: every request with it is refused from then on.', ['KEY_ID'], {}),
    },
  },
  tasks: {
    help: `${TASKS_HELP}\n${ONE_COMMAND('tasks')}`,
    commands: {
      submit: client('tasks submit', '(--query TEXT | --definition ID [--input JSON | --input @file.json]) [--session ID]\n    [--priority low|medium|high|urgent] [--idempotency-key K] [--wait | --follow] [--timeout-ms N]',
        'Submits a task and prints its id; --wait waits for its end and prints its output, --follow prints its\nevents as they arrive. Exit 0 submitted (with --wait/--follow: COMPLETED), 1 FAILED/CANCELLED/TIMEOUT,\n3 --timeout-ms ran out, 130 Ctrl-C (the task goes on).', [], {
          query: { value: 'TEXT', about: 'an agent task: what to do' },
          definition: { value: 'ID', about: 'a task definition (GET /api/v1/definitions lists them)' },
          input: { value: 'JSON', about: "the definition's input: JSON, or @file.json to read it from a file" },
          session: { value: 'ID', about: 'in this session' },
          priority: { value: 'P', about: 'low, medium, high or urgent (default: the definition\'s, else medium)' },
          'idempotency-key': { value: 'K', about: 'a submit repeated with the same key gives the same task' },
          wait: { about: 'wait for the end and print the output' },
          follow: { about: 'print the events until the end' },
          'timeout-ms': { value: 'N', about: 'with --wait or --follow: stop after N ms (exit 3)' },
        }),
      get: client('tasks get', 'TASK_ID', 'Shows a task: status, attempts, times, output or error.', ['TASK_ID'], {}),
      list: client('tasks list', '[--status S] [--session ID] [--definition ID] [--tag T] [--limit 20] [--offset 0]', 'Lists tasks, newest first (needs the tasks:list scope).', [], {
        status: { value: 'S', about: 'only these statuses, comma-separated (QUEUED, RUNNING, COMPLETED, FAILED, …)' },
        session: { value: 'ID', about: 'only this session\'s' },
        definition: { value: 'ID', about: 'only this definition\'s' },
        tag: { value: 'T', about: 'only tasks with this tag' },
        ...PAGE_FLAGS(20),
      }),
      events: client('tasks events', 'TASK_ID [--limit 50] [--offset 0]', "Prints a task's event log: seq, type, message.", ['TASK_ID'], PAGE_FLAGS(50)),
      watch: client('tasks watch', 'TASK_ID [--types A,B] [--last-event-id N]', "Prints a task's events as they arrive, until it ends (exit 0 however it ends; Ctrl-C 130).", ['TASK_ID'], {
        types: { value: 'A,B', about: 'only these event types, comma-separated' },
        'last-event-id': { value: 'N', about: 'start after the event with this seq' },
      }),
      wait: client('tasks wait', 'TASK_ID [--timeout-ms N]', "Waits for a task's end and prints its output: exit 0 COMPLETED, 1 FAILED/CANCELLED/TIMEOUT,\n3 --timeout-ms ran out, 130 Ctrl-C (the task goes on).", ['TASK_ID'], {
        'timeout-ms': { value: 'N', about: 'stop waiting after N ms (exit 3)' },
      }),
      cancel: client('tasks cancel', 'TASK_ID [--reason TEXT] [--force]', `${CONTROL('Cancels')} A running one ends when its executor stops, at the latest\nafter TASKGATE_CANCEL_GRACE_MS.`, ['TASK_ID'], {
        ...REASON,
        force: { about: 'end a running task at once' },
      }),
      pause: client('tasks pause', 'TASK_ID [--reason TEXT]', CONTROL('Pauses'), ['TASK_ID'], REASON),
      resume: client('tasks resume', 'TASK_ID [--reason TEXT]', CONTROL('Resumes'), ['TASK_ID'], REASON),
    },
  },
};

/** The flags that take a value, whichever command they belong to (their kinds agree across commands). */
export const VALUE_FLAGS: ReadonlySet<string> = new Set(
  [...Object.values(SERVER_COMMANDS), ...Object.values(GROUPS).flatMap((g) => Object.values(g.commands))]
    .flatMap((c) => Object.entries(c.flags))
    .filter(([, f]) => f.value !== undefined)
    .map(([name]) => name),
);
