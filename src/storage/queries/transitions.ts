// Fenced task state changes with their events, each in one statement: the UPDATE states its
// precondition (status, and for workers attempt + lease owner), allocates `seq` numbers from the
// task row and appends the events in the same statement. Zero rows back means the race was lost.
import { storableJson, storableText } from '../storable.js';
import type { Queryable } from '../db.js';
import { PRIORITIES, priorityRank, type TaskStatus } from '../../domain/lifecycle.js';
import type { TaskRow } from './tasks.js';

export interface EventSpec {
  type: string;
  message?: string | null;
  payload?: Record<string, unknown> | null;
  agent_id?: string | null;
}

/**
 * An event's time: the clock when its row is written, after the statement got the task's row lock
 * — so it never runs backwards against `seq`. now() is the transaction's start: a worker's
 * transaction that waited for a cancel's lock stamped its ERROR_OCCURRED (seq 3) up to 2.3 s before
 * the WORKFLOW_CANCELLING (seq 2) it followed. (The batch completion stamps its events with each
 * row's completed_at, clock_timestamp() too: a row updated while the completion waited for it is
 * re-read and its new values computed after the wait.)
 */
const EVENT_TIME = 'clock_timestamp()';

export interface StoredEvent {
  task_id: string;
  tenant_id: string;
  seq: number;
  type: string;
  agent_id: string | null;
  message: string | null;
  payload: Record<string, unknown> | null;
  created_at: Date | string;
}

export interface Fence {
  id: string;
  /** API-side changes are scoped to the caller's tenant. */
  tenantId?: string;
  statuses: readonly TaskStatus[];
  /** Worker-side changes are fenced on the attempt and the lease owner. */
  attempt?: number;
  leaseOwner?: string;
  /** Only when the lease has already expired (the reaper). */
  leaseExpired?: boolean;
  /** Only while the task waits (no lease) for this approval. */
  awaitingApprovalId?: string;
  /** Only while a pause is (or is not) requested: a withdrawn pause must not be carried out. */
  pauseRequested?: boolean;
  /** Only while a cancel is (or is not) requested. */
  cancelRequested?: boolean;
  /** Only while a worker holds the task's lease (not parked for an approval, not released). */
  leased?: boolean;
}

/** A raw SQL expression for a SET clause, e.g. `now()`. Only ever built from constants here. */
export interface RawSql {
  raw: string;
}
export const sql = (raw: string): RawSql => ({ raw });
const isRaw = (v: unknown): v is RawSql => typeof v === 'object' && v !== null && 'raw' in v && Object.keys(v).length === 1;

const SETTABLE: Record<string, string | undefined> = {
  status: undefined, attempt: 'int', run_at: 'timestamptz', lease_owner: undefined, lease_expires_at: 'timestamptz',
  cancel_requested: 'boolean', cancel_reason: undefined, cancelled_by: undefined, pause_requested: 'boolean',
  pause_reason: undefined, paused_by: undefined, paused_at: 'timestamptz', output: 'jsonb', result: undefined,
  error: undefined, model_used: undefined, provider: undefined, usage: 'jsonb', metadata: 'jsonb',
  completed_at: 'timestamptz', started_at: 'timestamptz', last_worker: undefined, awaiting_approval_id: 'uuid',
};
/** Columns a transition may set, plus `metadata_patch` (merged into metadata with `||`). */
export type SettableColumn = keyof typeof SETTABLE | 'metadata_patch';

export interface TransitionResult {
  task: TaskRow;
  events: StoredEvent[];
}

