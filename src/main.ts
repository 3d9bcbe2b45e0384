// Process entry: load config → open the database → migrate → bootstrap → compose the registry,
// event hub, signals, worker and HTTP app → listen. The only file that wires everything.
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { isIP, Server as NetServer } from 'node:net';
import { lookup } from 'node:dns/promises';
import { ConfigError, claimWindowFor, type Config } from './config/index.js';
import { openPg } from './storage/pg.js';
import { openPglite, writeSecretFile } from './storage/pglite.js';
import { makeDirs } from './storage/datadir-lock.js';
import { latestVersion, loadMigrations, migrate } from './storage/migrate.js';
import { StorageHealth } from './storage/unavailable.js';
import { bootstrap } from './auth/bootstrap.js';
import { EventHub, EVENTS_CHANNEL } from './events/hub.js';
import { Signals } from './events/signals.js';
import { channelName, type Db } from './storage/db.js';
import { DefinitionError, Registry, functionExecutor } from './executors/registry.js';
import { TenantDefinitionSync } from './executors/tenant-definitions.js';
import { createHttpExecutor, httpRequest } from './executors/http.js';
import { calculateOrderTotal, noop, sleep } from './executors/builtin/basic.js';
import { dataAnalysis } from './executors/builtin/data-analysis.js';
import { approvalDefinition, approvalExecutor } from './executors/approval.js';
import { Worker } from './engine/worker.js';
import { RetentionSweeper } from './engine/retention.js';
import { buildApp } from './api/app.js';
import { agentExecutorFor, openaiPluginFor } from './agent-wiring.js';
import { llmTemplates } from './executors/builtin/llm-templates.js';
import { streamRoutes, streamSlots } from './api/routes/stream.js';
import { StreamCredentials } from './api/stream-credentials.js';
import { apiKeysStates } from './storage/queries/tenants.js';
import { timelineRoutes } from './api/routes/timeline.js';
import { sessionRoutes } from './api/routes/sessions.js';
import { ConnectionLimiter } from './auth/connection-limiter.js';
import { Metrics } from './api/metrics.js';
import { tasksQueueStats } from './storage/queries/tasks.js';
import { idempotencyKeysReleaseAll } from './storage/queries/idempotency.js';
import { createLogger, taskLogger } from './logger.js';
import { VERSION } from './version.js';

export async function openDatabase(config: Config, log?: Logger): Promise<Db> {
  if (config.databaseUrl) {
    const onError = (err: Error) => log?.warn({ err }, 'database connection error');
    if (config.databaseSchema) {
      const admin = await openPg({ connectionString: config.databaseUrl, maxConnections: 1, onError, source: 'DATABASE_URL' });
      try {
        // created only when missing: CREATE SCHEMA needs CREATE on the database even with IF NOT
        // EXISTS, which a data-only role on a migrated database does not have. (The name is a
        // plain identifier, checked by loadConfig.)
        const found = await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [config.databaseSchema]);
        if (found.rows.length === 0) {
          // IF NOT EXISTS is not atomic: concurrent starters can both try to create it, and the
          // loser fails with 23505 (pg_namespace's unique index) or 42P06 — it exists, all we need
          await admin.exec(`CREATE SCHEMA IF NOT EXISTS "${config.databaseSchema}"`).catch((err: unknown) => {
            const code = (err as { code?: unknown } | null)?.code;
            if (code !== '23505' && code !== '42P06') throw err;
          });
        }
      } finally {
        await admin.close();
      }
    }
    return openPg({ connectionString: config.databaseUrl, schema: config.databaseSchema, maxConnections: config.databasePoolSize, onError, source: 'DATABASE_URL' });
  }
  return openPglite({ dataDir: config.dataDir });
}

