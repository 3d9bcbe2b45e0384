#!/usr/bin/env node
// PostgreSQL's share of the e2e hot path, statement by statement, with no server around it: the
// claim window's lock and completion (queries/transitions.ts, as engine/claim-window.ts runs
// them) on one connection, window after window, until the queue is empty. Not part of
// `npm run bench`; for what-if experiments on the schema between full runs:
//
//   node bench/tools/window-probe.mjs [--tasks 20000] [--window 300] [--runs 3] [--sql 'DROP INDEX …']
//
// Each run submits the tasks over the API (workers off) into a fresh database, runs `--sql`
// (repeatable), then the windows; prints tasks/s from one connection and the milliseconds per
// window (µs per task) of the lock, the completion and the commit.
import { parseArgs } from 'node:util';
import { disposeTemplates, enqueueOverApi, ensureBuilt, freshStore, PORT_BASE } from '../systems/taskgate.mjs';
import { withPg } from '../lib/services.mjs';

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '20000' },
    window: { type: 'string', default: '300' },
    runs: { type: 'string', default: '3' },
    sql: { type: 'string', multiple: true, default: [] },
  },
});

await ensureBuilt();
const { openPg } = await import('../../dist/storage/pg.js');
const { tasksCompleteMany, tasksLockAvailable } = await import('../../dist/storage/queries/transitions.js');

/** Locks and completes every queued task of `databaseUrl`, `size` per window; sums the phases. */
async function drain(databaseUrl, size) {
  const db = await openPg({ connectionString: databaseUrl, maxConnections: 1 });
  const ms = { lock: 0, complete: 0, commit: 0 };
  let tasks = 0;
  let windows = 0;
  const started = performance.now();
  try {
    for (;;) {
      let n = 0;
      let committing = 0;
      await db.transaction(async (tx) => {
        let at = performance.now();
        const locked = await tasksLockAvailable(tx, size);
        ms.lock += performance.now() - at;
        n = locked.length;
        if (n === 0) return;
        at = performance.now();
        const rows = locked.map((t) => ({
          id: t.id, attempt: t.attempt, output: null, result: null, usage: null, model_used: null, provider: null, metadata: null, duration_ms: 0,
        }));
        const written = await tasksCompleteMany(tx, 'window-probe', rows, { locked: true });
        if (written.size !== n) throw new Error(`completed ${written.size} of ${n} locked tasks`);
        ms.complete += performance.now() - at;
        committing = performance.now();
      });
      if (n === 0) break;
      ms.commit += performance.now() - committing;
      tasks += n;
      windows++;
    }
  } finally {
    await db.close();
  }
  const wall = performance.now() - started;
  const per = (x) => `${(x / windows).toFixed(2)} ms/window (${((x * 1000) / tasks).toFixed(1)} µs/task)`;
  return { tasks, windows, tasks_per_s: Math.round(tasks / (wall / 1000)), lock: per(ms.lock), complete: per(ms.complete), commit: per(ms.commit) };
}

try {
  for (let run = 1; run <= Number(args.runs); run++) {
    const store = await freshStore('pg');
    try {
      await enqueueOverApi('window-probe-api', store, PORT_BASE + 52, Number(args.tasks));
      const dbName = new URL(store.databaseUrl).pathname.slice(1);
      for (const statement of args.sql) await withPg(dbName, (c) => c.query(statement));
      // the table as e2e finds it after the submits, minus autovacuum's timing
      await withPg(dbName, async (c) => {
        await c.query('VACUUM ANALYZE tasks');
        await c.query('CHECKPOINT');
      });
      console.log(JSON.stringify({ run, ...(await drain(store.databaseUrl, Number(args.window))) }));
    } finally {
      await store.dispose();
    }
  }
} finally {
  await disposeTemplates();
}
