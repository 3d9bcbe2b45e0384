// DML for durable steps. Writes are fenced on the attempt and lease owner, so a zombie worker
// cannot record a step for an attempt that is no longer its own.
import { storableJson } from '../storable.js';
import type { Queryable } from '../db.js';

export interface StepRow {
  name: string;
  runs: number;
  done: boolean;
  result: unknown;
}

export async function stepsLoad(db: Queryable, taskId: string): Promise<StepRow[]> {
  const res = await db.query<StepRow>('SELECT name, runs, done, result FROM task_steps WHERE task_id = $1', [taskId]);
  return res.rows;
}

export async function stepsGet(db: Queryable, taskId: string, name: string): Promise<StepRow | undefined> {
  const res = await db.query<StepRow>('SELECT name, runs, done, result FROM task_steps WHERE task_id = $1 AND name = $2', [taskId, name]);
  return res.rows[0];
}

const FENCE = `EXISTS (SELECT 1 FROM tasks WHERE id = $1 AND status = 'RUNNING' AND attempt = $3 AND lease_owner = $4)`;

/** Records that a step's body starts; returns how many times it has started, or undefined if fenced out. */
export async function stepsStart(
  db: Queryable,
  p: { taskId: string; name: string; attempt: number; owner: string },
): Promise<number | undefined> {
  const res = await db.query<{ runs: number }>(
    `INSERT INTO task_steps (task_id, name, attempt) SELECT $1, $2, $3 WHERE ${FENCE}
     ON CONFLICT (task_id, name) DO UPDATE SET runs = task_steps.runs + 1, attempt = excluded.attempt
       WHERE NOT task_steps.done
     RETURNING runs`,
    [p.taskId, p.name, p.attempt, p.owner],
  );
  return res.rows[0]?.runs;
}

/** Stores a finished step's result; false if fenced out (lease lost). */
export async function stepsFinish(
  db: Queryable,
  p: { taskId: string; name: string; attempt: number; owner: string; result: unknown },
): Promise<boolean> {
  const res = await db.query(
    `UPDATE task_steps SET done = true, result = $5::jsonb, finished_at = now()
      WHERE task_id = $1 AND name = $2 AND NOT done AND ${FENCE}`,
    [p.taskId, p.name, p.attempt, p.owner, storableJson(p.result ?? null)],
  );
  return res.rowCount > 0;
}