export async function createRegistry(config: Config): Promise<Registry> {
  const registry = new Registry()
    .addExecutor(functionExecutor)
    .addExecutor(approvalExecutor)
    .addExecutor(createHttpExecutor({ timeoutMs: config.httpTimeoutMs, maxResponseBytes: config.httpMaxResponseBytes, allowList: config.httpAllowList }))
    .addDefinition(noop)
    .addDefinition(sleep)
    .addDefinition(calculateOrderTotal(config.taxRate))
    .addDefinition(dataAnalysis)
    .addDefinition(httpRequest)
    .addDefinition(approvalDefinition);
  for (const def of llmTemplates) registry.addDefinition(def);
  if (config.tasksDir) {
    try {
      await registry.loadTasksDir(config.tasksDir);
    } catch (err) {
      if (err instanceof DefinitionError) throw new ConfigError(`--tasks-dir/TASKGATE_TASKS_DIR: ${err.message}`, { cause: err });
      throw err;
    }
  }
  return registry;
}

export interface Server {
  app: FastifyInstance;
  db: Db;
  worker: Worker | undefined;
  /** The retention sweep, in worker processes when TASKGATE_TASK_RETENTION is set. */
  retention: RetentionSweeper | undefined;
  registry: Registry;
  hub: EventHub;
  signals: Signals;
  /** The URL the server listens on. */
  url: string;
  /** The generated admin key, on first start only. */
  adminKey: string | undefined;
  /**
   * Stops the process's server. `drainMs` (serve's SIGTERM: TASKGATE_SHUTDOWN_DRAIN_MS): first
   * answer every request 503 with `Connection: close` for up to that long, until no client
   * connection is left — closing at once reset keep-alive connections whose next request the
   * server had not read yet (under load, a third of them), and their clients could not tell
   * whether a POST was taken.
   */
  close(opts?: { drainMs?: number }): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Use this database instead of opening one (tests share a PGlite instance per file). */
  db?: Db;
  /** Do not listen on a port (app.inject only). */
  noListen?: boolean;
  /** Print the bootstrap key to stdout (the CLI does; tests do not). */
  announce?: (line: string) => void;
  /**
   * Whether the announcement may carry the key itself when the key file was written (default
   * true). The CLI passes whether stdout is a terminal: in a container stdout is the log, and
   * the key would sit in the log pipeline. A key that could not be saved is always shown.
   */
  showKey?: boolean;
}

/**
 * Redis in /readiness: an API process is unready without it (PRODUCT §3: "database and Redis
 * reachable"), unless TASKGATE_READINESS_REDIS=advisory — then it is reported as degraded, except
 * when rate limits fail closed (limited routes really answer 503 without it). A worker limits
 * nothing: Redis is reported there, never gating.
 */
function redisReadiness(config: Config, redis: (() => Promise<void>) | undefined): { readinessChecks?: (() => Promise<void>)[]; advisoryChecks?: (() => Promise<void>)[] } {
  if (!redis) return {};
  const gates = config.role !== 'worker' && (config.security.readinessRedis === 'required' || config.security.rateLimitFailMode === 'closed');
  return gates ? { readinessChecks: [redis] } : { advisoryChecks: [redis] };
}

/** How long a start waits for Redis before serving without it (per TASKGATE_RATE_LIMIT_FAIL_MODE meanwhile). */
const REDIS_START_WAIT_MS = 2_000;

/**
 * ConfigError unless `host` is an IP address or resolves to one; then, for a fixed port, net's
 * listen error if the port cannot be had (in use, privileged): found before the database is
 * opened, a first start on a taken port created it and printed an admin key, then failed.
 */
