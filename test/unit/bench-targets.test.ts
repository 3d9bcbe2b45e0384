import { describe, expect, it } from 'vitest';
import { checkTargets, formatTargets, type ResultRow } from '../../bench/lib/targets.mjs';

const row = (scenario: string, system: string, db: string, metric: string, value: number | null): ResultRow => ({
  scenario, system, db, metric, value, unit: '', runs: 3,
});

/** A run that meets every target but one, with the figures on the targets' edges. */
const run = (): ResultRow[] => [
  row('submit', 'taskgate', 'pg', 'rps', 15_000),
  row('submit', 'taskgate', 'pg', 'p99_ms', 25),
  row('submit', 'fastify-insert', 'pg', 'rps', 10_000),
  row('e2e', 'taskgate', 'pg', 'tasks_per_s', 30_000),
  row('e2e', 'taskgate', 'pglite', 'tasks_per_s', 90_000), // not the system judged
  row('e2e', 'bullmq', 'redis', 'tasks_per_s', 24_000),
  row('e2e', 'graphile-worker', 'pg', 'tasks_per_s', 40_000),
  row('e2e', 'taskgate/graphile-worker', 'pg', 'tasks_per_s', 0.75), // ratio rows are not peers
  row('dispatch', 'taskgate', 'pg', 'p50_ms', 2),
  row('dispatch', 'taskgate', 'pg', 'p99_ms', 4.5),
  row('dispatch', 'bullmq', 'pg', 'p50_ms', 2),
  row('dispatch', 'bullmq', 'pg', 'p99_ms', 4.5),
  row('dispatch', 'bullmq', 'redis', 'p50_ms', 0.4),
  row('dispatch', 'bullmq', 'redis', 'p99_ms', 2),
  row('scale', 'taskgate', 'pg', 'rows', 1_000_000),
  row('scale', 'taskgate', 'pg', 'get_p99_ms', 4.99),
  row('scale', 'taskgate', 'pg', 'list_p99_ms', 5.01),
  row('compat', 'taskgate', 'pg', 'p97_5_ms', 499),
  row('compat', 'taskgate', 'pg', 'failed_requests', 0),
];

const verdicts = (rows: ResultRow[]) => Object.fromEntries(checkTargets(rows).map((c) => [c.target, c.met]));

describe('bench targets (issue 6)', () => {
  it('judges each target on Taskgate on PostgreSQL, limits inclusive, against the best task-running peer', () => {
    const checks = checkTargets(run());
    expect(Object.fromEntries(checks.map((c) => [c.target, c.met]))).toEqual({
      'durable submit ≥ 1.5× fastify-insert (req/s)': true,
      'durable submit p99 ≤ 25 ms at 64 connections': true,
      'end-to-end no-op tasks/s ≥ 1.2× the best peer': false,
      'dispatch p50 ≤ 2 ms': true,
      'dispatch p99 ≤ 5 ms': true,
      'dispatch at or below BullMQ on PostgreSQL (p50 and p99)': true,
      'dispatch at or below BullMQ on Redis (p50 and p99)': false,
      'GET /tasks/{id} p99 ≤ 5 ms at 1,000,000 rows': true,
      'filtered list p99 ≤ 5 ms at 1,000,000 rows': false,
      'seed 004: POST /api/v1/task at 128 connections, p97.5 < 500 ms, none failed': true,
    });
    expect(checks.find((c) => c.target.startsWith('end-to-end'))!.measured).toBe('0.75× (30,000 vs graphile-worker on pg 40,000 tasks/s)');
  });

  it('has no verdict where the run lacks a figure: scenario not run, case errored, or too few rows', () => {
    const rows = run().filter((r) => r.scenario !== 'e2e' && !(r.system === 'bullmq' && r.db === 'redis'));
    rows.find((r) => r.scenario === 'submit' && r.metric === 'p99_ms')!.value = null; // an errored case
    rows.find((r) => r.scenario === 'scale' && r.metric === 'rows')!.value = 2_000; // --quick
    const v = verdicts(rows);
    expect(v['end-to-end no-op tasks/s ≥ 1.2× the best peer']).toBeNull();
    expect(v['dispatch at or below BullMQ on Redis (p50 and p99)']).toBeNull();
    expect(v['durable submit p99 ≤ 25 ms at 64 connections']).toBeNull();
    expect(v['GET /tasks/{id} p99 ≤ 5 ms at 1,000,000 rows']).toBeNull();
    expect(v['durable submit ≥ 1.5× fastify-insert (req/s)']).toBe(true);
    const failing = run();
    failing.find((r) => r.scenario === 'compat' && r.metric === 'failed_requests')!.value = 1;
    expect(verdicts(failing)['seed 004: POST /api/v1/task at 128 connections, p97.5 < 500 ms, none failed']).toBe(false);
    expect(verdicts([])).toEqual(Object.fromEntries(Object.keys(v).map((k) => [k, null])));
  });

  it('prints one table row per target, marking misses; a quick run gets figures without verdicts', () => {
    const text = formatTargets(checkTargets(run()), { mode: 'full' });
    expect(text).toContain('| end-to-end no-op tasks/s ≥ 1.2× the best peer | 0.75× (30,000 vs graphile-worker on pg 40,000 tasks/s) | **missed** |');
    expect(text).toContain('| dispatch p99 ≤ 5 ms | 4.5 ms | met |');
    expect(text.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| target')).length).toBe(10);
    expect(text).not.toContain('no verdicts');
    const quick = formatTargets(checkTargets(run()), { mode: 'quick' });
    expect(quick).toContain('no verdicts');
    expect(quick).toContain('| dispatch p99 ≤ 5 ms | 4.5 ms | — |');
    expect(quick).not.toMatch(/\| (met|\*\*missed\*\*) \|/);
  });
});