export async function tasksTransition(
  db: Queryable,
  fence: Fence,
  set: Partial<Record<SettableColumn, unknown>>,
  events: readonly EventSpec[],
): Promise<TransitionResult | undefined> {
  const params: unknown[] = [fence.id, fence.statuses];
  const where = ['id = $1', 'status = ANY($2::text[])'];
  if (fence.tenantId !== undefined) {
    params.push(fence.tenantId);
    where.push(`tenant_id = $${params.length}`);
  }
  if (fence.attempt !== undefined) {
    params.push(fence.attempt);
    where.push(`attempt = $${params.length}`);
  }
  if (fence.leaseOwner !== undefined) {
    params.push(fence.leaseOwner);
    where.push(`lease_owner = $${params.length}`);
  }
  if (fence.leaseExpired) where.push('lease_expires_at < now()');
  if (fence.awaitingApprovalId !== undefined) {
    params.push(fence.awaitingApprovalId);
    where.push(`awaiting_approval_id = $${params.length}::uuid AND lease_owner IS NULL`);
  }
  if (fence.pauseRequested !== undefined) where.push(fence.pauseRequested ? 'pause_requested' : 'NOT pause_requested');
  if (fence.cancelRequested !== undefined) where.push(fence.cancelRequested ? 'cancel_requested' : 'NOT cancel_requested');
  if (fence.leased) where.push('lease_owner IS NOT NULL');

  const sets: string[] = [];
  for (const [col, value] of Object.entries(set)) {
    if (col === 'metadata_patch') {
      params.push(storableJson(value));
      sets.push(`metadata = metadata || $${params.length}::jsonb`);
      continue;
    }
    if (!(col in SETTABLE)) throw new Error(`tasksTransition: column ${col} is not settable`);
    if (isRaw(value)) {
      sets.push(`${col} = ${value.raw}`);
      continue;
    }
    const cast = SETTABLE[col];
    params.push(cast === 'jsonb' && value !== null ? storableJson(value) : typeof value === 'string' ? storableText(value) : value);
    sets.push(`${col} = $${params.length}${cast ? '::' + cast : ''}`);
  }
  const n = events.length;
  sets.push(`last_seq = last_seq + ${n}`, 'updated_at = now()');
  params.push(storableJson(events));
  const evParam = `$${params.length}::jsonb`;

  const res = await db.query<TaskRow & { new_events: StoredEvent[] | null }>(
    `WITH u AS (
       UPDATE tasks SET ${sets.join(', ')} WHERE ${where.join(' AND ')} RETURNING *
     ), ev AS (
       INSERT INTO task_events (task_id, seq, tenant_id, type, agent_id, message, payload, created_at)
       SELECT u.id, u.last_seq - ${n} + e.ord::int, u.tenant_id, e.ev->>'type', e.ev->>'agent_id', e.ev->>'message',
              nullif(e.ev->'payload', 'null'::jsonb), ${EVENT_TIME}
         FROM u, jsonb_array_elements(${evParam}) WITH ORDINALITY AS e(ev, ord)
       RETURNING task_id, tenant_id, seq, type, agent_id, message, payload, created_at
     )
     SELECT u.*, (SELECT jsonb_agg(to_jsonb(ev) ORDER BY ev.seq) FROM ev) AS new_events FROM u`,
    params,
  );
  const row = res.rows[0];
  if (!row) return undefined;
  const { new_events, ...task } = row;
  return { task: task as TaskRow, events: new_events ?? [] };
}

/**
 * The WORKFLOW_STARTED event's type, message and payload as SQL, for the attempt `attempt` of
 * worker `worker` (SQL expressions): every statement that starts an attempt appends it with these
 * columns, and startedEvent builds the same event in memory.
 */
export const startedEventSql = (attempt: string, worker: string): string =>
  `'WORKFLOW_STARTED', 'Task started (attempt ' || ${attempt} || ')', jsonb_build_object('attempt', ${attempt}, 'worker_id', ${worker})`;

/**
 * now() plus `ms` milliseconds (an SQL expression): lease expiries, delayed starts, retry backoff
 * and approval timeouts, all on the database clock.
 */
export const nowPlusMsSql = (ms: string): string => `now() + make_interval(secs => ${ms}::float8 / 1000)`;

/**
 * Whether task `id` (an SQL expression) has recorded a durable step: a claim tells the runner.
 * (Not derivable from `attempt`: a pause or a shutdown release gives the attempt back, so a task
 * with finished steps can be claimed as attempt 1 again.)
 */