async function checkListen(host: string, port: number): Promise<void> {
  if (!isIP(host)) {
    try {
      await lookup(host);
    } catch (err) {
      throw new ConfigError(`HOST / --host: ${host} does not resolve to an address to listen on (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  if (port === 0) return;
  const probe = new NetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ host, port, exclusive: true }, () => resolve());
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

export async function startServer(config: Config, opts: StartOptions = {}): Promise<Server> {
  const log = opts.logger ?? createLogger(config.logLevel);
  if (config.authDisabled) {
    log.warn({ host: config.host }, 'AUTHENTICATION IS DISABLED: every request acts as admin of the default tenant. Loopback only; for local development.');
  }
  if (config.security.jwt?.secret && Buffer.byteLength(config.security.jwt.secret) < 32) {
    log.warn('TASKGATE_JWT_SECRET is shorter than 32 bytes: HS256 secrets should carry at least 256 bits');
  }
  // the task kinds first: a bad --tasks-dir stops the start before the database is opened
  const registry = await createRegistry(config);
  // and a HOST that names no address or a port already taken: they failed at listen, after the
  // database was created and an admin key printed
  if (!opts.noListen) await checkListen(config.host, config.port);
  const db = opts.db ?? (await openDatabase(config, log));
  const ownsDb = !opts.db;
  // ioredis loads only when Redis is configured (~7 MB of RSS otherwise)
  const shared = config.redisUrl ? (await import('./auth/redis.js')).openRedisRateLimits(config.redisUrl, log) : undefined;
  let definitionSync: TenantDefinitionSync | undefined;
  // what a failed start stops again, last started first (an injected database outlives the start:
  // the hub's and signals' LISTENs on it would stay behind; an owned one is closed with them)
  const undo: (() => Promise<unknown>)[] = [];
  try {
    const applied = await migrate(db);
    if (applied.length) {
      // which, by name, and the version the schema is at now (an operator upgrading reads this line)
      const names = loadMigrations().filter((m) => applied.includes(m.version)).map((m) => m.name);
      log.info({ versions: applied, names, schema_version: latestVersion() }, 'applied migrations');
    }
    // every finished task leaves a dead row version behind: without autovacuum (or a scheduled
    // VACUUM) the tables and their indexes grow without bound and claims slow down
    if (db.kind === 'pg') {
      const av = await db.query<{ on: string }>(`SELECT current_setting('autovacuum') AS on`).catch(() => undefined);
      if (av?.rows[0]?.on === 'off') log.warn('PostgreSQL autovacuum is off: dead row versions of finished tasks pile up in tasks, task_events and their indexes; turn it on or VACUUM (ANALYZE) them on a schedule');
    }
    // an embedded database serves this process alone: an in-flight Idempotency-Key left in it is a
    // request of a process that was killed, and its key is free again now, not after its lock
    if (ownsDb && db.kind === 'pglite') {
      const released = await idempotencyKeysReleaseAll(db);
      if (released) log.info({ released }, 'released the Idempotency-Keys of requests a previous run did not finish');
    }
    // buckets shared from the first request on; a Redis that is down does not hold up the start
    if (shared && !(await shared.connected(REDIS_START_WAIT_MS))) log.warn({ fail_mode: config.security.rateLimitFailMode }, 'redis not reachable at start: rate limits follow TASKGATE_RATE_LIMIT_FAIL_MODE until it is');
    const boot = await bootstrap(db, config.adminKey);
    if (boot.adminKeyRevoked) log.warn('TASKGATE_ADMIN_KEY names a revoked API key: it stays revoked and does not authenticate; set a new one or unset it');
    if (boot.generatedKey) {
      const keyFile = join(config.dataDir, 'admin.key');
      let notSaved: string | undefined;
      try {
        makeDirs(config.dataDir);
        writeSecretFile(keyFile, boot.generatedKey + '\n');
      } catch (err) {
        // the key is committed already: losing the file must not lose the only copy shown
        notSaved = `NOT saved: ${keyFile}: ${(err as Error).message}`;
      }
      opts.announce?.(notSaved === undefined && opts.showKey === false
        ? `Created tenant "${boot.tenantId}" and an admin API key, saved to ${keyFile} (not printed: standard output is not a terminal)`
        : `Created tenant "${boot.tenantId}" and an admin API key (shown once, ${notSaved ?? `also saved to ${keyFile}`}):\n  ${boot.generatedKey}`);
    }

    const crossProcess = db.kind === 'pg' && config.listenNotify;
    const onError = (err: unknown) => log.warn({ err }, 'notification error');
    const hub = new EventHub(db, { crossProcess, onError, channel: channelName(db.schema, EVENTS_CHANNEL) });
    const signals = new Signals(db, { crossProcess, onError });
    undo.push(() => hub.stop());
    await hub.start();
    undo.push(() => signals.stop());
    await signals.start();
    // tenants' own definitions (admin API): loaded before the first request or claim, then kept fresh
    definitionSync = new TenantDefinitionSync(db, registry, { signals, onError: (err) => log.warn({ err }, 'tenant definitions') });
    await definitionSync.start();
    registry.addExecutor(agentExecutorFor(config, config.llm, { db, hub, signals, registry }));
    const metrics = new Metrics();
    metrics.queueSource = () => tasksQueueStats(db).catch((err: unknown) => {
      log.warn({ err }, 'metrics: the queue could not be read');
      throw err;
    });

    // a full disk fails writes while reads (and so the readiness probe's query) still work: the
    // API's failed requests and the worker's failed statements both say so in /readiness
    const storage = new StorageHealth();
    let worker: Worker | undefined;
    if (config.role !== 'api') {
      worker = new Worker(
        {
          workerId: `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`,
          concurrency: config.concurrency, leaseMs: config.leaseMs, pollIntervalMs: config.pollIntervalMs,
          reaperIntervalMs: config.reaperIntervalMs, cancelGraceMs: config.cancelGraceMs, shutdownGraceMs: config.shutdownGraceMs,
          approvalTimeoutMs: config.approvalTimeoutMs, claimWindowMs: claimWindowFor(config.claimWindowMs, db.kind),
        },
        {
          db, hub, signals, registry, log: taskLogger(log.child({ component: 'worker' })),
          onClaimed: (n) => metrics.tasksClaimed.inc(n),
          onOutcome: (_t, status) => metrics.countOutcome(status),
          onDbError: (err) => storage.note(err),
        },
      );
      metrics.activeAttemptsSource = () => worker?.activeCount ?? 0;
    }
    if (config.taskRetentionMs > 0 && config.role === 'api') {
      log.warn('TASKGATE_TASK_RETENTION is set on an api process: only worker processes (or `taskgate prune`) delete old tasks');
    }
    if (config.taskRetentionMs > 0 && config.taskRetentionMs < config.security.idempotencyTtlMs) {
      log.warn({ retention_ms: config.taskRetentionMs, idempotency_ttl_ms: config.security.idempotencyTtlMs }, 'TASKGATE_TASK_RETENTION is shorter than the idempotency TTL: a replayed submit can name a task already deleted');
    }
    const retention = config.role !== 'api' && config.taskRetentionMs > 0
      ? new RetentionSweeper(
        { retentionMs: config.taskRetentionMs, intervalMs: config.retentionIntervalMs },
        { db, log: taskLogger(log.child({ component: 'retention' })), onDeleted: (kind, n) => metrics.retentionDeleted.inc({ kind }, n) },
      )
      : undefined;

    // one per-principal cap for the stream routes and the streaming chat completions, and one
    // watch on their credentials (a revoked or expired one ends its streams and chat calls)
    const streamLimiter = new ConnectionLimiter(config.security.maxStreamsPerPrincipal);
    const credentials = new StreamCredentials({
      lookup: (ids) => apiKeysStates(db, ids),
      onCredentials: (fn) => signals.onCredentials(fn),
      jwtGraceMs: (config.security.jwt?.clockToleranceS ?? 0) * 1000,
      onError: (err) => log.warn({ err }, 'stream credentials: re-reading API keys failed (retried at the next hint or sweep)'),
    });
    const app = await buildApp(
      { config, db, hub, signals, catalog: registry, definitions: definitionSync, metrics, version: VERSION, ...redisReadiness(config, shared?.redis), dispatch: worker, storage },
      {
        role: config.role, logger: log, rateLimiter: shared?.limiter,
        plugins: [
          streamRoutes(
            { db, hub, metrics, credentials, limiter: streamLimiter },
            {
              pingIntervalMs: config.streamPingIntervalMs, maxBufferedBytes: config.streamMaxBufferedBytes,
              stallMs: config.streamStallMs, maxPerPrincipal: config.security.maxStreamsPerPrincipal,
            },
          ),
          async (scope) => timelineRoutes(scope, { db }),
          async (scope) => sessionRoutes(scope, { db }),
          openaiPluginFor(config.llm, { db, hub, signals, credentials, metrics, shutdownGraceMs: config.shutdownGraceMs, stallMs: config.streamStallMs, streamSlots: streamSlots(streamLimiter, config.security.maxStreamsPerPrincipal) }),
        ],
      },
    );
    undo.push(() => app.close());
    let url = '';
    if (!opts.noListen) {
      url = await app.listen({ port: config.port, host: config.host });
    } else {
      await app.ready();
    }
    worker?.start();
    retention?.start();

    let closing: Promise<void> | undefined;
    const close = (o: { drainMs?: number } = {}) =>
      (closing ??= (async () => {
        if (o.drainMs && url) await drain(app, o.drainMs);
        const release = url ? closeConnectionsWithin(app, config.shutdownGraceMs + CUT_MARGIN_MS) : undefined;
        // together: a request still open may wait for a task this worker runs (a chat completion),
        // which its grace lets finish (a stopping worker takes no direct dispatch)
        const stopped = await Promise.allSettled([app.close(), worker?.stop()]);
        release?.();
        await retention?.stop();
        definitionSync?.stop();
        await signals.stop();
        await hub.stop();
        await shared?.limiter.close();
        if (ownsDb) await db.close();
        for (const r of stopped) if (r.status === 'rejected') throw r.reason;
      })());
    return { app, db, worker, retention, registry, hub, signals, url, adminKey: boot.generatedKey, close };
  } catch (err) {
    for (const stop of undo.reverse()) await stop().catch(() => {});
    definitionSync?.stop();
    await shared?.limiter.close().catch(() => {});
    if (ownsDb) await db.close().catch(() => {});
    throw err;
  }
}

/** After the grace, how long the answers of calls ended by it (503s written then) have to go out. */
const CUT_MARGIN_MS = 1_000;

/**
 * While the server closes (after the drain): a connection closes as soon as its answer is out —
 * Node's close drops only the connections idle at that moment, and one whose answer came later
 * stayed open for good — and whatever is still open after `ms` is cut: a client dribbling its
 * headers or body (Node stops enforcing its header and request timeouts on a closing server) held
 * the exit until the forced one. `ms` is the grace plus a margin: calls waiting for a task are
 * answered 503 at the grace. Returns the stop of the watch.
 */
function closeConnectionsWithin(app: FastifyInstance, ms: number): () => void {
  const until = Date.now() + ms;
  const timer = setInterval(() => {
    if (Date.now() < until) app.server.closeIdleConnections();
    else app.server.closeAllConnections();
  }, 50);
  return () => clearInterval(timer);
}

/**
 * Stops taking connections (a client's connect is refused: nothing sent, safe to retry elsewhere)
 * and answers every request on the open ones 503 with Connection: close, until none is left or
 * `ms` passed. net.Server's close, not http.Server's: that one also drops the idle keep-alive
 * connections at once, whose next request may be on its way (a reset, the client cannot tell
 * whether a POST was taken). Fastify's close then finds the server stopped, as it allows.
 */
async function drain(app: FastifyInstance, ms: number): Promise<void> {
  app.refuseRequests();
  if (app.server.listening) NetServer.prototype.close.call(app.server);
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const open = await new Promise<number>((resolve) => app.server.getConnections((err, n) => resolve(err ? 0 : n)));
    if (open === 0) return;
    await new Promise((r) => setTimeout(r, Math.min(50, until - Date.now())));
  }
}
