#!/usr/bin/env node
// What PostgreSQL spends per no-op task on the database side of the end-to-end scenario, by how a
// completion is written (not part of `npm run bench`): the e2e limit is the data, not round
// trips, and this isolates it. 20,000 tasks are submitted over the API (real rows), then two
// connections drain them as claim windows do — lock 500 runnable tasks, write them, commit —
// with no server and no handler, so tasks/s is a ceiling for the write and `pg_cpu_us_per_task`
// its PostgreSQL CPU (every `postgres` process on the machine: run it on a quiet one).
//
//   node bench/tools/layout-probe.mjs [--tasks 20000] [--layouts current,one-row,no-events,delete] [--rounds 2]
//
// Layouts:
//   current    the engine's own statement (tasksCompleteMany, locked): the task row's update plus
//              WORKFLOW_STARTED, WORKFLOW_COMPLETED and STREAM_END as three event rows
//   one-row    the same update, the three events as one row (a JSON array): history written once
//   no-events  the same update and no events at all (a floor the product cannot ship: every task
//              writes its events)
//   delete     what graphile-worker does for a finished job: delete the row (no history at all)
// Needs `npm run build`. Each round runs every layout once on a fresh database, alternating.

import { parseArgs } from 'node:util';
import pg from 'pg';
import { enqueueOverApi, ensureBuilt, freshStore, PORT_BASE } from '../systems/taskgate.mjs';
import { postgresCpuMs } from '../lib/proc.mjs';
import { tasksCompleteMany, tasksLockAvailable } from '../../dist/storage/queries/transitions.js';

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '20000' },
    layouts: { type: 'string', default: 'current,one-row,no-events,delete' },
    rounds: { type: 'string', default: '2' },
  },
});
const n = Number(args.tasks);

/** The completion's UPDATE (as the engine's locked completion sets it) followed by `tail`. */
const update = (tail) => `WITH u AS (
  UPDATE tasks t SET status = 'COMPLETED', output = NULL, result = NULL, error = NULL, usage = NULL,
         attempt = t.attempt + 1, last_worker = $2, started_at = coalesce(t.started_at, now()), lease_owner = NULL,
         lease_expires_at = NULL, completed_at = statement_timestamp(), last_seq = t.last_seq + 3, updated_at = statement_timestamp()
   WHERE t.id = ANY (ARRAY(SELECT unnest($1::text[]))) AND t.lease_owner IS NULL
  RETURNING t.id, t.tenant_id, t.last_seq, t.attempt)${tail} SELECT id FROM u`;
const STATEMENTS = {
  'one-row': update(`, ev AS (
    INSERT INTO task_events (task_id, seq, tenant_id, type, message, payload, created_at)
    SELECT id, last_seq - 2, tenant_id, 'HISTORY', NULL, jsonb_build_array(
      jsonb_build_object('type', 'WORKFLOW_STARTED', 'message', 'Task started (attempt ' || attempt || ')', 'payload', jsonb_build_object('attempt', attempt, 'worker_id', $2::text)),
      jsonb_build_object('type', 'WORKFLOW_COMPLETED', 'message', 'Task completed', 'payload', jsonb_build_object('duration_ms', 0, 'attempt', attempt)),
      jsonb_build_object('type', 'STREAM_END', 'message', 'Stream ended', 'payload', '{"status":"COMPLETED"}'::jsonb)), now() FROM u)`),
  'no-events': update(''),
  delete: 'WITH u AS (DELETE FROM tasks t WHERE t.id = ANY (ARRAY(SELECT unnest($1::text[]))) RETURNING id) SELECT id FROM u',
};

async function run(layout) {
  await ensureBuilt();
  const store = await freshStore('pg');
  const clients = [];
  try {
    await enqueueOverApi('layout-api', store, PORT_BASE + 60, n);
    const connect = async () => {
      const c = new pg.Client({ connectionString: store.databaseUrl });
      await c.connect();
      clients.push(c);
      return c;
    };
    const setup = await connect();
    await setup.query('VACUUM ANALYZE tasks');
    await setup.query('CHECKPOINT');
    const as = (c) => ({ query: (text, values, o) => c.query({ text, values, name: o?.name }) });
    const drain = async (c) => {
      for (;;) {
        await c.query('BEGIN');
        const locked = await tasksLockAvailable(as(c), 500);
        if (locked.length === 0) return void (await c.query('COMMIT'));
        if (layout === 'current') {
          const rows = locked.map((t) => ({ id: t.id, attempt: t.attempt, output: null, result: null, usage: null, model_used: null, provider: null, metadata: null, duration_ms: 0 }));
          await tasksCompleteMany(as(c), 'layout-probe', rows, { locked: true });
        } else {
          const ids = locked.map((t) => t.id);
          await c.query({ text: STATEMENTS[layout], values: layout === 'delete' ? [ids] : [ids, 'layout-probe'], name: `layout_${layout}` });
        }
        await c.query('COMMIT');
      }
    };
    const lanes = [await connect(), await connect()];
    const cpu0 = postgresCpuMs();
    const t0 = performance.now();
    await Promise.all(lanes.map(drain));
    const wall = performance.now() - t0;
    const cpu = postgresCpuMs() - cpu0;
    return { layout, tasks_per_s: Math.round((n / wall) * 1000), pg_cpu_us_per_task: Math.round((cpu * 1000) / n) };
  } finally {
    for (const c of clients) await c.end();
    await store.dispose();
  }
}

const layouts = args.layouts.split(',');
for (const l of layouts) if (l !== 'current' && !STATEMENTS[l]) throw new Error(`unknown layout ${l}`);
for (let round = 0; round < Number(args.rounds); round++) {
  for (const l of layouts) console.log(JSON.stringify(await run(l)));
}