const hasStepsSql = (id: string): string => `EXISTS (SELECT 1 FROM task_steps s WHERE s.task_id = ${id}) AS has_steps`;

/**
 * The WORKFLOW_STARTED event a claim (and a directly dispatched insert) writes, as the statement
 * writes it (startedEventSql): built here from the row instead of read back.
 */
export function startedEvent(task: Pick<TaskRow, 'id' | 'tenant_id'>, seq: number, attempt: number, workerId: string, at: Date): StoredEvent {
  return storedEvent(task, seq, 'WORKFLOW_STARTED', `Task started (attempt ${attempt})`, { attempt, worker_id: workerId }, at);
}

/**
 * An event row as a statement wrote it, as one fixed-shape literal: hot paths build thousands per
 * second, and an object spread here cost ~13 µs per event on Node 20 (a literal ~0.1 µs).
 */
function storedEvent(
  task: Pick<TaskRow, 'id' | 'tenant_id'>, seq: number, type: string, message: string, payload: Record<string, unknown>, at: Date,
): StoredEvent {
  return { task_id: task.id, tenant_id: task.tenant_id, seq, type, agent_id: null, message, payload, created_at: at };
}

export interface ClaimResult {
  task: ClaimedTask;
  events: StoredEvent[];
}

/** The columns an attempt runs from: what a claim returns (not the whole row). */
const CLAIMED_COLUMNS = [
  'id', 'tenant_id', 'user_id', 'session_id', 'kind', 'task_definition_id', 'query', 'input', 'context', 'options', 'mode',
  'attempt', 'max_attempts', 'retry_interval_ms', 'backoff_multiplier', 'timeout_ms', 'metadata', 'cancel_reason',
  'cancel_requested', 'pause_requested',
] as const;
export type ClaimedTask = Pick<TaskRow, (typeof CLAIMED_COLUMNS)[number]> & { has_steps?: boolean };
/** The claim's RETURNING list: those columns, plus what the statement needs to build the event. */
const CLAIM_RETURNING = [...CLAIMED_COLUMNS, 'last_seq'].map((c) => `t.${c}`).join(', ');

/**
 * The statement that writes claimed rows RUNNING under `owner`'s lease with their WORKFLOW_STARTED
 * event, for rows named by `ids` (an id array expression; $2 = owner, $3 = lease ms) that also
 * pass `fence`. The claim and the claim window's promotion (tasksStartLocked) share it.
 */
const startSql = (ids: string, fence: string, returning: string, select: string): string =>
  `WITH u AS (
     UPDATE tasks t SET status = 'RUNNING', attempt = t.attempt + 1, lease_owner = $2, last_worker = $2,
            lease_expires_at = ${nowPlusMsSql('$3')},
            started_at = coalesce(t.started_at, now()), last_seq = t.last_seq + 1, updated_at = now()
      WHERE t.id = ANY (${ids})${fence}
     RETURNING ${returning}
   ), ev AS (
     INSERT INTO task_events (task_id, seq, tenant_id, type, message, payload, created_at)
     SELECT u.id, u.last_seq, u.tenant_id, ${startedEventSql('u.attempt', '$2::text')}, ${EVENT_TIME}
       FROM u
   )
   SELECT ${select} FROM u`;

// taskgate_claimable (migrations 0005, 0006, 0010) locks the first `limit` runnable ids in claim
// order, fair across tenants; as an array they reach the rows through the primary key, whatever
// the statistics say
const CLAIM_SQL = startSql(
  'ARRAY(SELECT taskgate_claimable($1::int, $4::text))', '', CLAIM_RETURNING,
  `u.*, ${hasStepsSql('u.id')}, now() AS at`,
);

/**
 * Claims up to `limit` runnable tasks for `owner`: urgent first; within a priority, tenants with
 * fewer tasks running first, round-robin from the tenant after `after` (the last one this
 * claimer served: see TenantRotation); then oldest. Returns only the columns an attempt runs from,
 * and the WORKFLOW_STARTED event written for each (built from the row and the statement's clock
 * rather than read back).
 */
