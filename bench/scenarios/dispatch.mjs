// Dispatch latency: idle workers, N tasks submitted one by one `GAP_MS` apart; latency is
// submit start (client wall clock) → handler start (the handler's own wall-clock stamp).
// Taskgate: the client is this process over HTTP (node:http, one keep-alive connection), the handler is bench/tasks/bench-probe.mjs
// (loaded with --tasks-dir) returning its start time. Peers: producer and worker share the
// peer's process; the handler stamps its start. Taskgate also reports queued_p50/p99_ms,
// created_at → started_at (server clock, ms resolution), to show where the time goes.

import { join } from 'node:path';
import { percentile, sleep, wallMs } from '../lib/util.mjs';
import { peerCases } from '../systems/peers.mjs';
import { freshStore, getJson, keepAliveClient, startTaskgate } from '../systems/taskgate.mjs';

export const GAP_MS = 5;
const PROBE_BODY = JSON.stringify({ task_definition_id: 'bench_probe', input: {} });
const TASKS_DIR = join(import.meta.dirname, '..', 'tasks');

/**
 * Untimed warm-up, for every system alike (the peers get `warmup: n`): as many tasks as are then
 * measured, GAP_MS apart; waits until they completed, then lets the workers go idle for a second.
 * JIT and first-use costs are not dispatch latency: after 20 warm-up tasks (sessions 2–5)
 * Taskgate's p99 over the next 500 was 9.8–14.6 ms, after 500 5.9–6.1 (dispatch-probe, session 6).
 */
export async function warmUp(client, url, n) {
  const warmIds = [];
  for (let i = 0; i < n; i++) {
    const warm = await client.post('/api/v1/tasks', PROBE_BODY);
    if (warm.status !== 200 && warm.status !== 201) throw new Error(`submit bench_probe: ${warm.status} ${JSON.stringify(warm.json)}`);
    warmIds.push(warm.json.task_id);
    await sleep(GAP_MS);
  }
  for (const id of warmIds) {
    const deadline = Date.now() + 30_000;
    while ((await getJson(url, `/api/v1/tasks/${id}`)).status !== 'COMPLETED') {
      if (Date.now() > deadline) throw new Error(`warm-up task ${id} did not complete`);
      await sleep(20);
    }
  }
  await sleep(1_000);
}

/** `n` bench_probe submits, each GAP_MS after the previous one started; their start times and ids. */
export async function submitPaced(client, n) {
  const submitted = new Array(n);
  const ids = new Array(n);
  let next = wallMs();
  for (let i = 0; i < n; i++) {
    const wait = next - wallMs();
    if (wait > 0) await sleep(wait);
    submitted[i] = wallMs();
    const r = await client.post('/api/v1/tasks', PROBE_BODY);
    if (r.status !== 200 && r.status !== 201) throw new Error(`submit: ${r.status} ${JSON.stringify(r.json)}`);
    ids[i] = r.json.task_id;
    next = submitted[i] + GAP_MS;
  }
  return { submitted, ids };
}

async function taskgateRun(ctx, db, n) {
  const store = await freshStore(db);
  const tg = await startTaskgate(`taskgate-${db}-dispatch`, store, {
    port: ctx.nextPort(),
    role: 'all',
    extraArgs: ['--tasks-dir', TASKS_DIR],
  });
  const client = keepAliveClient(tg.url);
  try {
    await warmUp(client, tg.url, n);
    const { submitted, ids } = await submitPaced(client, n);
    const deadline = Date.now() + 60_000;
    const lat = [];
    const queued = []; // diagnostic: created_at → started_at, both stamped by the server
    for (let i = 0; i < n; i++) {
      for (;;) {
        const t = await getJson(tg.url, `/api/v1/tasks/${ids[i]}`);
        if (t.status === 'COMPLETED') {
          const start = t.output?.handler_start_ms;
          if (!Number.isFinite(start)) throw new Error(`task ${ids[i]} has no handler_start_ms in its output`);
          lat.push(start - submitted[i]);
          queued.push(Date.parse(t.started_at) - Date.parse(t.created_at));
          break;
        }
        if (['FAILED', 'CANCELLED', 'TIMEOUT'].includes(t.status)) throw new Error(`task ${ids[i]} ended ${t.status}: ${t.error}`);
        if (Date.now() > deadline) throw new Error(`task ${ids[i]} still ${t.status} after 60 s`);
        await sleep(20);
      }
    }
    return [
      { metric: 'p50_ms', value: percentile(lat, 50), unit: 'ms' },
      { metric: 'p99_ms', value: percentile(lat, 99), unit: 'ms' },
      { metric: 'queued_p50_ms', value: percentile(queued, 50), unit: 'ms' },
      { metric: 'queued_p99_ms', value: percentile(queued, 99), unit: 'ms' },
    ];
  } finally {
    client.close();
    await tg.proc.stop();
    await store.dispose();
  }
}

export default {
  name: 'dispatch',
  title: `dispatch latency, submit → handler start, tasks ${GAP_MS} ms apart`,
  cases(ctx) {
    const n = ctx.quick ? 50 : 500;
    const cases = ['pg', 'pglite'].map((db) => ({ system: 'taskgate', db, run: () => taskgateRun(ctx, db, n) }));
    cases.push(
      ...peerCases(
        () => ({ mode: 'dispatch', n, gapMs: GAP_MS, warmup: n, timeoutMs: 60_000, hardTimeoutMs: 180_000 }),
        async (proc) => {
          const m = await proc.waitMessage((x) => x.type === 'result' || x.type === 'error', 180_000, 'dispatch result');
          if (m.type === 'error') throw new Error(m.error);
          return [
            { metric: 'p50_ms', value: m.result.p50_ms, unit: 'ms' },
            { metric: 'p99_ms', value: m.result.p99_ms, unit: 'ms' },
          ];
        },
      ),
    );
    return cases;
  },
};
