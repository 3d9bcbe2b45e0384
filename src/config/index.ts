// Configuration is read once, from flags and the environment, into one frozen Config.
// Every option, its variable, flag and default is listed in docs/configuration.md.
import { httpAllowList } from './allow-list.js';
import { LlmConfigError, loadLlmConfig, type LlmConfig } from './llm.js';
import { loadSecurityConfig, type SecurityConfig } from './security.js';
import { bool, ConfigError, int, list, MAX_JITTERED_TIMER_MS, MAX_TIMER_MS, num, oneOf, parseDuration, str } from './parse.js';

export { ConfigError, parseDuration } from './parse.js';

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA_DIR = './.taskgate';
/** PostgreSQL pool per process: 2 cores rarely benefit from more. */
export const DEFAULT_DB_POOL_SIZE = 20;
/** Worker slots per process. */
export const DEFAULT_CONCURRENCY = 10;
/** Lease length; heartbeats renew it every third of it. */
export const DEFAULT_LEASE_MS = 30_000;
/** Claim poll interval; the real wait is jittered ±25 %. NOTIFY usually wakes the loop first. */
export const DEFAULT_POLL_INTERVAL_MS = 1_000;
/** How often expired leases are looked for. */
export const DEFAULT_REAPER_INTERVAL_MS = 5_000;
/** On SIGTERM, running attempts get this long to finish before their leases are released. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** On SIGTERM, requests are answered 503 with Connection: close this long (at most) before the server closes. */
export const DEFAULT_SHUTDOWN_DRAIN_MS = 1_000;
/** A cancelled running task whose executor ignores its AbortSignal is forced CANCELLED after this. */
export const DEFAULT_CANCEL_GRACE_MS = 5_000;
/** Claim window (engine/claim-window.ts): long enough for a batch of short tasks, short enough to go unnoticed. */
export const DEFAULT_CLAIM_WINDOW_MS = 10;

/**
 * The claim window a worker uses on this database. Off by default on PGlite: its one connection
 * is held by an open transaction, so every other statement of the process would wait for the
 * window (and measured, e2e on PGlite went 2.0–2.3k → 1.8k tasks/s with it).
 */
export const claimWindowFor = (configured: number | undefined, db: 'pg' | 'pglite'): number =>
  configured ?? (db === 'pg' ? DEFAULT_CLAIM_WINDOW_MS : 0);
export const DEFAULT_TASK_TIMEOUT_MS = 300_000;
export const DEFAULT_BODY_LIMIT_BYTES = 1_048_576;
export const DEFAULT_MAX_JSON_DEPTH = 64;
/** metadata and context are each capped at 64 KiB of JSON. */
export const DEFAULT_MAX_OBJECT_BYTES = 65_536;
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;
export const DEFAULT_HTTP_MAX_RESPONSE_BYTES = 5_242_880;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 72_000;
export const DEFAULT_TAX_RATE = 0.08;
/** SSE `: ping` comment / WebSocket ping interval. */
export const DEFAULT_STREAM_PING_MS = 10_000;
/** A live stream client with more than this queued and unread leaves the live fan-out (1 MiB ≈ 3,000 typical events). */
export const DEFAULT_STREAM_BUFFER_BYTES = 1_048_576;
/** A stream client that is behind and reads nothing for this long is dropped (it resumes with Last-Event-ID). */
export const DEFAULT_STREAM_STALL_MS = 15_000;
/** A pending approval is denied with reason `approval timeout` after this. */
export const DEFAULT_APPROVAL_TIMEOUT_MS = 3_600_000;
/** How often the retention sweep runs when TASKGATE_TASK_RETENTION is set. */
export const DEFAULT_RETENTION_INTERVAL_MS = 600_000;
/** The longest default task timeout: what a task's own `timeout_ms` may ask (src/contract/tasks.ts). */
const MAX_TASK_TIMEOUT_MS = 86_400_000;
/** The longest default approval timeout: what an approval's own `timeout_ms` may ask (src/contract/definitions.ts). */
/**
 * REDIS_URL as the Redis client takes it: a redis:// or rediss:// URL, or a socket's absolute path.
 * Anything else it reads as a socket path that is not there — `http://127.0.0.1:6379` started, and
 * (failing open) served without a rate limit.
 */
function redisUrl(v: string | undefined): string | undefined {
  if (v === undefined || v.startsWith('/')) return v;
  if (!/^rediss?:\/\//i.test(v) || !URL.canParse(v)) {
    throw new ConfigError(`REDIS_URL must be a redis:// or rediss:// URL (redis://host:6379/0) or a socket's absolute path; got one starting ${JSON.stringify(v.slice(0, 12))}`);
  }
  return v;
}