export async function tasksClaimAvailable(
  db: Queryable,
  p: { limit: number; owner: string; leaseMs: number; after?: string },
): Promise<ClaimResult[]> {
  const res = await db.query<ClaimedTask & { last_seq: number; at: Date }>(
    CLAIM_SQL, [p.limit, p.owner, p.leaseMs, p.after ?? ''], { name: 'tasks_claim' },
  );
  // the row itself is the task (its extra last_seq and at are harmless; a rest copy cost µs per row)
  return res.rows.map((row) => ({ task: row, events: [startedEvent(row, row.last_seq, row.attempt, p.owner, row.at)] }));
}

/**
 * Whether a claim would find a runnable task now, without claiming it (a row the selection locks
 * is released when the statement ends): an idle worker's poll asks this before it claims.
 */
export async function tasksRunnableExist(db: Queryable): Promise<boolean> {
  const res = await db.query<{ found: boolean }>('SELECT EXISTS (SELECT 1 FROM taskgate_claimable(1)) AS found', [], { name: 'tasks_runnable_exist' });
  return res.rows[0]?.found === true;
}

/** A task locked by a claim window: `attempt` is the attempt about to run (not yet written). */
export type LockedTask = ClaimedTask & { last_seq: number };

const LOCK_SQL = `SELECT ${CLAIMED_COLUMNS.map((c) => (c === 'attempt' ? 't.attempt + 1 AS attempt' : `t.${c}`)).join(', ')}, t.last_seq,
         ${hasStepsSql('t.id')}
    FROM tasks t WHERE t.id = ANY (ARRAY(SELECT taskgate_claimable($1::int, $2::text)))
     -- the ids are locked already; locking them again here reads their latest version
     FOR UPDATE OF t`;

/**
 * The claim window's claim (engine/claim-window.ts): locks up to `limit` runnable tasks in the
 * caller's transaction, in claim order (tasksClaimAvailable's, `after` as there), and writes
 * nothing. The transaction then writes each one either COMPLETED (tasksCompleteMany with
 * `locked`) or RUNNING (tasksStartLocked).
 */
export async function tasksLockAvailable(tx: Queryable, limit: number, after = ''): Promise<LockedTask[]> {
  return (await tx.query<LockedTask>(LOCK_SQL, [limit, after], { name: 'tasks_lock' })).rows;
}

// Rows this transaction locked cannot change under it: the fence only asserts they are unleased
// (never `status = 'QUEUED'`, which the planner answers from the claim's partial index by
// scanning every queued entry: 93 ms per 100 rows with 20,000 queued)
const LOCKED_FENCE = 't.lease_owner IS NULL';
const START_LOCKED_SQL = startSql('$1::text[]', ` AND ${LOCKED_FENCE}`, 't.id, t.tenant_id, t.attempt, t.last_seq', 'u.*, now() AS at');

/**
 * Writes tasks this transaction locked (tasksLockAvailable) RUNNING under `owner`'s lease, as a
 * claim would have: the attempts of a claim window that were still running when it closed.
 * Returns the WORKFLOW_STARTED event written per task id.
 */
export async function tasksStartLocked(
  tx: Queryable,
  p: { ids: readonly string[]; owner: string; leaseMs: number },
): Promise<Map<string, StoredEvent>> {
  const res = await tx.query<{ id: string; tenant_id: string; attempt: number; last_seq: number; at: Date }>(
    START_LOCKED_SQL, [p.ids, p.owner, p.leaseMs], { name: 'tasks_start_locked' },
  );
  return new Map(res.rows.map((r) => [r.id, startedEvent(r, r.last_seq, r.attempt, p.owner, r.at)]));
}

export interface HeartbeatRow {
  id: string;
  attempt: number;
  cancel_requested: boolean;
  pause_requested: boolean;
}

const HEARTBEAT_FENCE = `t.id = ANY ($1::text[]) AND t.id = h.id AND t.attempt = h.attempt AND t.lease_owner = $3 AND t.status = 'RUNNING'`;

