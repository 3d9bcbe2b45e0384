// Issue 6's targets (and seed 004's latency bar), checked against one run's medians (the rows run.mjs writes to latest.json):
// every full run prints whether each one is met, so the verdict is the run's, not a reading of
// the tables by hand. A verdict never fails the run (timings are not errors).

const ONE_MILLION = 1_000_000;
/** The systems e2e compares with (the reference routes do not run tasks). */
const E2E_PEERS = ['bullmq', 'graphile-worker', 'pg-boss'];

const num = (v) => (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : Number(v.toFixed(2)).toString());
const ratio = (v) => `${v.toFixed(2)}×`;

/**
 * One check per target: `met` is true or false, or null when the run lacks a figure it needs
 * (scenario not run, case errored, or `scale` below 1,000,000 rows).
 */
export function checkTargets(all) {
  const value = (scenario, system, db, metric) => {
    const r = all.find((x) => x.scenario === scenario && x.system === system && x.db === db && x.metric === metric);
    return r && Number.isFinite(r.value) ? r.value : undefined;
  };
  const checks = [];
  const check = (target, needs, measure) => {
    if (needs.some((v) => v === undefined)) checks.push({ target, measured: 'not measured in this run', met: null });
    else checks.push({ target, ...measure() });
  };

  const rps = value('submit', 'taskgate', 'pg', 'rps');
  const insertRps = value('submit', 'fastify-insert', 'pg', 'rps');
  check('durable submit ≥ 1.5× fastify-insert (req/s)', [rps, insertRps], () => ({
    measured: `${ratio(rps / insertRps)} (${num(rps)} vs ${num(insertRps)} req/s)`,
    met: rps / insertRps >= 1.5,
  }));
  const submitP99 = value('submit', 'taskgate', 'pg', 'p99_ms');
  check('durable submit p99 ≤ 25 ms at 64 connections', [submitP99], () => ({ measured: `${num(submitP99)} ms`, met: submitP99 <= 25 }));

  const tps = value('e2e', 'taskgate', 'pg', 'tasks_per_s');
  const peers = all.filter((x) => x.scenario === 'e2e' && E2E_PEERS.includes(x.system) && x.metric === 'tasks_per_s' && Number.isFinite(x.value));
  const best = peers.sort((a, b) => b.value - a.value)[0];
  check('end-to-end no-op tasks/s ≥ 1.2× the best peer', [tps, best?.value], () => ({
    measured: `${ratio(tps / best.value)} (${num(tps)} vs ${best.system} on ${best.db} ${num(best.value)} tasks/s)`,
    met: tps / best.value >= 1.2,
  }));

  const p50 = value('dispatch', 'taskgate', 'pg', 'p50_ms');
  const p99 = value('dispatch', 'taskgate', 'pg', 'p99_ms');
  check('dispatch p50 ≤ 2 ms', [p50], () => ({ measured: `${num(p50)} ms`, met: p50 <= 2 }));
  check('dispatch p99 ≤ 5 ms', [p99], () => ({ measured: `${num(p99)} ms`, met: p99 <= 5 }));
  for (const db of ['pg', 'redis']) {
    const b50 = value('dispatch', 'bullmq', db, 'p50_ms');
    const b99 = value('dispatch', 'bullmq', db, 'p99_ms');
    check(`dispatch at or below BullMQ on ${db === 'pg' ? 'PostgreSQL' : 'Redis'} (p50 and p99)`, [p50, p99, b50, b99], () => ({
      measured: `${num(p50)} / ${num(p99)} vs ${num(b50)} / ${num(b99)} ms`,
      met: p50 <= b50 && p99 <= b99,
    }));
  }

  const rows = value('scale', 'taskgate', 'pg', 'rows');
  for (const [metric, what] of [['get_p99_ms', 'GET /tasks/{id}'], ['list_p99_ms', 'filtered list']]) {
    const v = value('scale', 'taskgate', 'pg', metric);
    check(`${what} p99 ≤ 5 ms at 1,000,000 rows`, [v, rows !== undefined && rows >= ONE_MILLION ? rows : undefined], () => ({
      measured: `${num(v)} ms`,
      met: v <= 5,
    }));
  }
  // seed 004's bar ("100+ concurrent requests, < 500 ms for 95 %"), on its own route
  const compatP975 = value('compat', 'taskgate', 'pg', 'p97_5_ms');
  const compatFailed = value('compat', 'taskgate', 'pg', 'failed_requests');
  check('seed 004: POST /api/v1/task at 128 connections, p97.5 < 500 ms, none failed', [compatP975, compatFailed], () => ({
    measured: `${num(compatP975)} ms, ${num(compatFailed)} failed`,
    met: compatP975 < 500 && compatFailed === 0,
  }));
  return checks;
}

const VERDICT = { true: 'met', false: '**missed**', null: '—' };

/**
 * The checks as a Markdown table (Taskgate on PostgreSQL; medians of the run). A `--quick` run
 * shows its figures without verdicts: its sizes (200 e2e tasks, 1 run) say nothing about them.
 */
export function formatTargets(checks, meta) {
  const quick = meta.mode === 'quick';
  const out = [
    `### Against issue 6's targets and seed 004's bar (Taskgate on PostgreSQL, medians of this run)`,
    ...(quick ? ['', '`--quick` sizes and one run: no verdicts; the targets are judged on a full run.'] : []),
    '',
    '| target | measured | |',
    '|---|---|---|',
    ...checks.map((c) => `| ${c.target} | ${c.measured} | ${quick ? '—' : VERDICT[String(c.met)]} |`),
    '',
  ];
  return out.join('\n') + '\n';
}
