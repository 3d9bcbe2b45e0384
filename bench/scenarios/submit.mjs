// Durable submit over HTTP: POST /api/v1/tasks at 64 connections (autocannon, own process,
// pinned core). Taskgate runs `--role api` (auth + schema validation + the durable insert);
// the peers answer the same route from a bare Fastify handler calling their enqueue; the
// reference ceilings are one INSERT per request, and the same route with no database.
// The `memory` rows come from here too: RSS after start-up (idle) and its peak under load.

import { runLoad } from '../lib/load.mjs';
import { BASELINES, peerCases, spawnBaseline, stopPeer, waitReady } from '../systems/peers.mjs';
import { AUTH, NOOP_BODY, freshStore, startTaskgate } from '../systems/taskgate.mjs';
import { benchName, freshDatabase, dropDatabase } from '../lib/services.mjs';
import { procStats } from '../lib/proc.mjs';
import { sleep } from '../lib/util.mjs';

/** RSS after start-up, before any load: the `memory` scenario's idle figure. */
async function idleRss(ctx, pid) {
  await sleep(ctx.quick ? 500 : 2_000);
  return { scenario: 'memory', metric: 'rss_idle_mb', value: procStats(pid)?.rssMb ?? Number.NaN, unit: 'MiB' };
}

function rows(r, idle) {
  const failed = (r.non2xx ?? 0) + (r.errors ?? 0); // autocannon's errors include its timeouts
  if (r.ok === 0) throw new Error(`no request completed in ${r.durationSec} s (${failed} failed)`);

  const out = [
    idle,
    { scenario: 'memory', metric: 'rss_load_mb', value: r.peakRssMb, unit: 'MiB' },
    { metric: 'rps', value: r.rps, unit: 'req/s' },
    { metric: 'p50_ms', value: r.p50_ms, unit: 'ms' },
    { metric: 'p99_ms', value: r.p99_ms, unit: 'ms' },
    { metric: 'cpu_pct', value: r.cpuPct, unit: '% of 1 core' },
  ];
  if (failed > 0) out.push({ metric: 'failed_requests', value: failed, unit: 'count' });
  // more than 1 % failed: keep the figures (rps counts 2xx only) but record the case as an error
  if (failed > 0.01 * (r.ok + failed)) {
    out.push({ error: `${failed} of ${r.ok + failed} requests failed (non-2xx ${r.non2xx}, errors ${r.errors} of which timeouts (> 10 s) ${r.timeouts})` });
  }
  return out;
}

function loadOpts(ctx, url, headers) {
  return {
    url: `${url}/api/v1/tasks`,
    method: 'POST',
    headers,
    body: NOOP_BODY,
    connections: 64,
    durationSec: ctx.quick ? 3 : 10,
    warmupSec: ctx.quick ? 1 : 2,
  };
}

export default {
  name: 'submit',
  title: 'durable submit, POST /api/v1/tasks, 64 connections',
  cases(ctx) {
    const cases = [];
    for (const db of ['pg', 'pglite']) {
      cases.push({
        system: 'taskgate',
        db,
        async run() {
          const store = await freshStore(db);
          const tg = await startTaskgate(`taskgate-${db}-submit`, store, { port: ctx.nextPort(), role: 'api' });
          try {
            const idle = await idleRss(ctx, tg.proc.pid);
            return rows(await runLoad(`taskgate-${db}-submit`, loadOpts(ctx, tg.url, AUTH), tg.proc.pid), idle);
          } finally {
            await tg.proc.stop();
            await store.dispose();
          }
        },
      });
    }
    for (const b of BASELINES) {
      cases.push({
        system: b.system,
        db: b.db,
        async run() {
          const store = b.db === 'pg' ? { databaseUrl: await freshDatabase(benchName('baseline')) } : {};
          const port = ctx.nextPort();
          const proc = spawnBaseline(b, store, port);
          try {
            await waitReady(proc);
            const idle = await idleRss(ctx, proc.pid);
            const opts = loadOpts(ctx, `http://127.0.0.1:${port}`, { 'content-type': 'application/json' });
            return rows(await runLoad(b.system, opts, proc.pid), idle);
          } finally {
            await proc.stop();
            if (b.db === 'pg') await dropDatabase(benchName('baseline'));
          }
        },
      });
    }
    cases.push(
      ...peerCases(
        () => ({ mode: 'submit', port: ctx.nextPort() }),
        async (proc, cfg) => {
          await waitReady(proc);
          const idle = await idleRss(ctx, proc.pid);
          const opts = loadOpts(ctx, `http://127.0.0.1:${cfg.port}`, { 'content-type': 'application/json' });
          return rows(await runLoad(proc.name, opts, proc.pid), idle);
        },
        stopPeer,
      ),
    );
    // Taskgate on PGlite last: in --quick its template (initdb + migrate) builds meanwhile
    const i = cases.findIndex((c) => c.system === 'taskgate' && c.db === 'pglite');
    return [...cases.slice(0, i), ...cases.slice(i + 1), cases[i]];
  },
};
