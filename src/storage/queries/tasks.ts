// DML for the tasks table (the queue). One exported function per statement; every state change
// states its precondition in the WHERE clause and returns what it changed (zero rows = lost race).
import type { Queryable } from '../db.js';
import type { TaskStatus } from '../../domain/lifecycle.js';
import { nowPlusMsSql, startedEvent, startedEventSql, type ClaimedTask, type ClaimResult } from './transitions.js';

export interface TaskRow {
  id: string;
  tenant_id: string;
  user_id: string;
  session_id: string | null;
  kind: 'agent' | 'definition';
  task_definition_id: string | null;
  query: string;
  input: unknown;
  context: Record<string, unknown>;
  options: Record<string, unknown>;
  mode: string | null;
  priority: number;
  status: TaskStatus;
  attempt: number;
  max_attempts: number;
  retry_interval_ms: number;
  backoff_multiplier: number;
  timeout_ms: number;
  run_at: Date;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  cancel_requested: boolean;
  cancel_reason: string | null;
  cancelled_by: string | null;
  pause_requested: boolean;
  pause_reason: string | null;
  paused_by: string | null;
  paused_at: Date | null;
  output: unknown;
  result: string | null;
  error: string | null;
  model_used: string | null;
  provider: string | null;
  usage: Record<string, number> | null;
  metadata: Record<string, unknown>;
  tags: string[];
  workflow_instance_id: string | null;
  last_worker: string | null;
  /** Set while the task waits for a human decision, holding no lease. */
  awaiting_approval_id: string | null;
  /** Only on claimed rows: whether the task has recorded any durable step. */
  has_steps?: boolean;
  last_seq: number;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  updated_at: Date;
}

export interface NewTask {
  id: string;
  tenant_id: string;
  user_id: string;
  session_id: string | null;
  kind: 'agent' | 'definition';
  task_definition_id: string | null;
  query: string;
  input: unknown;
  context: Record<string, unknown>;
  options: Record<string, unknown>;
  mode: string | null;
  priority: number;
  max_attempts: number;
  retry_interval_ms: number;
  backoff_multiplier: number;
  timeout_ms: number;
  /** null = now() on the database clock (plus `delay_ms`, if any) */
  run_at: Date | null;
  /**
   * Runs no earlier than this many ms after the insert, on the database clock (the clock of
   * created_at and of the claim), so a delay does not depend on this host's clock agreeing with
   * the database's. Only with run_at null.
   */
  delay_ms?: number;
  metadata: Record<string, unknown>;
  tags: string[];
  workflow_instance_id: string | null;
}

const INSERT_COLUMNS = [
  'id', 'tenant_id', 'user_id', 'session_id', 'kind', 'task_definition_id', 'query', 'input', 'context',
  'options', 'mode', 'priority', 'max_attempts', 'retry_interval_ms', 'backoff_multiplier', 'timeout_ms',
  'run_at', 'metadata', 'tags', 'workflow_instance_id',
] as const;
/** Each column travels as one array parameter of this type; the SELECT turns it back into the column. */
const ARRAY_TYPES: Record<(typeof INSERT_COLUMNS)[number], string> = {
  id: 'text', tenant_id: 'text', user_id: 'text', session_id: 'text', kind: 'text', task_definition_id: 'text', query: 'text',
  input: 'jsonb', context: 'jsonb', options: 'jsonb', mode: 'text', priority: 'smallint', max_attempts: 'int',
  retry_interval_ms: 'int', backoff_multiplier: 'float8', timeout_ms: 'int', run_at: 'timestamptz', metadata: 'jsonb',
  tags: 'jsonb', workflow_instance_id: 'text',
};
const SELECT_EXPR: Partial<Record<(typeof INSERT_COLUMNS)[number], string>> = {
  run_at: `coalesce(u.run_at, ${nowPlusMsSql('coalesce(u.delay_ms, 0)')})`,
  // text[] per row cannot travel inside an array parameter (Postgres arrays are rectangular)
  tags: 'ARRAY(SELECT jsonb_array_elements_text(u.tags))',
};

const N = INSERT_COLUMNS.length;
/** Columns a directly dispatched row (inserted RUNNING, see tasksInsertMany) sets as a claim would. */
const RUN_NOW_EXPR = {
  status: `CASE WHEN u.run_now THEN 'RUNNING' ELSE 'QUEUED' END`,
  attempt: 'u.run_now::int',
  lease_owner: `CASE WHEN u.run_now THEN $${N + 6}::text END`,
  last_worker: `CASE WHEN u.run_now THEN $${N + 6}::text END`,
  lease_expires_at: `CASE WHEN u.run_now THEN ${nowPlusMsSql(`$${N + 7}`)} END`,
  started_at: 'CASE WHEN u.run_now THEN now() END',
  last_seq: 'u.run_now::int',
};