/** The longest an approval may wait (TASKGATE_APPROVAL_TIMEOUT_MS, a definition's approval.timeout_ms, ctx.waitForApproval's timeoutMs). */
export const MAX_APPROVAL_TIMEOUT_MS = 30 * 86_400_000;

export type Role = 'api' | 'worker' | 'all';
export type ErrorFormat = 'envelope' | 'reference';
/** pino's levels. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  /** Server PostgreSQL; when absent, embedded PGlite in dataDir. */
  readonly databaseUrl: string | undefined;
  /** PostgreSQL schema to use instead of public (TASKGATE_DB_SCHEMA); created if missing. */
  readonly databaseSchema: string | undefined;
  /** Connections in the PostgreSQL pool of each process (TASKGATE_DB_POOL_SIZE); LISTEN takes one more. */
  readonly databasePoolSize: number;
  readonly redisUrl: string | undefined;
  readonly role: Role;
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly pollIntervalMs: number;
  readonly reaperIntervalMs: number;
  readonly shutdownGraceMs: number;
  /** TASKGATE_SHUTDOWN_DRAIN_MS: on SIGTERM, how long requests are answered 503 before the server closes (main.ts). */
  readonly shutdownDrainMs: number;
  readonly cancelGraceMs: number;
  /**
   * Claim window: how long claimed tasks may run before their claim is written; 0 = off. Unset:
   * DEFAULT_CLAIM_WINDOW_MS on PostgreSQL, off on PGlite (see claimWindowFor).
   */
  readonly claimWindowMs: number | undefined;
  readonly defaultTimeoutMs: number;
  readonly approvalTimeoutMs: number;
  /**
   * Ended tasks (with their events, steps, approvals) and soft-deleted sessions older than this are
   * deleted (engine/retention.ts); 0 = keep everything (the default).
   */
  readonly taskRetentionMs: number;
  readonly retentionIntervalMs: number;
  readonly tasksDir: string | undefined;
  readonly adminKey: string | undefined;
  readonly bodyLimitBytes: number;
  readonly maxJsonDepth: number;
  readonly maxObjectBytes: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly httpTimeoutMs: number;
  readonly httpMaxResponseBytes: number;
  /** Hosts, IPs or CIDRs the http executor may reach even if private/loopback. */
  readonly httpAllowList: readonly string[];
  readonly taxRate: number;
  readonly logLevel: string;
  readonly authDisabled: boolean;
  readonly corsOrigins: readonly string[];
  /**
   * `envelope` (PRODUCT §3) or `reference`: the reference gateway's `{"error": "<message>"}` with
   * code, details and request_id beside it, for the Shannon Python SDK (docs/sdk.md).
   */
  readonly errorFormat: ErrorFormat;
  /** Present only for LISTEN/NOTIFY-less deployments, tests and benchmarks. */
  readonly listenNotify: boolean;
  /** LLM providers, tiers and prices (src/config/llm.ts, docs/agents.md); undefined = none configured. */
  readonly llm?: LlmConfig;
  /** JWT, rate limits, idempotency, stream caps (src/config/security.ts, docs/security.md). */
  readonly security: SecurityConfig;
  /** SSE/WebSocket pings, per-client buffer and stall limit (docs/streaming.md). */
  readonly streamPingIntervalMs: number;
  readonly streamMaxBufferedBytes: number;
  readonly streamStallMs: number;
}

type Flags = Record<string, string | boolean>;

/**
 * TASKGATE_ADMIN_KEY must be a key the API can accept: 16–512 characters of `A-Z a-z 0-9 _ -`
 * (a key with a dot is read as a JWT; shorter than 8 is never looked up; under 16 is guessable).
 * Anything else would be stored and then refuse every request, locking the operator out.
 */
function adminKey(raw: string | undefined): string | undefined {
  const key = str(raw);
  if (key !== undefined && !/^[A-Za-z0-9_-]{16,512}$/.test(key)) {
    throw new ConfigError('TASKGATE_ADMIN_KEY must be 16–512 characters of A-Z, a-z, 0-9, _ and - (e.g. sk_ and 32 random characters); a key with a dot is read as a JWT');
  }
  return key;
}

/**
 * TASKGATE_DB_SCHEMA: a plain lower-case identifier (as PostgreSQL folds unquoted names), so it
 * never needs quoting in a statement or a search_path — checked before any statement uses it.
 */
function databaseSchema(raw: string | undefined): string | undefined {
  const schema = str(raw);
  if (schema !== undefined && (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema) || schema.startsWith('pg_'))) {
    throw new ConfigError(`TASKGATE_DB_SCHEMA must be 1–63 characters of a-z, 0-9 and _, not starting with a digit or pg_; got ${JSON.stringify(schema)}`);
  }
  return schema;
}

