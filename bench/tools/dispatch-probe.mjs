#!/usr/bin/env node
// Where dispatch latency goes, for work between full benchmark runs (not part of `npm run bench`):
//
//   node bench/tools/dispatch-probe.mjs [--tasks 500] [--db pg|pglite]
//
// Submits `bench_probe` tasks 5 ms apart over one keep-alive connection (the dispatch scenario's
// own warm-up and paced submits) and splits each submit → handler-start latency at the row's created_at (the database's
// clock when the insert statement started): before it, HTTP + auth + validation + batcher; after
// it, insert + commit + launch. Prints p50/p90/p99/max of each part and the slowest samples
// (with their time into the run: periodic stalls show up as clusters). Add `--trace-gc` to
// BENCH_TASKGATE_NODE_ARGS to match stalls with GC pauses.

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { disposeTemplates, freshStore, getJson, keepAliveClient, PORT_BASE, startTaskgate } from '../systems/taskgate.mjs';
import { percentilesLine, sleep, wallMs } from '../lib/util.mjs';
import { submitPaced, warmUp } from '../scenarios/dispatch.mjs';

const { values: args } = parseArgs({ options: { tasks: { type: 'string', default: '500' }, db: { type: 'string', default: 'pg' } } });
const n = Number(args.tasks);

const store = await freshStore(args.db);
const server = await startTaskgate('probe-dispatch', store, {
  port: PORT_BASE + 52, role: 'all', extraArgs: ['--tasks-dir', join(import.meta.dirname, '..', 'tasks')],
});
const client = keepAliveClient(server.url);
try {
  await warmUp(client, server.url, n);
  const t0 = wallMs();
  const { submitted, ids } = await submitPaced(client, n);
  await sleep(500);
  const rows = [];
  for (let i = 0; i < n; i++) {
    const t = await getJson(server.url, `/api/v1/tasks/${ids[i]}`);
    const start = t.output?.handler_start_ms;
    if (!Number.isFinite(start)) throw new Error(`task ${ids[i]} is ${t.status} without handler_start_ms`);
    const created = Date.parse(t.created_at);
    rows.push({ total: start - submitted[i], before: created - submitted[i], after: start - created, at: submitted[i] - t0 });
  }
  const line = (k) => percentilesLine(rows.map((r) => r[k]));
  console.log(`submit → handler start     ${line('total')}`);
  console.log(`  submit → created_at      ${line('before')}`);
  console.log(`  created_at → handler     ${line('after')}`);
  console.log('slowest (total / before / after ms, at ms into the run):');
  for (const r of [...rows].sort((a, b) => b.total - a.total).slice(0, 8)) {
    console.log(`  ${r.total.toFixed(1)} / ${r.before.toFixed(1)} / ${r.after.toFixed(1)}  at ${Math.round(r.at)}`);
  }
} finally {
  client.close();
  await server.proc.stop();
  await store.dispose();
  await disposeTemplates();
}