/**
 * Renews the leases this worker still holds; tasks missing from the result lost their lease.
 *
 * The batch never waits for a row lock while holding others: a multi-row UPDATE locks its rows
 * one by one, and a transaction of ours that wrote one of them (a step and its event, in a group
 * commit) and then wants another the heartbeat already holds is a deadlock — PostgreSQL breaks
 * it after deadlock_timeout by failing one side, and when that side was the group commit, every
 * attempt in it failed and was retried. So the batch renews only the rows it can lock at once
 * (SKIP LOCKED); a row someone is writing right now is renewed by a statement of its own, which
 * holds nothing else while it waits.
 */
export async function tasksHeartbeat(
  db: Queryable,
  p: { owner: string; leaseMs: number; tasks: readonly { id: string; attempt: number }[] },
): Promise<HeartbeatRow[]> {
  if (p.tasks.length === 0) return [];
  const res = await db.query<HeartbeatRow & { busy: boolean }>(
    `WITH h AS (SELECT * FROM unnest($1::text[], $2::int[]) AS h(id, attempt)),
     held AS (
       SELECT t.id FROM tasks t, h WHERE ${HEARTBEAT_FENCE} FOR NO KEY UPDATE OF t SKIP LOCKED
     ),
     renewed AS (
       UPDATE tasks t SET lease_expires_at = ${nowPlusMsSql('$4')}
         FROM held WHERE t.id = ANY ($1::text[]) AND t.id = held.id
       RETURNING t.id, t.attempt, t.cancel_requested, t.pause_requested
     )
     SELECT id, attempt, cancel_requested, pause_requested, false AS busy FROM renewed
     UNION ALL
     SELECT t.id, t.attempt, t.cancel_requested, t.pause_requested, true AS busy FROM tasks t, h
      WHERE ${HEARTBEAT_FENCE} AND t.id NOT IN (SELECT id FROM held)`,
    [p.tasks.map((t) => t.id), p.tasks.map((t) => t.attempt), p.owner, p.leaseMs],
    { name: 'tasks_heartbeat' },
  );
  const rows: HeartbeatRow[] = [];
  const busy: { id: string; attempt: number }[] = [];
  for (const r of res.rows) {
    if (r.busy) busy.push({ id: r.id, attempt: r.attempt });
    else rows.push({ id: r.id, attempt: r.attempt, cancel_requested: r.cancel_requested, pause_requested: r.pause_requested });
  }
  // rows locked by another transaction (a commit of ours in flight, mostly): one statement each,
  // one after the other, so a wait holds no other lock and takes one pool connection
  for (const t of busy) {
    const one = await db.query<HeartbeatRow>(
      `UPDATE tasks SET lease_expires_at = ${nowPlusMsSql('$4')}
        WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'RUNNING'
        RETURNING id, attempt, cancel_requested, pause_requested`,
      [t.id, t.attempt, p.owner, p.leaseMs],
      { name: 'tasks_heartbeat_one' },
    );
    rows.push(...one.rows);
  }
  return rows;
}

/** Running tasks whose lease ran out (their worker died or stalled). */
export async function tasksListExpiredLeases(
  db: Queryable,
  limit: number,
): Promise<Pick<TaskRow, 'id' | 'attempt' | 'max_attempts' | 'lease_owner' | 'cancel_requested' | 'pause_requested'>[]> {
  const res = await db.query<Pick<TaskRow, 'id' | 'attempt' | 'max_attempts' | 'lease_owner' | 'cancel_requested' | 'pause_requested'>>(
    `SELECT id, attempt, max_attempts, lease_owner, cancel_requested, pause_requested FROM tasks
      WHERE status = 'RUNNING' AND lease_expires_at < now() ORDER BY lease_expires_at LIMIT $1`,
    [limit],
  );
  return res.rows;
}

