#!/usr/bin/env node
// Event delivery latency across processes: a `taskgate serve --role worker` process runs `sleep`
// tasks and writes their events; SSE clients connected to a separate `--role api` process on the
// same PostgreSQL schema record (receive time − the event's timestamp). Both processes and the
// clients share one machine and clock; the timestamp is the writing transaction's now().
//
//   npm run build
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node scripts/measure-stream-latency.mjs \
//     [--tasks 20] [--steps 50] [--ms 20] [--clients 1] [--cli dist/cli/main.js]
//
// Prints one summary line and a JSON object. Creates and drops its own schema.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const TASKS = Number(args.tasks ?? 20);
const STEPS = Number(args.steps ?? 50);
const STEP_MS = Number(args.ms ?? 20);
const CLIENTS = Number(args.clients ?? 1);
const CLI = args.cli ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const DATABASE_URL = process.env.DATABASE_URL;
if (!DATABASE_URL) {
  console.error('DATABASE_URL is required (cross-process streaming needs server PostgreSQL)');
  process.exit(2);
}
const KEY = `sk_latency_${randomBytes(12).toString('hex')}`;
const SCHEMA = `tg_latency_${randomBytes(4).toString('hex')}`;

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });

async function serve(role, dataDir) {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--role', role], {
    env: {
      ...process.env, DATABASE_URL, TASKGATE_DB_SCHEMA: SCHEMA, TASKGATE_ADMIN_KEY: KEY, PORT: String(port), HOST: '127.0.0.1',
      TASKGATE_DATA_DIR: join(dataDir, role), LOG_LEVEL: 'warn', TASKGATE_RATE_LIMIT_PER_MIN: '0', TASKGATE_MAX_STREAMS_PER_PRINCIPAL: '100000',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${role} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/readiness`)).ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${role} did not become ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child, exited };
}

/** One SSE client: resolves with (receive − timestamp) for every event once the stream is done. */
function follow(url, workflowId) {
  return new Promise((resolve, reject) => {
    const samples = [];
    const req = http.get(`${url}/api/v1/stream/sse?workflow_id=${workflowId}`, { headers: { 'x-api-key': KEY } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE ${res.statusCode}`));
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk) => {
        const now = Date.now();
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '))?.slice(6);
          if (!data || data === '[DONE]') continue;
          const e = JSON.parse(data);
          samples.push({ type: e.type, ms: now - Date.parse(e.timestamp) });
        }
      });
      res.on('end', () => resolve(samples));
    });
    req.on('error', reject);
  });
}

/** Resident set size of a process in MiB (Linux), or undefined. */
function rssMiB(pid) {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Number.isFinite(kb) ? Math.round(kb / 1024) : undefined;
  } catch {
    return undefined;
  }
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function main() {
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${SCHEMA}"`);
  const dataDir = mkdtempSync(join(tmpdir(), 'taskgate-latency-'));
  const procs = [];
  try {
    const api = await serve('api', dataDir);
    procs.push(api);
    procs.push(await serve('worker', dataDir));
    const rssIdle = rssMiB(api.child.pid);
    let rssPeak = rssIdle;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak ?? 0, rssMiB(api.child.pid) ?? 0)), 200);
    const all = [];
    for (let t = 0; t < TASKS; t++) {
      // the delay lets every client subscribe before the first event is written (replayed
      // events would measure the connection setup, not the delivery)
      const r = await fetch(`${api.url}/api/v1/tasks`, {
        method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ task_definition_id: 'sleep', input: { ms: STEP_MS, steps: STEPS }, delay_ms: 500 + 10 * CLIENTS }),
      });
      if (!r.ok) throw new Error(`submit: ${r.status} ${await r.text()}`);
      const { workflow_id } = await r.json();
      const results = await Promise.all(Array.from({ length: CLIENTS }, () => follow(api.url, workflow_id)));
      for (const s of results) all.push(...s);
    }
    clearInterval(sampler);
    const ms = all.map((s) => s.ms).sort((a, b) => a - b);
    const summary = {
      tasks: TASKS, steps: STEPS, step_ms: STEP_MS, clients_per_task: CLIENTS, samples: ms.length,
      api_rss_idle_mib: rssIdle, api_rss_peak_mib: rssPeak,
      p50_ms: pct(ms, 50), p90_ms: pct(ms, 90), p99_ms: pct(ms, 99), max_ms: ms.at(-1),
      mean_ms: Math.round((ms.reduce((a, b) => a + b, 0) / ms.length) * 10) / 10,
    };
    console.log(`cross-process delivery (worker write → SSE client on the api process): p50 ${summary.p50_ms} ms, p90 ${summary.p90_ms} ms, ` +
      `p99 ${summary.p99_ms} ms, max ${summary.max_ms} ms over ${summary.samples} events; api process RSS ${rssIdle} MiB idle, ${rssPeak} MiB peak`);
    console.log(JSON.stringify(summary));
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    await admin.query(`DROP SCHEMA "${SCHEMA}" CASCADE`).catch(() => {});
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
