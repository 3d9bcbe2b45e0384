// Renders the result rows as Markdown tables, one per scenario: systems down, metrics
// across (medians), then Taskgate(PostgreSQL)/peer ratios for the scenario's key metrics.

const KEY_METRICS = {
  submit: ['rps', 'p99_ms'],
  e2e: ['tasks_per_s'],
  dispatch: ['p50_ms', 'p99_ms'],
  stream: ['p50_ms_1', 'p99_ms_1', 'p50_ms_1000', 'p99_ms_1000'],
  scale: ['get_p99_ms', 'list_p99_ms'],
  compat: ['rps', 'p97_5_ms'],
  memory: ['rss_idle_mb', 'rss_load_mb'],
};
const ORDER = ['taskgate', 'fastify-insert', 'fastify-bare', 'bullmq', 'graphile-worker', 'pg-boss'];

function fmt(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function formatTables(all, meta) {
  const rows = all.filter((r) => !r.system.includes('/'));
  const ratios = all.filter((r) => r.system.includes('/'));
  const out = [];
  out.push(
    `\n## Results (${meta.mode}, ${meta.runs} run(s) per case, medians) — ${meta.finished_at}`,
    `Node ${meta.node}, ${meta.cpus} CPUs (${meta.cpu_model}), ${meta.mem_gib} GiB; PostgreSQL ${meta.postgres.version} ` +
      `(synchronous_commit=${meta.postgres.synchronous_commit}, fsync=${meta.postgres.fsync}); load generator on CPU ${meta.load_generator_cpu}; ` +
      `load average ${meta.loadavg_start[0]} at start, ${meta.loadavg_end[0]} at end; ${meta.duration_s} s`,
    '',
  );
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  for (const sc of scenarios) {
    const mine = rows.filter((r) => r.scenario === sc);
    const metrics = [...new Set(mine.filter((r) => r.metric !== 'error').map((r) => r.metric))];
    const units = Object.fromEntries(mine.map((r) => [r.metric, r.unit]));
    const systems = [...new Set(mine.map((r) => `${r.system}|${r.db}`))].sort((a, b) => {
      const ia = ORDER.indexOf(a.split('|')[0]);
      const ib = ORDER.indexOf(b.split('|')[0]);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    const keys = (KEY_METRICS[sc] ?? []).filter((m) => metrics.includes(m));
    out.push(`### ${sc}`, '');
    const head = ['system', 'db', ...metrics.map((m) => `${m}${units[m] && !m.includes('_ms') && !m.includes('_mb') ? ` (${units[m]})` : ''}`)];
    head.push(...keys.map((k) => `taskgate(pg)/x ${k}`), 'runs', 'note');
    out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    for (const key of systems) {
      const [system, db] = key.split('|');
      const cells = [system, db];
      let runs = 0;
      for (const m of metrics) {
        const r = mine.find((x) => x.system === system && x.db === db && x.metric === m);
        cells.push(r ? fmt(r.value) : '—');
        if (r) runs = Math.max(runs, r.runs);
      }
      for (const k of keys) {
        const ratio = ratios.find((x) => x.scenario === sc && x.system === `taskgate/${system}` && x.db === db && x.metric === k);
        cells.push(system === 'taskgate' ? '' : ratio ? `${ratio.value.toFixed(2)}×` : '—');
      }
      const notes = mine.filter((x) => x.system === system && x.db === db && x.note).map((x) => (x.metric === 'error' ? `ERROR: ${x.note}` : x.note));
      cells.push(String(runs), [...new Set(notes)].join('; ').replace(/\|/g, '/').slice(0, 300));
      out.push(`| ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  out.push(
    'Ratios are Taskgate on PostgreSQL ÷ the row (higher is better for rps and tasks_per_s, lower is better for',
    'latencies and memory). PGlite ratios are in latest.json (system "taskgate/<peer>", db "pglite/<peer db>").',
    '',
  );
  if (meta.build?.note) out.push(`Build: ${meta.build.note}`, '');
  if (meta.errors.length) out.push(`${meta.errors.length} case run(s) errored; see the notes above and bench/results/logs/.`, '');
  return out.join('\n') + '\n';
}
