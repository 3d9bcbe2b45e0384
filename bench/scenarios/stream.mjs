// Stream latency: a `sleep` task emits one PROGRESS event per step; SSE clients (own process,
// pinned core) subscribed to its workflow record receive time − the event's `timestamp` (the
// server's write time), with 1 and with 1,000 clients. The task is submitted with a delay so
// every client is connected before the first event; RSS while holding 1,000 clients is the
// `memory` scenario's rss_sse1000_mb. Skipped (noted) while the SSE route answers 404.
// --quick runs it on PostgreSQL only: a PGlite server start + stop costs ~8 s here.

import { join } from 'node:path';
import { loadGeneratorCommand } from '../lib/load.mjs';
import { procStats, startProcess } from '../lib/proc.mjs';
import { AUTH, ADMIN_KEY, NOOP_BODY, freshStore, startTaskgate } from '../systems/taskgate.mjs';

const CLIENT = join(import.meta.dirname, '..', 'load', 'sse-clients.mjs');
const ROUTES = ['/api/v1/stream/sse', '/stream/sse'];

async function submit(url, body) {
  const r = await fetch(`${url}/api/v1/tasks`, { method: 'POST', headers: AUTH, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`submit ${body.task_definition_id}: ${r.status} ${await r.text()}`);
  return (await r.json()).workflow_id;
}

/** The first SSE route that does not answer 404 for a real workflow, or undefined. */
async function findRoute(url) {
  const r0 = await fetch(`${url}/api/v1/tasks`, { method: 'POST', headers: AUTH, body: NOOP_BODY });
  const wid = (await r0.json()).workflow_id;
  for (const route of ROUTES) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 3_000);
    try {
      const r = await fetch(`${url}${route}?workflow_id=${wid}`, { headers: { 'X-API-Key': ADMIN_KEY }, signal: ac.signal });
      ac.abort();
      if (r.status !== 404) return route;
    } catch {
      /* aborted after headers: the route exists */
      return route;
    } finally {
      clearTimeout(timer);
    }
  }
  return undefined;
}

async function fanOut(tg, route, clients, steps, delayMs) {
  const wid = await submit(tg.url, { task_definition_id: 'sleep', input: { ms: 20, steps }, delay_ms: delayMs });
  const opts = { url: tg.url, path: `${route}?workflow_id=${wid}`, clients, headers: { 'X-API-Key': ADMIN_KEY }, budgetMs: delayMs + steps * 20 + 30_000 };
  const { cmd, args } = loadGeneratorCommand(CLIENT, JSON.stringify(opts));
  const proc = startProcess(`${tg.proc.name}-sse-${clients}`, cmd, args, { ipc: true });
  try {
    const c = await proc.waitMessage((m) => m.type === 'connected', opts.budgetMs + 10_000, 'SSE clients connected');
    const rssMb = procStats(tg.proc.pid)?.rssMb;
    const m = await proc.waitMessage((x) => x.type === 'result', opts.budgetMs + 10_000, 'SSE result');
    const r = m.result;
    if (r.failed > 0 || c.failed > 0) throw new Error(`${r.failed} of ${clients} SSE clients failed: ${r.firstError}`);
    if (r.samples === 0) throw new Error('no live event was received');
    return { ...r, rssMb };
  } finally {
    await proc.stop(2_000);
  }
}

export default {
  name: 'stream',
  title: 'stream latency, event write → SSE client receive, 1 and 1,000 clients',
  cases(ctx) {
    const steps = ctx.quick ? 20 : 100;
    const skipped = [{ metric: 'skipped', value: null, unit: '', note: `skipped: ${ROUTES.join(' and ')} answer 404 (SSE not implemented yet)` }];
    let missing = false; // the route is the same code on both stores: probe once
    return (ctx.quick ? ['pg'] : ['pg', 'pglite']).map((db) => ({
      system: 'taskgate',
      db,
      async run() {
        if (missing) return skipped;
        const store = await freshStore(db);
        const tg = await startTaskgate(`taskgate-${db}-stream`, store, { port: ctx.nextPort(), role: 'all' });
        try {
          const route = await findRoute(tg.url);
          if (!route) {
            missing = true;
            return skipped;
          }
          const one = await fanOut(tg, route, 1, steps, 500);
          const many = await fanOut(tg, route, 1_000, steps, 3_000);
          return [
            { metric: 'p50_ms_1', value: one.p50_ms, unit: 'ms' },
            { metric: 'p99_ms_1', value: one.p99_ms, unit: 'ms' },
            { metric: 'p50_ms_1000', value: many.p50_ms, unit: 'ms' },
            { metric: 'p99_ms_1000', value: many.p99_ms, unit: 'ms' },
            { scenario: 'memory', metric: 'rss_sse1000_mb', value: many.rssMb, unit: 'MiB' },
          ];
        } finally {
          await tg.proc.stop();
          await store.dispose();
        }
      },
    }));
  },
};