/**
 * The submit statement: every task of a batch plus the sessions they touch, in one statement with
 * a fixed text (one array parameter per column), so a batch is one round trip and one implicit
 * transaction, and the server plans the statement once per connection (`name`). Rows flagged
 * `run_now` are inserted already claimed by the given worker, with their WORKFLOW_STARTED event.
 */
const INSERT_SQL = `
  WITH t AS (
    INSERT INTO tasks (${INSERT_COLUMNS.join(', ')}, ${Object.keys(RUN_NOW_EXPR).join(', ')})
    SELECT ${INSERT_COLUMNS.map((c) => SELECT_EXPR[c] ?? `u.${c}`).join(', ')}, ${Object.values(RUN_NOW_EXPR).join(', ')}
      FROM (
        -- a tenant capped by another process a moment ago (its NOTIFY not yet heard here) queues:
        -- the claim counts its running tasks, a direct dispatch would not
        SELECT u.*, u.run_asked AND NOT u.tenant_id = ANY (ARRAY(
                 SELECT x.id FROM tenants x WHERE x.id = ANY ($${INSERT_COLUMNS.indexOf('tenant_id') + 1}::text[]) AND x.max_running IS NOT NULL
               )) AS run_now
          FROM unnest(${INSERT_COLUMNS.map((c, i) => `$${i + 1}::${ARRAY_TYPES[c]}[]`).join(', ')}, $${N + 8}::boolean[], $${N + 9}::float8[])
            AS u(${INSERT_COLUMNS.join(', ')}, run_asked, delay_ms)
        -- the capped tenants are read once per statement (an InitPlan), and the fence keeps run_now
        -- from being copied into the seven columns that read it: as a per-row lookup flattened into
        -- each, the prepared statement's generic plan looked dearer than re-planning every run
        -- (+0.3–0.4 ms a submit)
        OFFSET 0
      ) u
    RETURNING id, tenant_id, status, created_at
  ), e AS (
    INSERT INTO task_events (task_id, seq, tenant_id, type, message, payload, created_at)
    SELECT id, 1, tenant_id, ${startedEventSql('1', `$${N + 6}::text`)}, created_at
      FROM t WHERE status = 'RUNNING'
  ), s AS (
    INSERT INTO sessions (tenant_id, id, user_id, task_count, is_research_session, research_strategy)
    SELECT s.tenant_id, s.id, s.user_id, s.n, s.strategy IS NOT NULL, s.strategy
      FROM unnest($${N + 1}::text[], $${N + 2}::text[], $${N + 3}::text[], $${N + 4}::int[], $${N + 5}::text[])
        AS s(tenant_id, id, user_id, n, strategy)
    ON CONFLICT (tenant_id, id) DO UPDATE SET task_count = sessions.task_count + excluded.task_count,
      updated_at = now(), deleted_at = NULL
  )
  SELECT id, created_at, status = 'RUNNING' AS running FROM t`;

const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));

/** The task is runnable as soon as it is inserted (no run_at, no delay): it may be dispatched directly. */
export const runsNow = (t: NewTask): boolean => t.run_at === null && !t.delay_ms;

export interface InsertedTask {
  id: string;
  created_at: Date;
  /** Inserted RUNNING (directly dispatched), not QUEUED. */
  running: boolean;
}

/** Tasks of a batch to insert already claimed (direct dispatch): which ones, by whom, for how long. */
export interface RunNow {
  /** Indexes into the batch; only tasks that may run now (runsNow). */
  indexes: ReadonlySet<number>;
  owner: string;
  leaseMs: number;
}

/**
 * Inserts many tasks in one statement (submit batching) and creates or touches the session of each
 * task that has one (task_count += its tasks in the batch); returns id and created_at per row.
 * With `runNow`, those rows start RUNNING (attempt 1, leased to `owner`, WORKFLOW_STARTED as
 * event 1), exactly as a claim would leave them — unless their tenant has a cap on running tasks
 * (tenants.max_running, read by the statement): those are inserted QUEUED, `running: false`.
 */
