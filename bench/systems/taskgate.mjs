// Taskgate under test: built dist/, one `taskgate serve` child per run on a fresh database
// (PostgreSQL: CREATE DATABASE … TEMPLATE a migrated one; PGlite: a copy of a migrated data
// directory, which skips the ~5 s initdb), plus small HTTP helpers for the scenarios.

import http from 'node:http';
import { existsSync, mkdtempSync, rmSync, cpSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, runCommand } from '../lib/proc.mjs';
import { benchName, dropStaleDatabases, freshDatabase, dropDatabase, pgUrl } from '../lib/services.mjs';
import { log, waitUntil, sleep } from '../lib/util.mjs';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');
export const ADMIN_KEY = 'sk_bench_admin_key_0123456789';
export const AUTH = { 'X-API-Key': ADMIN_KEY, 'content-type': 'application/json' };
export const NOOP_BODY = JSON.stringify({ task_definition_id: 'noop', input: {} });
const PG_TEMPLATE = benchName('taskgate_tpl');
const PG_DB = benchName('taskgate');
/**
 * This process's block of 100 loopback ports (two concurrent runs rarely share one), all below
 * Linux's ephemeral range (32768–60999): a block inside it collided with the local ports of
 * outgoing connections (EADDRINUSE in a CI run whose pid put it at 38,400).
 */
export const PORT_BASE = 20_000 + (process.pid % 120) * 100;
const TEMPLATE_PORT = { pg: PORT_BASE, pglite: PORT_BASE + 1 };

let buildState; // undefined | Promise<void>
export const buildInfo = { built: false, note: '' };

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Runs `npm run build` once if dist/cli/main.js is missing or older than a file in src/ (a
 * stale dist would measure old code). If a rebuild fails but a dist exists, that dist is
 * measured and the failure is noted in latest-meta.json.
 */
export function ensureBuilt() {
  buildState ??= (async () => {
    const have = existsSync(CLI);
    if (have && statSync(CLI).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
    log(have ? 'dist/ is older than src/: running npm run build' : 'dist/cli/main.js missing: running npm run build');
    const r = await runCommand('npm', ['run', 'build'], { cwd: ROOT, timeoutMs: 300_000 });
    if (r.code === 0 && existsSync(CLI)) {
      buildInfo.built = true;
      return;
    }
    const why = `npm run build failed (${r.code}): ${(r.stdout + r.stderr).slice(-1500)}`;
    if (!existsSync(CLI)) throw new Error(why);
    buildInfo.note = `build failed, measured the existing dist/: ${why.slice(0, 300)}`;
    log(buildInfo.note);
  })();
  return buildState;
}

/**
 * Rate limiting is off (the peers and the ceilings have none, and the defaults — 60 submits
 * and 600 reads a minute per key — would be what is measured); the per-key stream cap is
 * raised so one key can hold the 1,000 SSE clients of the stream scenario.
 */
function baseEnv(extra) {
  return {
    LOG_LEVEL: 'warn',
    TASKGATE_ADMIN_KEY: ADMIN_KEY,
    TASKGATE_RATE_LIMIT_PER_MIN: '0',
    TASKGATE_MAX_STREAMS_PER_PRINCIPAL: '5000',
    DATABASE_URL: '',
    ...extra,
  };
}

async function migrate(env) {
  const r = await runCommand(process.execPath, [CLI, 'migrate'], { cwd: ROOT, env: baseEnv(env), timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`taskgate migrate failed (${r.code}): ${(r.stdout + r.stderr).slice(-2000)}`);
}

const templates = new Map(); // db -> Promise<string> (template db name or dir)

/** Migrated template per backend, built once per bench process (call early to prewarm). */
export function template(db) {
  if (!templates.has(db)) {
    templates.set(
      db,
      (async () => {
        await ensureBuilt();
        let env;
        let result;
        if (db === 'pg') {
          // the probes (bench/tools) come here too: what died with a run before is dropped first
          await dropStaleDatabases();
          await freshDatabase(PG_TEMPLATE);
          env = { DATABASE_URL: pgUrl(PG_TEMPLATE) };
          result = PG_TEMPLATE;
        } else {
          result = mkdtempSync(join(tmpdir(), 'taskgate-bench-tpl-'));
          env = { TASKGATE_DATA_DIR: result };
        }
        await migrate(env);
        // one start bootstraps the default tenant and the admin key into the template
        const tg = await startTaskgate(`taskgate-${db}-template`, { env }, { port: TEMPLATE_PORT[db], role: 'api' });
        await tg.proc.stop();
        return result;
      })(),
    );
  }
  return templates.get(db);
}

/**
 * A fresh, migrated store for one run: { env, db, dataDir?, databaseUrl?, dispose() }.
 * `env` is what a `taskgate` process needs to use it.
 */
export async function freshStore(db) {
  const tpl = await template(db);
  if (db === 'pg') {
    const url = await freshDatabase(PG_DB, tpl);
    return { db, databaseUrl: url, env: { DATABASE_URL: url }, dispose: () => dropDatabase(PG_DB) };
  }
  const dir = mkdtempSync(join(tmpdir(), 'taskgate-bench-'));
  cpSync(tpl, dir, { recursive: true });
  rmSync(join(dir, 'taskgate.lock'), { force: true });
  return { db, dataDir: dir, env: { TASKGATE_DATA_DIR: dir }, dispose: async () => rmSync(dir, { recursive: true, force: true }) };
}

export async function disposeTemplates() {
  for (const [db, p] of templates) {
    const t = await p.catch(() => undefined);
    if (t) await (db === 'pg' ? dropDatabase(t) : rmSync(t, { recursive: true, force: true }));
  }
}

/**
 * Starts `taskgate serve` and waits for /health; returns the process handle plus its url.
 * BENCH_TASKGATE_NODE_ARGS (space-separated) goes to node before the CLI, e.g. `--cpu-prof`.
 */
export async function startTaskgate(name, store, { port, role = 'all', concurrency, extraArgs = [] }) {
  const args = [...(process.env.BENCH_TASKGATE_NODE_ARGS ? process.env.BENCH_TASKGATE_NODE_ARGS.split(' ') : []), CLI, 'serve', '--port', String(port), '--host', '127.0.0.1', '--role', role, ...extraArgs];
  if (concurrency) args.push('--concurrency', String(concurrency));
  const proc = startProcess(name, process.execPath, args, { cwd: ROOT, env: baseEnv(store.env) });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (!proc.alive) throw new Error(`taskgate exited: ${proc.tail.slice(-2000)}`);
      const r = await fetch(`${url}/health`).catch(() => null);
      return r?.ok;
    },
    { timeoutMs: 60_000, intervalMs: 50, what: `${name} /health` },
  ).catch((err) => {
    proc.stop(1_000);
    throw err;
  });
  return { proc, url, port };
}