/** Literal loopback addresses only: `127.0.0.1.example.com` is a name that can resolve anywhere. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The environment with every empty or blank variable left out: "an empty variable counts as
 * unset" (configuration.md) holds for every setting, whatever reads it — `HOST=` bound every
 * interface and `TASKGATE_DATA_DIR=` ran an in-memory database when `??` took '' as set.
 */
function setVariables(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v.trim() !== '') out[k] = v;
  return out;
}

export function loadConfig(flags: Flags = {}, rawEnv: Record<string, string | undefined> = process.env): Config {
  const env = setVariables(rawEnv);
  const role = oneOf('--role/TASKGATE_ROLE', str(flags.role) ?? env.TASKGATE_ROLE, ['api', 'worker', 'all'], 'all');
  const host = str(flags.host) ?? env.HOST ?? DEFAULT_HOST;
  const authDisabled = bool('--no-auth', flags['no-auth']) || bool('TASKGATE_AUTH_DISABLED', env.TASKGATE_AUTH_DISABLED);
  if (authDisabled && !isLoopbackHost(host)) {
    throw new ConfigError(`auth can only be disabled when bound to a loopback address (host is ${host})`);
  }
  const leaseMs = int('TASKGATE_LEASE_MS', env.TASKGATE_LEASE_MS, DEFAULT_LEASE_MS, 100, MAX_TIMER_MS);
  let llm: LlmConfig | undefined;
  try {
    llm = loadLlmConfig(env);
  } catch (err) {
    if (err instanceof LlmConfigError) throw new ConfigError(err.message, { cause: err });
    throw err;
  }
  const config: Config = {
    port: int('--port/PORT', flags.port ?? env.PORT, DEFAULT_PORT, 0, 65535),
    host,
    dataDir: str(flags['data-dir']) ?? env.TASKGATE_DATA_DIR ?? DEFAULT_DATA_DIR,
    databaseUrl: str(flags['database-url']) ?? str(env.DATABASE_URL),
    databaseSchema: databaseSchema(env.TASKGATE_DB_SCHEMA),
    databasePoolSize: int('TASKGATE_DB_POOL_SIZE', env.TASKGATE_DB_POOL_SIZE, DEFAULT_DB_POOL_SIZE, 1, 1000),
    redisUrl: redisUrl(str(env.REDIS_URL)),
    role,
    concurrency: int('--concurrency/TASKGATE_CONCURRENCY', flags.concurrency ?? env.TASKGATE_CONCURRENCY, DEFAULT_CONCURRENCY, 1, 10_000),
    leaseMs,
    pollIntervalMs: int('TASKGATE_POLL_INTERVAL_MS', env.TASKGATE_POLL_INTERVAL_MS, DEFAULT_POLL_INTERVAL_MS, 10, MAX_JITTERED_TIMER_MS),
    reaperIntervalMs: int('TASKGATE_REAPER_INTERVAL_MS', env.TASKGATE_REAPER_INTERVAL_MS, Math.min(DEFAULT_REAPER_INTERVAL_MS, leaseMs), 10, MAX_JITTERED_TIMER_MS),
    shutdownGraceMs: int('TASKGATE_SHUTDOWN_GRACE_MS', env.TASKGATE_SHUTDOWN_GRACE_MS, DEFAULT_SHUTDOWN_GRACE_MS, 0, MAX_TIMER_MS),
    shutdownDrainMs: int('TASKGATE_SHUTDOWN_DRAIN_MS', env.TASKGATE_SHUTDOWN_DRAIN_MS, DEFAULT_SHUTDOWN_DRAIN_MS, 0, 60_000),
    cancelGraceMs: int('TASKGATE_CANCEL_GRACE_MS', env.TASKGATE_CANCEL_GRACE_MS, DEFAULT_CANCEL_GRACE_MS, 0, MAX_TIMER_MS),
    claimWindowMs: str(env.TASKGATE_CLAIM_WINDOW_MS) === undefined ? undefined : int('TASKGATE_CLAIM_WINDOW_MS', env.TASKGATE_CLAIM_WINDOW_MS, DEFAULT_CLAIM_WINDOW_MS, 0, 1000),
    defaultTimeoutMs: int('TASKGATE_DEFAULT_TIMEOUT_MS', env.TASKGATE_DEFAULT_TIMEOUT_MS, DEFAULT_TASK_TIMEOUT_MS, 1, MAX_TASK_TIMEOUT_MS),
    approvalTimeoutMs: int('TASKGATE_APPROVAL_TIMEOUT_MS', env.TASKGATE_APPROVAL_TIMEOUT_MS, DEFAULT_APPROVAL_TIMEOUT_MS, 1, MAX_APPROVAL_TIMEOUT_MS),
    taskRetentionMs: parseDuration('TASKGATE_TASK_RETENTION', env.TASKGATE_TASK_RETENTION),
    retentionIntervalMs: int('TASKGATE_RETENTION_INTERVAL_MS', env.TASKGATE_RETENTION_INTERVAL_MS, DEFAULT_RETENTION_INTERVAL_MS, 100, MAX_JITTERED_TIMER_MS),
    tasksDir: str(flags['tasks-dir']) ?? str(env.TASKGATE_TASKS_DIR),
    adminKey: adminKey(env.TASKGATE_ADMIN_KEY),
    bodyLimitBytes: int('TASKGATE_BODY_LIMIT_BYTES', env.TASKGATE_BODY_LIMIT_BYTES, DEFAULT_BODY_LIMIT_BYTES, 1024),
    maxJsonDepth: int('TASKGATE_MAX_JSON_DEPTH', env.TASKGATE_MAX_JSON_DEPTH, DEFAULT_MAX_JSON_DEPTH, 2, 1000),
    maxObjectBytes: int('TASKGATE_MAX_OBJECT_BYTES', env.TASKGATE_MAX_OBJECT_BYTES, DEFAULT_MAX_OBJECT_BYTES, 1024),
    requestTimeoutMs: int('TASKGATE_REQUEST_TIMEOUT_MS', env.TASKGATE_REQUEST_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, 0, MAX_TIMER_MS),
    keepAliveTimeoutMs: int('TASKGATE_KEEP_ALIVE_TIMEOUT_MS', env.TASKGATE_KEEP_ALIVE_TIMEOUT_MS, DEFAULT_KEEP_ALIVE_TIMEOUT_MS, 0, MAX_TIMER_MS),
    httpTimeoutMs: int('TASKGATE_HTTP_TIMEOUT_MS', env.TASKGATE_HTTP_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUT_MS, 1, MAX_TIMER_MS),
    httpMaxResponseBytes: int('TASKGATE_HTTP_MAX_RESPONSE_BYTES', env.TASKGATE_HTTP_MAX_RESPONSE_BYTES, DEFAULT_HTTP_MAX_RESPONSE_BYTES, 1),
    httpAllowList: httpAllowList('TASKGATE_HTTP_ALLOW_LIST', env.TASKGATE_HTTP_ALLOW_LIST),
    taxRate: num('TASKGATE_TAX_RATE', env.TASKGATE_TAX_RATE, DEFAULT_TAX_RATE, 0, 1),
    logLevel: oneOf('LOG_LEVEL', env.LOG_LEVEL, LOG_LEVELS, 'info'),
    authDisabled,
    corsOrigins: corsOrigins('TASKGATE_CORS_ORIGINS', env.TASKGATE_CORS_ORIGINS),
    errorFormat: oneOf('TASKGATE_ERROR_FORMAT', env.TASKGATE_ERROR_FORMAT, ['envelope', 'reference'], 'envelope'),
    listenNotify: !bool('TASKGATE_DISABLE_LISTEN', env.TASKGATE_DISABLE_LISTEN),
    llm,
    security: loadSecurityConfig(env),
    streamPingIntervalMs: int('TASKGATE_STREAM_PING_MS', env.TASKGATE_STREAM_PING_MS, DEFAULT_STREAM_PING_MS, 10, MAX_TIMER_MS),
    streamMaxBufferedBytes: int('TASKGATE_STREAM_BUFFER_BYTES', env.TASKGATE_STREAM_BUFFER_BYTES, DEFAULT_STREAM_BUFFER_BYTES, 1024),
    streamStallMs: int('TASKGATE_STREAM_STALL_MS', env.TASKGATE_STREAM_STALL_MS, DEFAULT_STREAM_STALL_MS, 10, MAX_TIMER_MS),
  };
  return Object.freeze(config);
}

/**
 * Browser origins as a browser sends them in `Origin` (`https://app.example.com`, with a port when
 * not the default), or `*`: anything else never matches — `https://app.example.com/` (a trailing
 * slash) or `app.example.com` quietly allowed nobody.
 */
function corsOrigins(name: string, raw: string | undefined): string[] {
  return list(raw).map((v) => {
    if (v === '*') return v;
    let origin: string | undefined;
    try {
      origin = new URL(v).origin;
    } catch {
      origin = undefined;
    }
    if (!origin || origin === 'null' || !/^https?:/.test(origin)) throw new ConfigError(`${name}: ${v} is not an origin: scheme and host, e.g. https://app.example.com`);
    if (origin !== v) throw new ConfigError(`${name}: ${v} is not an origin as browsers send it: did you mean ${origin}?`);
    return v;
  });
}
