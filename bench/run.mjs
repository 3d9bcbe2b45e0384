#!/usr/bin/env node
// `npm run bench [-- --quick] [--only submit,e2e] [--runs N] [--systems taskgate,bullmq]`
// Runs every scenario for Taskgate and the peers on this machine, in one run, each case
// repeated (3 by default, 1 with --quick), prints a Markdown table of medians with the
// Taskgate/peer ratios and whether issue 6's targets are met (bench/lib/targets.mjs), and writes
// bench/results/latest.json (an array of rows {scenario, system, db, metric, value, unit, runs})
// and latest-meta.json. Exits 1 only if a scenario errored (never on a timing or a target).

import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { dropStaleDatabases, ensureServices, serverSettings } from './lib/services.mjs';
import { stopAll } from './lib/proc.mjs';
import { LOAD_CPU } from './lib/load.mjs';
import { log, median, parseArgs, round, withTimeout } from './lib/util.mjs';
import { formatTables } from './lib/report.mjs';
import { checkTargets, formatTargets } from './lib/targets.mjs';
import { PORT_BASE, buildInfo, disposeTemplates, ensureBuilt, template } from './systems/taskgate.mjs';
import { dropStaleRedisKeys } from './systems/peers.mjs';
import submit from './scenarios/submit.mjs';
import e2e from './scenarios/e2e.mjs';
import dispatch from './scenarios/dispatch.mjs';
import stream from './scenarios/stream.mjs';
import scale from './scenarios/scale.mjs';
import compat from './scenarios/compat.mjs';

const SCENARIOS = [submit, e2e, dispatch, stream, scale, compat];
// `memory` rows are taken where the load already is: idle and under-load RSS in `submit`,
// RSS holding 1,000 SSE clients in `stream`; `--only memory` runs those two.
const ALIASES = { memory: ['submit', 'stream'] };
const CASE_TIMEOUT_MS = 20 * 60_000; // last-resort bound per case run; scenarios bound themselves
const RESULTS = join(import.meta.dirname, 'results');

const args = parseArgs(process.argv.slice(2));
if (args.help) {
  process.stdout.write(`usage: npm run bench -- [--quick] [--only ${SCENARIOS.map((s) => s.name).join(',')},memory] [--runs N] [--systems a,b]\n`);
  process.exit(0);
}
args.only = args.only.flatMap((o) => ALIASES[o] ?? [o]);
const unknown = args.only.filter((o) => !SCENARIOS.some((s) => s.name === o));
if (unknown.length) {
  process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}\n`);
  process.exit(2);
}
const runs = args.runs ?? (args.quick ? 1 : 3);
// a port block of 100 per process (from the pid) so concurrent runs do not collide
let port = PORT_BASE + 2;
const ctx = { quick: args.quick, runs, nextPort: () => port++ };

const started = Date.now();
const loadAtStart = os.loadavg().map((x) => round(x, 2));
await ensureServices();
await dropStaleDatabases();
await dropStaleRedisKeys().catch((err) => log(`could not clean stale Redis keys: ${err.message}`));
const pgSettings = await serverSettings();
log(`mode ${args.quick ? 'quick' : 'full'}, ${runs} run(s) per case; load generator pinned to CPU ${LOAD_CPU}`);
const withTaskgate = !args.systems || args.systems.includes('taskgate');
if (withTaskgate) await ensureBuilt().catch((err) => log(`Taskgate cases will error: ${err.message.slice(0, 500)}`));
// --quick is a smoke run: build the PGlite template (~15 s of initdb + migrate) in the
// background while the PostgreSQL cases run; a full run builds it in the foreground
if (args.quick && withTaskgate) template('pglite').catch(() => {});

const samples = new Map(); // key -> {scenario, system, db, metric, unit, values: [], notes: Set}
const errors = [];
function add(scenario, system, db, metric, value, unit, note) {
  const key = [scenario, system, db, metric].join('|');
  if (!samples.has(key)) samples.set(key, { scenario, system, db, metric, unit, values: [], notes: new Set() });
  const s = samples.get(key);
  if (value !== null && value !== undefined && Number.isFinite(value)) s.values.push(value);
  if (note) s.notes.add(note);
}

for (const scenario of SCENARIOS) {
  if (args.only.length && !args.only.includes(scenario.name)) continue;
  let cases = scenario.cases(ctx);
  if (args.systems) cases = cases.filter((c) => args.systems.includes(c.system));
  log(`scenario ${scenario.name}: ${scenario.title} (${cases.length} cases × ${runs})`);
  for (let r = 1; r <= runs; r++) {
    for (const c of cases) {
      const t0 = Date.now();
      try {
        const out = await withTimeout(c.run(r), CASE_TIMEOUT_MS, `${scenario.name}/${c.system}/${c.db}`);
        for (const row of out) {
          if (row.error) {
            // the case measured, but what it measured counts as a failure (e.g. timeouts)
            errors.push({ scenario: scenario.name, system: c.system, db: c.db, run: r, error: row.error });
            add(scenario.name, c.system, c.db, 'error', null, '', row.error);
          } else add(row.scenario ?? scenario.name, c.system, c.db, row.metric, row.value, row.unit, row.note);
        }
        const brief = out
          .filter((x) => x.value !== null && !x.error)
          .map((x) => `${x.metric}=${round(x.value)}`)
          .join(' ');
        const notes = out.filter((x) => x.error || x.note).map((x) => (x.error ? `ERROR ${x.error}` : x.note));
        log(`  ${scenario.name} ${c.system}/${c.db} run ${r}: ${[brief, ...notes].filter(Boolean).join('; ')} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (err) {
        const msg = String(err?.message ?? err).split('\n').slice(0, 6).join(' | ').slice(0, 600);
        errors.push({ scenario: scenario.name, system: c.system, db: c.db, run: r, error: msg });
        stopAll(); // nothing may outlive its case (a timed-out case's processes would skew the next)
        add(scenario.name, c.system, c.db, 'error', null, '', msg);
        log(`  ${scenario.name} ${c.system}/${c.db} run ${r}: ERROR ${msg}`);
      }
    }
  }
}

