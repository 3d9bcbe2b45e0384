#!/usr/bin/env node
// How long one tenant's task waits behind another tenant's backlog (not part of `npm run bench`):
//
//   node bench/tools/fairness-probe.mjs [--backlog 2000] [--ms 20] [--db pg|pglite] [--samples 5]
//
// One `serve` (default concurrency 10). Tenant A (the bench admin's) queues `backlog` sleep tasks
// of `ms` each, 64 submits in flight; tenant B, created over the admin API with a key of its own,
// then submits one sleep of 0 ms at a time, `samples` times, each once the last has completed.
// Prints B's submit → COMPLETED times and how much of A's backlog was waiting at each submit. Under the
// claim order before migration 0010 (one global FIFO per priority) B waited for A's whole
// backlog: about backlog × ms / 10 slots.

import { parseArgs } from 'node:util';
import { AUTH, disposeTemplates, freshStore, getJson, PORT_BASE, startTaskgate, submitMany } from '../systems/taskgate.mjs';
import { percentilesLine, sleep, wallMs } from '../lib/util.mjs';

const { values: args } = parseArgs({
  options: {
    backlog: { type: 'string', default: '2000' }, ms: { type: 'string', default: '20' },
    db: { type: 'string', default: 'pg' }, samples: { type: 'string', default: '5' },
  },
});
const backlog = Number(args.backlog);
const samples = Number(args.samples);

async function post(url, path, body, headers = AUTH) {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const json = await r.json();
  if (r.status >= 300) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}

const store = await freshStore(args.db);
const server = await startTaskgate('probe-fairness', store, { port: PORT_BASE + 53, role: 'all' });
try {
  const b = await post(server.url, '/api/v1/admin/tenants', { name: 'probe-b' });
  const { key } = await post(server.url, `/api/v1/admin/tenants/${b.tenant_id}/api-keys`, {
    name: 'probe', scopes: ['tasks:execute', 'tasks:read'],
  });
  const bHeaders = { 'X-API-Key': key, 'content-type': 'application/json' };

  await submitMany(server.url, backlog, 64, JSON.stringify({ task_definition_id: 'sleep', input: { ms: Number(args.ms) } }));
  const waits = [];
  const queuedAtSubmit = [];
  for (let i = 0; i < samples; i++) {
    queuedAtSubmit.push((await getJson(server.url, '/api/v1/tasks?status=QUEUED&limit=1')).total_count);
    const t0 = wallMs();
    const { task_id: id } = await post(server.url, '/api/v1/tasks', { task_definition_id: 'sleep', input: { ms: 0 } }, bHeaders);
    for (;;) {
      const r = await fetch(`${server.url}/api/v1/tasks/${id}`, { headers: bHeaders });
      const t = await r.json();
      if (t.status === 'COMPLETED') break;
      if (t.status !== 'QUEUED' && t.status !== 'RUNNING') throw new Error(`B's task ended ${t.status}`);
      await sleep(2);
    }
    waits.push(wallMs() - t0);
  }
  console.log(`tenant A backlog ${backlog} × sleep ${args.ms} ms, 10 slots`);
  console.log(`tenant B submit → COMPLETED, one at a time (ms): ${waits.map((w) => w.toFixed(1)).join(', ')}`);
  console.log(`  A's tasks queued at each of B's submits (counted up to 1,000): ${queuedAtSubmit.join(', ')}`);
  console.log(`  ${percentilesLine(waits)}`);
} finally {
  await server.proc.stop();
  await store.dispose();
  await disposeTemplates();
}