// One ordered probe of the claim index per priority rank: `ORDER BY priority, run_at LIMIT 1`
// answered the earliest run_at of the most urgent priority that had one, not the earliest of all,
// and walked past every due entry of the priorities before it
const NEXT_RUN_AT_SQL = `SELECT (extract(epoch FROM least(${PRIORITIES.map(priorityRank)
  .map((p) => `(SELECT min(run_at) FROM tasks WHERE status = 'QUEUED' AND priority = ${p} AND run_at > now())`)
  .join(', ')}) - now()) * 1000)::float8 AS in_ms`;

/**
 * How long until the earliest queued task that is not runnable yet (a delay, a retry's backoff)
 * becomes runnable, in ms on the database's clock; undefined if none. The dispatcher wakes then.
 */
export async function tasksNextRunAt(db: Queryable): Promise<number | undefined> {
  const res = await db.query<{ in_ms: number | null }>(NEXT_RUN_AT_SQL, [], { name: 'tasks_next_run_at' });
  return res.rows[0]?.in_ms ?? undefined;
}

export interface CompletionInput {
  id: string;
  attempt: number;
  output: unknown;
  result: string | null;
  usage: Record<string, number> | null;
  model_used: string | null;
  provider: string | null;
  metadata: Record<string, unknown> | null;
  duration_ms: number;
}

/**
 * The events a successful completion appends, as the statement in tasksCompleteMany writes them:
 * WORKFLOW_COMPLETED and STREAM_END at last_seq - 1 and last_seq, preceded by WORKFLOW_STARTED
 * when the completion is also the attempt's start (a claim window's).
 */
function completedEvents(
  r: { id: string; tenant_id: string; last_seq: number }, clocks: { started: Date; at: Date }, c: CompletionInput, startedBy: string | undefined,
): StoredEvent[] {
  const done = [
    storedEvent(r, r.last_seq - 1, 'WORKFLOW_COMPLETED', 'Task completed', { duration_ms: c.duration_ms, attempt: c.attempt }, clocks.at),
    storedEvent(r, r.last_seq, 'STREAM_END', 'Stream ended', { status: 'COMPLETED' }, clocks.at),
  ];
  if (startedBy !== undefined) done.unshift(startedEvent(r, r.last_seq - 2, c.attempt, startedBy, clocks.started));
  return done;
}

/**
 * A timestamp as epoch milliseconds (float8): the completion returns two clocks on every row, and
 * `pg` parses a timestamptz with a regular expression (~1 KB of garbage and ~1 µs per value); a
 * number parses as one.
 */
const EPOCH_MS = (ts: string): string => `(extract(epoch FROM ${ts}) * 1000)::float8`;

/**
 * The completion statement. Leased: attempts RUNNING under the owner's lease ($3). Locked: attempts
 * of a claim window, whose rows this transaction holds still QUEUED at the previous attempt — the
 * same statement also writes what the claim would have (attempt, started_at, last_worker and
 * WORKFLOW_STARTED, at the transaction's start: when the rows were claimed).
 */
