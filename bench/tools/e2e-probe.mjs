#!/usr/bin/env node
// One end-to-end run on PostgreSQL with the figures that explain it, for engine work between
// full benchmark runs (not part of `npm run bench`):
//
//   node bench/tools/e2e-probe.mjs [--tasks 20000] [--concurrency 300] [--waits] [--statements]
//                                  [--timeline [--slot MS]]
//
// Prints tasks/s (as the e2e scenario measures it), the server's and PostgreSQL's CPU per task
// (µs; PostgreSQL = every `postgres` process on this machine, read from /proc), commits, and row
// counts. --timeline adds the completion rate per `--slot` ms (default 100) from the first
// start (how long a run takes to reach its pace). --waits samples pg_stat_activity every 2 ms
// (wait events per statement: lock and WAL waits vs CPU). --statements logs every statement of
// the run (log_min_duration_statement = 0 on the run's database) and sums them per prepared
// statement from the server log (PG_LOG, default Debian's). Profile the server with
// BENCH_TASKGATE_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR';
// --sql 'STATEMENT' (repeatable) runs on the run's database after the submits, before the workers
// start (what-if experiments: drop an index, change a setting). --perf FILE records the whole
// machine with `perf record -a` while the tasks run (then e.g.
// `perf report -i FILE --comm postgres --sort sym`).

import { readFileSync, statSync } from 'node:fs';
import { disposeTemplates, enqueueOverApi, ensureBuilt, freshStore, PORT_BASE, startTaskgate } from '../systems/taskgate.mjs';
import { withPg } from '../lib/services.mjs';
import { postgresCpuMs, resourceSampler } from '../lib/proc.mjs';
import { parseArgs } from 'node:util';
import { sleep, wallMs } from '../lib/util.mjs';
import { spawn } from 'node:child_process';

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '300' },
    waits: { type: 'boolean', default: false },
    statements: { type: 'boolean', default: false },
    perf: { type: 'string' },
    sql: { type: 'string', multiple: true, default: [] },
    timeline: { type: 'boolean', default: false },
    slot: { type: 'string', default: '100' },
  },
});
const n = Number(args.tasks);
const concurrency = Number(args.concurrency);
const PG_LOG = process.env.PG_LOG ?? '/var/log/postgresql/postgresql-15-main.log';


async function counters(db) {
  return withPg(db, async (c) => {
    const { rows: [x] } = await c.query('SELECT xact_commit::int AS commits FROM pg_stat_database WHERE datname = current_database()');
    const { rows } = await c.query(
      `SELECT relname, n_tup_ins::int AS ins, n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot
         FROM pg_stat_user_tables WHERE relname IN ('tasks', 'task_events')`,
    );
    return { commits: x.commits, tables: Object.fromEntries(rows.map((r) => [r.relname, r])) };
  });
}

/** Sums `duration: … ms  execute <name>` lines of the server log written since `offset`. */
function statementSummary(offset) {
  const text = readFileSync(PG_LOG, 'utf8').slice(offset);
  const sums = new Map();
  for (const m of text.matchAll(/duration: ([\d.]+) ms {2}(execute|statement)( [^:\s]+)?/g)) {
    const key = `${m[2]}${m[3] ?? ''}`;
    const s = sums.get(key) ?? { count: 0, ms: 0 };
    s.count++;
    s.ms += Number(m[1]);
    sums.set(key, s);
  }
  return [...sums].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8)
    .map(([k, s]) => `${k}: ${s.count} × ${(s.ms / s.count).toFixed(2)} ms`);
}

await ensureBuilt();
const store = await freshStore('pg');
const db = new URL(store.databaseUrl).pathname.slice(1);
try {
  await enqueueOverApi('probe-api', store, PORT_BASE + 50, n);
  for (const statement of args.sql) await withPg(db, (c) => c.query(statement));
  if (args.statements) await withPg(db, (c) => c.query(`ALTER DATABASE ${db} SET log_min_duration_statement = 0`));
  const logOffset = args.statements ? statSync(PG_LOG).size : 0;

  const before = await counters(db);
  const pgBefore = postgresCpuMs();
  const perf = args.perf ? spawn('perf', ['record', '-a', '-q', '-o', args.perf], { stdio: 'inherit' }) : undefined;
  if (perf) await sleep(300); // perf is recording once it has opened every CPU's buffer
  const server = await startTaskgate('probe-all', store, { port: PORT_BASE + 51, role: 'all', concurrency });
  const sampler = resourceSampler(server.proc.pid);
  sampler.start();
  const waits = new Map();
  let sampling = args.waits;
  const waitLoop = sampling
    ? withPg(db, async (c) => {
        while (sampling) {
          const { rows } = await c.query(
            `SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-') || '  ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 40) AS w
               FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'`,
          );
          for (const r of rows) waits.set(r.w, (waits.get(r.w) ?? 0) + 1);
          await sleep(2);
        }
      })
    : undefined;
  let doneAt = 0;
  await withPg(db, async (c) => {
    for (;;) {
      const { rows } = await c.query(`SELECT EXISTS (SELECT 1 FROM tasks WHERE status IN ('QUEUED', 'RUNNING')) AS busy`);
      if (!rows[0].busy) return (doneAt = wallMs());
      await sleep(10);
    }
  });
  const cpu = sampler.stop();
  const pgMs = postgresCpuMs() - pgBefore;
  if (perf) {
    perf.kill('SIGINT');
    await new Promise((r) => perf.once('exit', r));
  }
  sampling = false;
  await waitLoop;
  await server.proc.stop();
  await sleep(700); // statistics reach pg_stat_* shortly after the backends exit
  const after = await counters(db);
  const { rows: [st] } = await withPg(db, (c) =>
    c.query(`SELECT count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed, extract(epoch FROM min(started_at)) * 1000 AS first FROM tasks`));
  const seconds = (doneAt - Number(st.first)) / 1000;
  const delta = (t, k) => after.tables[t][k] - before.tables[t][k];
  console.log(JSON.stringify({
    tasks: n, concurrency, completed: st.completed, tasks_per_s: Math.round(n / seconds), seconds: Number(seconds.toFixed(3)),
    server_cpu_us_per_task: Math.round((cpu.cpuPct / 100) * seconds * 1e6 / n), postgres_cpu_us_per_task: Math.round((pgMs * 1000) / n),
    commits: after.commits - before.commits,
    task_updates: delta('tasks', 'upd'), task_hot_updates: delta('tasks', 'hot'), event_inserts: delta('task_events', 'ins'),
  }, null, 1));
  if (waits.size) console.log([...waits].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, v]) => `${String(v).padStart(6)}  ${k}`).join('\n'));
  if (args.statements) console.log(statementSummary(logOffset).join('\n'));
  if (args.timeline) {
    // completions per slot from the first start: how long the run takes to reach its pace
    const slot = Number(args.slot);
    const { rows } = await withPg(db, (c) => c.query(
      `SELECT floor(extract(epoch FROM completed_at - $1::timestamptz) * 1000 / $2)::int AS slot, count(*)::int AS n
         FROM tasks GROUP BY 1 ORDER BY 1`, [new Date(Number(st.first)).toISOString(), slot]));
    console.log(rows.map((r) => `${String(r.slot * slot).padStart(6)} ms  ${String(Math.round((r.n * 1000) / slot)).padStart(6)} tasks/s`).join('\n'));
  }
} finally {
  await store.dispose();
  await disposeTemplates();
}