/**
 * Pre-enqueues `n` no-op tasks in `store` the way e2e needs them: over the API of a server with no
 * workers (role api, on `port`), 64 submits in flight, then stops that server.
 */
export async function enqueueOverApi(name, store, port, n) {
  const api = await startTaskgate(name, store, { port, role: 'api' });
  try {
    await submitMany(api.url, n, 64);
  } finally {
    await api.proc.stop();
  }
}

/** Submits `n` noop tasks with up to `concurrency` in flight; returns their ids in order. */
export async function submitMany(url, n, concurrency = 64, body = NOOP_BODY) {
  const ids = new Array(n);
  let next = 0;
  let failures = 0;
  async function lane() {
    while (next < n) {
      const i = next++;
      for (let attempt = 1; ; attempt++) {
        const r = await fetch(`${url}/api/v1/tasks`, { method: 'POST', headers: AUTH, body });
        if (r.status === 200 || r.status === 201) {
          ids[i] = (await r.json()).task_id;
          break;
        }
        const text = await r.text();
        if (++failures > 20 || attempt >= 5) throw new Error(`submit failed: ${r.status} ${text.slice(0, 300)}`);
        await sleep(50);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
  return ids;
}

export async function getJson(url, path) {
  const r = await fetch(`${url}${path}`, { headers: AUTH });
  if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${(await r.text()).slice(0, 300)}`);
  return r.json();
}

/**
 * A lean HTTP client for latency measurements: node:http over one keep-alive connection (fetch,
 * i.e. undici, adds ~0.3 ms per request and a longer tail on the client side, which is not the
 * server's latency). `post(path, body)` resolves with { status, json }.
 */
export function keepAliveClient(url) {
  const base = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    post(path, body) {
      return new Promise((resolve, reject) => {
        const req = http.request(
          { host: base.hostname, port: base.port, path, method: 'POST', agent, headers: { ...AUTH, 'content-length': Buffer.byteLength(body) } },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c) => (text += c));
            res.on('end', () => {
              try {
                resolve({ status: res.statusCode, json: JSON.parse(text) });
              } catch {
                reject(new Error(`POST ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
              }
            });
            res.on('error', reject);
          },
        );
        req.setTimeout(10_000, () => req.destroy(new Error('request timed out after 10 s')));
        req.on('error', reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}