export async function tasksInsertMany(db: Queryable, tasks: readonly NewTask[], runNow?: RunNow): Promise<InsertedTask[]> {
  if (tasks.length === 0) return [];
  const cols: unknown[][] = INSERT_COLUMNS.map(() => new Array(tasks.length));
  const sessions = new Map<string, [tenantId: string, id: string, userId: string, count: number, strategy: string | null]>();
  tasks.forEach((t, r) => {
    const row = [
      t.id, t.tenant_id, t.user_id, t.session_id, t.kind, t.task_definition_id, t.query, json(t.input), json(t.context), json(t.options),
      t.mode, t.priority, t.max_attempts, t.retry_interval_ms, t.backoff_multiplier, t.timeout_ms, t.run_at, json(t.metadata),
      json(t.tags), t.workflow_instance_id,
    ];
    for (let c = 0; c < row.length; c++) cols[c]![r] = row[c];
    if (!t.session_id) return;
    const key = `${t.tenant_id}\u0000${t.session_id}`;
    const s = sessions.get(key);
    if (s) s[3]++;
    else sessions.set(key, [t.tenant_id, t.session_id, t.user_id, 1, typeof t.options.research_strategy === 'string' ? t.options.research_strategy : null]);
  });
  const s = [...sessions.values()];
  const params = [
    ...cols, ...[0, 1, 2, 3, 4].map((i) => s.map((row) => row[i])),
    runNow?.owner ?? null, runNow?.leaseMs ?? 0, tasks.map((t, i) => (runNow?.indexes.has(i) ?? false) && runsNow(t)),
    tasks.map((t) => t.delay_ms ?? null),
  ];
  const res = await db.query<InsertedTask>(INSERT_SQL, params, { name: 'tasks_insert_many' });
  return res.rows;
}

export async function tasksGet(db: Queryable, tenantId: string, id: string): Promise<TaskRow | undefined> {
  // prepared: parsing and planning the 45-column lookup each time cost more than running it
  const res = await db.query<TaskRow>('SELECT * FROM tasks WHERE id = $1 AND tenant_id = $2', [id, tenantId], { name: 'tasks_get' });
  return res.rows[0];
}

/** Engine-side read (no tenant: the worker already holds the task by id). */
export async function tasksGetById(db: Queryable, id: string): Promise<TaskRow | undefined> {
  const res = await db.query<TaskRow>('SELECT * FROM tasks WHERE id = $1', [id], { name: 'tasks_get_by_id' });
  return res.rows[0];
}

export interface TaskListFilter {
  tenantId: string;
  statuses?: TaskStatus[];
  sessionId?: string;
  definitionId?: string;
  workflowInstanceId?: string;
  tag?: string;
  limit: number;
  offset: number;
}

function listWhere(f: TaskListFilter): { where: string; params: unknown[] } {
  const params: unknown[] = [f.tenantId];
  const clauses = ['tenant_id = $1'];
  if (f.statuses?.length === 1) {
    // one status as a plain equality: the index on (tenant_id, status, created_at) then serves it in
    // order (PostgreSQL 15 keeps `= ANY(array)` out of an ordered index scan's condition, so a
    // 10 % status read 9,675 index pages for a 1,000-row count at 1M rows)
    params.push(f.statuses[0]);
    clauses.push(`status = $${params.length}`);
  } else if (f.statuses?.length) {
    params.push(f.statuses);
    clauses.push(`status = ANY($${params.length}::text[])`);
  }
  if (f.sessionId) {
    params.push(f.sessionId);
    clauses.push(`session_id = $${params.length}`);
  }
  if (f.definitionId) {
    params.push(f.definitionId);
    clauses.push(`task_definition_id = $${params.length}`);
  }
  if (f.workflowInstanceId) {
    params.push(f.workflowInstanceId);
    clauses.push(`workflow_instance_id = $${params.length}`);
  }
  if (f.tag) {
    params.push([f.tag]);
    // `tags <> '{}'` lets the planner use the partial tag index (migration 0006)
    clauses.push(`tags @> $${params.length}::text[] AND tags <> '{}'`);
  }
  return { where: clauses.join(' AND '), params };
}

/**
 * A list row's columns. Of metadata only what an auto-routed task's mode needs (task-view.ts
 * modeOf): a page of whole metadata objects could be megabytes.
 */
const LIST_COLUMNS = `id, query, status, mode, priority, task_definition_id, session_id, created_at, completed_at, usage,
  CASE WHEN mode IS NULL AND metadata ? 'mode_source'
       THEN jsonb_build_object('mode', metadata->'mode', 'mode_source', metadata->'mode_source') END AS metadata`;