const rows = [];
for (const s of samples.values()) {
  const row = {
    scenario: s.scenario,
    system: s.system,
    db: s.db,
    metric: s.metric,
    value: s.metric === 'error' ? null : round(median(s.values), 3),
    unit: s.unit,
    runs: s.metric === 'error' ? errors.filter((e) => e.scenario === s.scenario && e.system === s.system && e.db === s.db).length : s.values.length,
  };
  if (s.notes.size) row.note = [...s.notes].join('; ');
  if (row.metric !== 'error' && s.values.length === 0 && !row.note) continue;
  rows.push(row);
}
// ratios Taskgate/peer for the same scenario, metric and store (Taskgate on PostgreSQL vs
// every other system; Taskgate on PGlite vs the same peers, marked db "pglite/<peer db>")
const ratioRows = [];
for (const tg of rows.filter((r) => r.system === 'taskgate' && Number.isFinite(r.value))) {
  for (const other of rows.filter((r) => r.scenario === tg.scenario && r.metric === tg.metric && r.system !== 'taskgate')) {
    if (!Number.isFinite(other.value) || other.value === 0) continue;
    ratioRows.push({
      scenario: tg.scenario,
      system: `taskgate/${other.system}`,
      db: tg.db === 'pg' ? other.db : `${tg.db}/${other.db}`,
      metric: tg.metric,
      value: round(tg.value / other.value, 3),
      unit: 'x',
      runs: Math.min(tg.runs, other.runs),
    });
  }
}

mkdirSync(RESULTS, { recursive: true });
const all = [...rows, ...ratioRows];
const meta = {
  finished_at: new Date().toISOString(),
  mode: args.quick ? 'quick' : 'full',
  args: process.argv.slice(2),
  runs,
  duration_s: Math.round((Date.now() - started) / 1000),
  node: process.version,
  cpus: os.cpus().length,
  cpu_model: os.cpus()[0]?.model,
  mem_gib: round(os.totalmem() / 2 ** 30, 1),
  // other work on the machine skews every figure: the 1-minute load average before and after
  loadavg_start: loadAtStart,
  loadavg_end: os.loadavg().map((x) => round(x, 2)),
  load_generator_cpu: LOAD_CPU,
  postgres: pgSettings,
  versions: peerVersions(),
  errors,
  build: buildInfo,
  // issue 6's targets against this run's medians (bench/lib/targets.mjs); never an exit code
  targets: checkTargets(all),
};
writeFileSync(join(RESULTS, 'latest.json'), JSON.stringify(all, null, 2) + '\n');
writeFileSync(join(RESULTS, 'latest-meta.json'), JSON.stringify(meta, null, 2) + '\n');
process.stdout.write(formatTables(all, meta) + '\n' + formatTargets(meta.targets, meta));
log(`wrote bench/results/latest.json (${all.length} rows) in ${meta.duration_s} s`);
await disposeTemplates();
stopAll();
process.exit(errors.length ? 1 : 0);

function peerVersions() {
  const v = {};
  for (const p of ['bullmq', 'pg-boss', 'graphile-worker', 'autocannon', 'fastify', 'pg', '@electric-sql/pglite']) {
    try {
      v[p] = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'node_modules', p, 'package.json'), 'utf8')).version;
    } catch {
      v[p] = 'missing';
    }
  }
  return v;
}
