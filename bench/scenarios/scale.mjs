// Scale: ROWS tasks bulk-inserted with SQL (INSERT … SELECT generate_series) into a migrated
// database, ANALYZEd, then `serve --role api` answers GET /api/v1/tasks/{id} (random ids)
// and a filtered list (status=COMPLETED, limit 20) to one client, one request at a time.
// The rows are 90 % COMPLETED, 10 % FAILED, in the bootstrapped tenant "default", 1 s apart.
// --quick: 20,000 rows, PostgreSQL only (a PGlite server start + stop costs ~8 s here).

import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { loadGeneratorCommand } from '../lib/load.mjs';
import { startProcess } from '../lib/proc.mjs';
import { withPg } from '../lib/services.mjs';
import { log, wallMs } from '../lib/util.mjs';
import { ADMIN_KEY, freshStore, startTaskgate } from '../systems/taskgate.mjs';

const CLIENT = join(import.meta.dirname, '..', 'load', 'latency-client.mjs');

const insertSql = (rows) => `
INSERT INTO tasks (id, tenant_id, user_id, kind, task_definition_id, input, status, attempt, max_attempts,
                   retry_interval_ms, backoff_multiplier, timeout_ms, output, run_at, created_at,
                   started_at, completed_at, updated_at)
SELECT 'task_bench_' || lpad(g::text, 8, '0'), 'default', 'admin', 'definition', 'noop', '{}'::jsonb,
       CASE WHEN g % 10 = 0 THEN 'FAILED' ELSE 'COMPLETED' END, 1, 4, 1000, 2, 300000, '{}'::jsonb,
       t, t, t + interval '5 ms', t + interval '10 ms', t + interval '10 ms'
  FROM generate_series(1, ${rows}) AS g,
       LATERAL (SELECT now() - (${rows} - g) * interval '1 second' AS t) AS ts;`;

/**
 * After the bulk load, the table as autovacuum would leave it (this machine runs PostgreSQL with
 * autovacuum off): without it, the first read of each page sets its rows' hint bits and dirties
 * it, and the measured reads then pay for writing back a million fresh rows, not for the table's size.
 */
const SETTLE = ['VACUUM (ANALYZE) tasks', 'CHECKPOINT'];

async function fill(store, rows) {
  const t0 = wallMs();
  if (store.db === 'pg') {
    await withPg(new URL(store.databaseUrl).pathname.slice(1), async (c) => {
      await c.query(insertSql(rows));
      for (const sql of SETTLE) await c.query(sql);
    });
  } else {
    const db = await PGlite.create({ dataDir: join(store.dataDir, 'pgdata') });
    try {
      await db.exec(insertSql(rows));
      for (const sql of SETTLE) await db.exec(sql);
    } finally {
      await db.close();
    }
  }
  log(`    inserted ${rows.toLocaleString('en-US')} rows into ${store.db} in ${((wallMs() - t0) / 1000).toFixed(1)} s`);
}

/**
 * `count` timed GETs after as many untimed ones: a server's first 2,000 GETs after its start ran
 * at p50 0.87–1.22 / p99 5.4–5.9 ms, the next 2,000 at 0.56–0.74 / 3.7–5.2, on a small table as on
 * a large one and whatever the ids (V8 tiering up the request path; not young-generation sizing:
 * --min-semi-space-size=16 changed nothing). The scenario asks what the table's size costs a
 * running server, not what a cold start costs.
 */
async function measure(name, url, path, maxK, count) {
  const opts = { url, path, maxK, count, warmup: count, headers: { 'X-API-Key': ADMIN_KEY }, budgetMs: 120_000 };
  const { cmd, args } = loadGeneratorCommand(CLIENT, JSON.stringify(opts));
  const proc = startProcess(name, cmd, args, { ipc: true });
  try {
    const m = await proc.waitMessage((x) => x.type === 'result' || x.type === 'error', 180_000, 'latency result');
    if (m.type === 'error') throw new Error(m.error);
    return m.result;
  } finally {
    await proc.stop(2_000);
  }
}

export default {
  name: 'scale',
  title: 'reads with a large tasks table: GET by id and a filtered list, 1 client',
  cases(ctx) {
    const rows = ctx.quick ? 20_000 : 1_000_000;
    const count = ctx.quick ? 200 : 2_000;
    // the fill is the slow part and the runs only read: fill once per store, then every run
    // restarts the server (a new process, warmed up by measure()) on the same data;
    // dropped after the last run
    const stores = new Map();
    return (ctx.quick ? ['pg'] : ['pg', 'pglite']).map((db) => ({
      system: 'taskgate',
      db,
      async run(runIndex) {
        let tg;
        let store = stores.get(db);
        try {
          if (!store) {
            store = await freshStore(db);
            stores.set(db, store);
            await fill(store, rows);
          }
          tg = await startTaskgate(`taskgate-${db}-scale`, store, { port: ctx.nextPort(), role: 'api' });
          const get = await measure(`taskgate-${db}-scale-get`, tg.url, '/api/v1/tasks/task_bench_{k}', rows, count);
          const list = await measure(`taskgate-${db}-scale-list`, tg.url, '/api/v1/tasks?status=COMPLETED&limit=20', rows, count);
          return [
            { metric: 'rows', value: rows, unit: 'rows' },
            { metric: 'get_p50_ms', value: get.p50_ms, unit: 'ms' },
            { metric: 'get_p99_ms', value: get.p99_ms, unit: 'ms' },
            { metric: 'list_p50_ms', value: list.p50_ms, unit: 'ms' },
            { metric: 'list_p99_ms', value: list.p99_ms, unit: 'ms' },
          ];
        } catch (err) {
          await tg?.proc.stop();
          tg = undefined;
          stores.delete(db);
          await store?.dispose();
          throw err;
        } finally {
          await tg?.proc.stop();
          if (runIndex >= ctx.runs && stores.has(db)) {
            stores.delete(db);
            await store.dispose();
          }
        }
      },
    }));
  },
};
