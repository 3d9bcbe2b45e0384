// End-to-end throughput: N no-op tasks enqueued first (Taskgate: over its API with workers
// off; peers: their bulk enqueue), then workers start; tasks/s = N / (first handler start →
// all observed done). Taskgate's first start is min(started_at); "done" is polled every 10 ms
// (PostgreSQL: SQL on the partial indexes; PGlite: the list API every 50 ms).

import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { resourceSampler } from '../lib/proc.mjs';
import { withPg } from '../lib/services.mjs';
import { sleep, wallMs } from '../lib/util.mjs';
import { peerCases } from '../systems/peers.mjs';
import { enqueueOverApi, freshStore, getJson, startTaskgate } from '../systems/taskgate.mjs';

/**
 * Worker slots for Taskgate in this scenario, tuned like the peers' knobs (BullMQ concurrency,
 * graphile-worker's 500-job local queue, pg-boss batchSize): for short tasks a slot is an
 * in-process async call, and the free slots bound how many tasks one claim window takes.
 * Measured here (3 × 3 runs, interleaved): 100 → 10.0–12.3k, 300 → 12.7–14.5k, 500 → 13.4–13.8k
 * tasks/s (docs/benchmarks.md, "How the peers are configured, and why").
 */
export const TASKGATE_E2E_CONCURRENCY = 300;

async function pgStats(databaseUrl) {
  const db = new URL(databaseUrl).pathname.slice(1);
  return withPg(db, async (c) => {
    const { rows } = await c.query(
      `select count(*) filter (where status = 'COMPLETED')::int as completed,
              count(*)::int as total,
              extract(epoch from min(started_at)) * 1000 as first_start_ms
         from tasks`,
    );
    return rows[0];
  });
}

async function pgliteStats(dataDir) {
  const db = await PGlite.create({ dataDir: join(dataDir, 'pgdata') });
  try {
    const { rows } = await db.query(
      `select count(*) filter (where status = 'COMPLETED')::int as completed,
              count(*)::int as total,
              extract(epoch from min(started_at)) * 1000 as first_start_ms
         from tasks`,
    );
    return rows[0];
  } finally {
    await db.close();
  }
}

async function taskgateRun(ctx, db, n, timeoutMs) {
  const store = await freshStore(db);
  let all;
  try {
    await enqueueOverApi(`taskgate-${db}-e2e-api`, store, ctx.nextPort(), n);
    all = await startTaskgate(`taskgate-${db}-e2e`, store, {
      port: ctx.nextPort(),
      role: 'all',
      concurrency: TASKGATE_E2E_CONCURRENCY,
    });
    const sampler = resourceSampler(all.proc.pid);
    sampler.start();
    const deadline = Date.now() + timeoutMs;
    let doneAt = 0;
    if (db === 'pg') {
      const dbName = new URL(store.databaseUrl).pathname.slice(1);
      await withPg(dbName, async (c) => {
        while (Date.now() < deadline) {
          const { rows } = await c.query(
            `select exists(select 1 from tasks where status = 'QUEUED') or exists(select 1 from tasks where status = 'RUNNING') as busy`,
          );
          if (!rows[0].busy) {
            doneAt = wallMs();
            return;
          }
          await sleep(10);
        }
      });
    } else {
      while (Date.now() < deadline) {
        const q = await getJson(all.url, '/api/v1/tasks?status=QUEUED&limit=1');
        const r = await getJson(all.url, '/api/v1/tasks?status=RUNNING&limit=1');
        if (q.total_count === 0 && r.total_count === 0) {
          doneAt = wallMs();
          break;
        }
        await sleep(50);
      }
    }
    const res = sampler.stop();
    await all.proc.stop();
    all = undefined;
    if (!doneAt) throw new Error(`not all ${n} tasks finished within ${timeoutMs} ms`);
    const stats = db === 'pg' ? await pgStats(store.databaseUrl) : await pgliteStats(store.dataDir);
    if (stats.total !== n || stats.completed !== n) {
      throw new Error(`expected ${n} COMPLETED tasks, found ${stats.completed} of ${stats.total}`);
    }
    const seconds = (doneAt - Number(stats.first_start_ms)) / 1000;
    return [
      { metric: 'tasks_per_s', value: n / seconds, unit: 'tasks/s' },
      { metric: 'cpu_pct', value: res.cpuPct, unit: '% of 1 core' },
      { metric: 'rss_peak_mb', value: res.peakRssMb, unit: 'MiB' },
    ];
  } finally {
    await all?.proc.stop();
    await store.dispose();
  }
}

export default {
  name: 'e2e',
  title: 'end-to-end throughput, pre-enqueued no-op tasks',
  cases(ctx) {
    const n = ctx.quick ? 200 : 20_000;
    // PGlite is one process on one connection: 20,000 submits + runs there take ~10 min today
    const nPglite = 2_000;
    const timeoutMs = ctx.quick ? 60_000 : 300_000;
    // --quick: PostgreSQL only (on PGlite two server starts and stops cost ~20 s here)
    const cases = (ctx.quick ? ['pg'] : ['pg', 'pglite']).map((db) => ({
      system: 'taskgate',
      db,
      run: async () => [
        { metric: 'tasks', value: db === 'pg' ? n : nPglite, unit: 'tasks' },
        ...(await taskgateRun(ctx, db, db === 'pg' ? n : nPglite, timeoutMs)),
      ],
    }));
    cases.push(
      ...peerCases(
        () => ({ mode: 'e2e', n, timeoutMs, hardTimeoutMs: timeoutMs + 120_000 }),
        async (proc) => {
          const first = await proc.waitMessage((m) => m.type === 'enqueued' || m.type === 'error', 120_000, 'enqueue');
          if (first.type === 'error') throw new Error(first.error);
          const sampler = resourceSampler(proc.pid);
          sampler.start();
          const m = await proc.waitMessage((x) => x.type === 'result' || x.type === 'error', timeoutMs + 30_000, 'e2e result');
          const res = sampler.stop();
          if (m.type === 'error') throw new Error(m.error);
          return [
            { metric: 'tasks', value: n, unit: 'tasks' },
            { metric: 'tasks_per_s', value: m.result.tasks_per_s, unit: 'tasks/s' },
            { metric: 'cpu_pct', value: res.cpuPct, unit: '% of 1 core' },
            { metric: 'rss_peak_mb', value: res.peakRssMb, unit: 'MiB' },
          ];
        },
      ),
    );
    return cases;
  },
};
