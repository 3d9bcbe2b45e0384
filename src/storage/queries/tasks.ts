// DML for the tasks table (the queue). One exported function per statement; every state change
// states its precondition in the WHERE clause and returns what it changed (zero rows = lost race).
import type { Queryable } from '../db.js';
import type { TaskStatus } from '../../domain/lifecycle.js';

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
  /** null = now() on the database clock */
  run_at: Date | null;
  metadata: Record<string, unknown>;
  tags: string[];
  workflow_instance_id: string | null;
}

const INSERT_COLUMNS = [
  'id', 'tenant_id', 'user_id', 'session_id', 'kind', 'task_definition_id', 'query', 'input', 'context',
  'options', 'mode', 'priority', 'max_attempts', 'retry_interval_ms', 'backoff_multiplier', 'timeout_ms',
  'run_at', 'metadata', 'tags', 'workflow_instance_id',
] as const;
const CASTS: Partial<Record<(typeof INSERT_COLUMNS)[number], string>> = {
  input: 'jsonb', context: 'jsonb', options: 'jsonb', metadata: 'jsonb', tags: 'text[]', run_at: 'timestamptz',
  priority: 'smallint', max_attempts: 'int', retry_interval_ms: 'int', backoff_multiplier: 'float8', timeout_ms: 'int',
};

function insertParams(t: NewTask): unknown[] {
  return [
    t.id, t.tenant_id, t.user_id, t.session_id, t.kind, t.task_definition_id, t.query,
    t.input === undefined ? null : JSON.stringify(t.input), JSON.stringify(t.context), JSON.stringify(t.options),
    t.mode, t.priority, t.max_attempts, t.retry_interval_ms, t.backoff_multiplier, t.timeout_ms,
    t.run_at, JSON.stringify(t.metadata), t.tags, t.workflow_instance_id,
  ];
}

/** Inserts many tasks in one statement (submit batching); returns id and created_at per row. */
export async function tasksInsertMany(db: Queryable, tasks: readonly NewTask[]): Promise<{ id: string; created_at: Date }[]> {
  if (tasks.length === 0) return [];
  const params: unknown[] = [];
  const tuples: string[] = [];
  for (const t of tasks) {
    const base = params.length;
    params.push(...insertParams(t));
    tuples.push(
      '(' +
        INSERT_COLUMNS.map((c, i) => {
          const p = `$${base + i + 1}${CASTS[c] ? '::' + CASTS[c] : ''}`;
          return c === 'run_at' ? `coalesce(${p}, now())` : p;
        }).join(', ') +
        ')',
    );
  }
  const res = await db.query<{ id: string; created_at: Date }>(
    `INSERT INTO tasks (${INSERT_COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} RETURNING id, created_at`,
    params,
  );
  return res.rows;
}

export async function tasksGet(db: Queryable, tenantId: string, id: string): Promise<TaskRow | undefined> {
  const res = await db.query<TaskRow>('SELECT * FROM tasks WHERE id = $1 AND tenant_id = $2', [id, tenantId]);
  return res.rows[0];
}

/** Engine-side read (no tenant: the worker already holds the task by id). */
export async function tasksGetById(db: Queryable, id: string): Promise<TaskRow | undefined> {
  const res = await db.query<TaskRow>('SELECT * FROM tasks WHERE id = $1', [id]);
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
  if (f.statuses?.length) {
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
    clauses.push(`tags @> $${params.length}::text[]`);
  }
  return { where: clauses.join(' AND '), params };
}

export async function tasksList(db: Queryable, f: TaskListFilter): Promise<TaskRow[]> {
  const { where, params } = listWhere(f);
  params.push(f.limit, f.offset);
  const res = await db.query<TaskRow>(
    `SELECT id, query, status, mode, priority, task_definition_id, session_id, created_at, completed_at, usage
       FROM tasks WHERE ${where}
      ORDER BY created_at DESC, id DESC LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  return res.rows;
}

/**
 * Exact count up to a cap: counting a million rows per list call would make list cost grow with
 * the table, so totals above the cap are reported as the cap (documented in docs/api.md).
 */
export const LIST_COUNT_CAP = 10_000;

export async function tasksCount(db: Queryable, f: TaskListFilter): Promise<number> {
  const { where, params } = listWhere(f);
  params.push(LIST_COUNT_CAP);
  const res = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT 1 FROM tasks WHERE ${where} LIMIT $${params.length}) s`,
    params,
  );
  return res.rows[0]?.n ?? 0;
}