export async function tasksList(db: Queryable, f: TaskListFilter): Promise<TaskRow[]> {
  const { where, params } = listWhere(f);
  params.push(f.limit, f.offset);
  const res = await db.query<TaskRow>(
    `SELECT ${LIST_COLUMNS} FROM tasks WHERE ${where}
      ORDER BY created_at DESC, id DESC LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  return res.rows;
}

/**
 * A page of the list with its total (as tasksCount bounds it) in one statement: the count is an
 * InitPlan beside the page, so a list costs one round trip and one plan instead of two in a row.
 * Unprepared on purpose: a generic plan cannot see which statuses are asked for, and would pick
 * one index for rare and common ones alike.
 */
export async function tasksListPage(db: Queryable, f: TaskListFilter): Promise<{ rows: TaskRow[]; total: number }> {
  const { where, params } = listWhere(f);
  params.push(f.limit, f.offset, f.offset + LIST_COUNT_AHEAD);
  const n = params.length;
  const res = await db.query<TaskRow & { total: number }>(
    `SELECT ${LIST_COLUMNS}, (SELECT count(*)::int FROM (${countedSql(f, where, `$${n}`)}) s) AS total
       FROM tasks WHERE ${where}
      ORDER BY created_at DESC, id DESC LIMIT $${n - 2} OFFSET $${n - 1}`,
    params,
  );
  const rows = res.rows;
  // past the end there is no row to carry the total
  return { rows, total: rows.length ? rows[0]!.total : f.offset === 0 ? 0 : await tasksCount(db, f) };
}

/**
 * The rows a bounded count reads (`limit` of them at most): the newest matching, in the list's own
 * order, so the count walks the same (tenant, filter, created_at) index as the page, index-only, on
 * pages the lists keep cached. Unordered, the planner took a sequential scan from the table's
 * oldest rows for a common status (at 1M rows: 31 pages through the scan's small ring buffer on
 * every call, ~0.7 ms of a ~0.9 ms list). Several statuses stay unordered: `status = ANY(…)` is
 * then an index condition (0.6 ms) where in order it would be a filter (5 ms for a 10 % pair).
 */
function countedSql(f: TaskListFilter, where: string, limit: string): string {
  const order = (f.statuses?.length ?? 0) > 1 ? '' : ' ORDER BY created_at DESC';
  return `SELECT 1 FROM tasks WHERE ${where}${order} LIMIT ${limit}`;
}

/**
 * How far past the requested offset a list counts: counting a million rows per list call would
 * make every page cost as much as the table is large, so a total above offset + this is reported
 * as offset + this (documented in docs/api.md). 10,000 cost ~3 ms per call at 1M rows; 1,000 ~0.3.
 */
export const LIST_COUNT_AHEAD = 1_000;

/** Matching rows, exact up to `offset + LIST_COUNT_AHEAD` and reported as that bound above it. */
export async function tasksCount(db: Queryable, f: TaskListFilter): Promise<number> {
  const { where, params } = listWhere(f);
  params.push(f.offset + LIST_COUNT_AHEAD);
  const res = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (${countedSql(f, where, `$${params.length}`)}) s`,
    params,
  );
  return res.rows[0]?.n ?? 0;
}

/**
 * The row and event a `runNow` insert wrote for one task, as a claim would return them (built
 * from what was inserted: both carry the statement's now(), which is the row's created_at).
 */
export function directlyClaimed(t: NewTask, createdAt: Date, runNow: RunNow): ClaimResult {
  // one fixed-shape literal (a spread of the submitted task plus the row's other columns built
  // a new hidden class per call: ~27 KB of garbage per dispatched task)
  const task: ClaimedTask = {
    id: t.id, tenant_id: t.tenant_id, user_id: t.user_id, session_id: t.session_id, kind: t.kind, task_definition_id: t.task_definition_id,
    query: t.query, input: t.input ?? null, context: t.context, options: t.options, mode: t.mode, attempt: 1, max_attempts: t.max_attempts,
    retry_interval_ms: t.retry_interval_ms, backoff_multiplier: t.backoff_multiplier, timeout_ms: t.timeout_ms, metadata: t.metadata,
    cancel_reason: null, cancel_requested: false, pause_requested: false, has_steps: false,
  };
  return { task, events: [startedEvent(task, 1, 1, runNow.owner, createdAt)] };
}

export interface QueueStats {
  /** QUEUED and due: what a worker with a free slot would claim now. */
  ready: number;
  /** QUEUED with a later run_at: scheduled tasks and retries waiting out their backoff. */
  scheduled: number;
  /** How long the oldest ready task has been due, in seconds (0 when none is). */
  oldestReadyS: number;
}

/**
 * The queue across every tenant, for /metrics. Reads tasks_claim_idx (partial on QUEUED): its
 * cost grows with the queue, not with the table.
 */
export async function tasksQueueStats(db: Queryable): Promise<QueueStats> {
  const res = await db.query<{ ready: number; scheduled: number; oldest_s: number | null }>(
    `SELECT count(*) FILTER (WHERE run_at <= now())::int AS ready,
            count(*) FILTER (WHERE run_at > now())::int AS scheduled,
            EXTRACT(EPOCH FROM now() - min(run_at) FILTER (WHERE run_at <= now()))::float8 AS oldest_s
       FROM tasks WHERE status = 'QUEUED'`,
  );
  const row = res.rows[0];
  return { ready: row?.ready ?? 0, scheduled: row?.scheduled ?? 0, oldestReadyS: Math.max(0, row?.oldest_s ?? 0) };
}