const completeSql = (locked: boolean): string =>
  `WITH u AS (
     UPDATE tasks t SET status = 'COMPLETED', output = $2::jsonb -> t.id -> 'o', result = $2::jsonb -> t.id ->> 'r', error = NULL,
            usage = $2::jsonb -> t.id -> 'u', model_used = $2::jsonb -> t.id ->> 'm', provider = $2::jsonb -> t.id ->> 'p',
            metadata = coalesce(t.metadata || ($2::jsonb -> t.id -> 'md'), t.metadata),
            ${locked ? 'attempt = t.attempt + 1, last_worker = $3, started_at = coalesce(t.started_at, now()), ' : ''}lease_owner = NULL,
            lease_expires_at = NULL, completed_at = clock_timestamp(), last_seq = t.last_seq + ${locked ? 3 : 2}, updated_at = clock_timestamp()
      -- the ids as an InitPlan array pin one primary-key lookup per row, whatever the statistics say
      WHERE t.id = ANY (ARRAY(SELECT unnest($1::text[])))
        AND ${locked ? `${LOCKED_FENCE} AND t.attempt + 1` : "t.status = 'RUNNING' AND t.lease_owner = $3 AND NOT t.cancel_requested AND t.attempt"} = ($2::jsonb -> t.id ->> 'a')::int
     RETURNING t.id, t.tenant_id, t.last_seq, t.attempt, ($2::jsonb -> t.id -> 'd') AS duration_ms, t.completed_at AS at
   ), ev AS (
     INSERT INTO task_events (task_id, seq, tenant_id, type, message, payload, created_at)${
       locked
         ? `
     SELECT id, last_seq - 2, tenant_id, ${startedEventSql('attempt', '$3::text')}, now() FROM u
     UNION ALL`
         : ''
     }
     SELECT id, last_seq - 1, tenant_id, 'WORKFLOW_COMPLETED', 'Task completed',
            jsonb_build_object('duration_ms', duration_ms, 'attempt', attempt), at FROM u
     UNION ALL
     SELECT id, last_seq, tenant_id, 'STREAM_END', 'Stream ended', '{"status":"COMPLETED"}'::jsonb, at FROM u
   )
   SELECT id, tenant_id, last_seq, ${EPOCH_MS('now()')} AS started_ms, ${EPOCH_MS('at')} AS at_ms FROM u`;
const COMPLETE_LEASED_SQL = completeSql(false);
const COMPLETE_LOCKED_SQL = completeSql(true);

/**
 * Completes many attempts of one worker in one statement (the hot path: one round trip and one
 * commit for a whole batch), each fenced like tasksTransition, appending WORKFLOW_COMPLETED and
 * STREAM_END. Returns the events written per task id; a task missing from the map lost its race.
 * With `locked`, the attempts are a claim window's (see completeSql) and `tx` is its transaction.
 *
 * The rows travel as one JSON object keyed by task id, read per row with `->` (a binary search
 * over the object's keys), so the statement has no join: a join with the batch was planned, once
 * the prepared statement went generic, as a nested loop rescanning the whole batch for every row
 * (106 ms per 250-row batch).
 */
export async function tasksCompleteMany(
  db: Queryable, owner: string, rows: readonly CompletionInput[], opts: { locked?: boolean } = {},
): Promise<Map<string, StoredEvent[]>> {
  const written = new Map<string, StoredEvent[]>();
  if (rows.length === 0) return written;
  // the object is written as JSON text member by member: setting hundreds of task ids as keys on
  // one JS object gave it a new hidden class per key (7 µs per task, 10 % of a worker's CPU with
  // no-op tasks). A repeated id keeps its last member, in jsonb as in an object.
  const ids: string[] = [];
  let batch = '';
  for (const r of rows) {
    const x: Record<string, unknown> = { a: r.attempt, d: r.duration_ms };
    if (r.output !== undefined && r.output !== null) x.o = r.output;
    if (r.result !== null) x.r = r.result;
    if (r.usage !== null) x.u = r.usage;
    if (r.model_used !== null) x.m = r.model_used;
    if (r.provider !== null) x.p = r.provider;
    if (r.metadata !== null) x.md = r.metadata;
    batch += `${batch ? ',' : '{'}${JSON.stringify(r.id)}:${storableJson(x)}`;
    ids.push(r.id);
  }
  const locked = opts.locked === true;
  const res = await db.query<{ id: string; tenant_id: string; last_seq: number; started_ms: number; at_ms: number }>(
    locked ? COMPLETE_LOCKED_SQL : COMPLETE_LEASED_SQL,
    [ids, `${batch}}`, owner],
    { name: locked ? 'tasks_complete_locked' : 'tasks_complete_many' },
  );
  const first = res.rows[0];
  if (!first) return written;
  // the claim's clock is the transaction's, one for every row; the completion's is each row's own
  const started = new Date(first.started_ms);
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const r of res.rows) written.set(r.id, completedEvents(r, { started, at: new Date(r.at_ms) }, byId.get(r.id)!, locked ? owner : undefined));
  return written;
}
