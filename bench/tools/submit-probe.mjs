// The submit scenario's CPU per request, for work on the submit path between full benchmark runs
// (not part of `npm run bench`):
//
//   node bench/tools/submit-probe.mjs [--runs 3] [--seconds 10] [--connections 64]
//
// One `--role api` server on PostgreSQL, autocannon on the load generator's core as the scenario
// runs it; per run: requests/s, and the CPU per request of the server (utime + stime from /proc:
// what it computes and what its socket writes cost in the kernel) and of every PostgreSQL
// process. CPU per request is steadier than requests/s on a shared 2-core machine, so compare
// builds by it. Profile the server with BENCH_TASKGATE_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR'.

import { parseArgs } from 'node:util';
import { AUTH, NOOP_BODY, ensureBuilt, freshStore, PORT_BASE, startTaskgate } from '../systems/taskgate.mjs';
import { runLoad } from '../lib/load.mjs';
import { postgresCpuMs, procStats } from '../lib/proc.mjs';
import { ensureServices } from '../lib/services.mjs';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '64' } },
});

/** The process's CPU time so far, ms (utime + stime, 10 ms ticks). */
function cpuMs(pid) {
  const stat = procStats(pid);
  if (!stat) throw new Error(`process ${pid} is gone`);
  return stat.cpuMs;
}

await ensureServices();
await ensureBuilt();
const out = [];
for (let run = 1; run <= Number(args.runs); run++) {
  const store = await freshStore('pg');
  const tg = await startTaskgate(`submit-probe-${run}`, store, { port: PORT_BASE + 90 + run, role: 'api' });
  try {
    const opts = { url: `${tg.url}/api/v1/tasks`, method: 'POST', headers: AUTH, body: NOOP_BODY, connections: Number(args.connections), durationSec: 2, warmupSec: 0 };
    await runLoad('submit-probe-warmup', opts, undefined);
    const s0 = cpuMs(tg.proc.pid), p0 = postgresCpuMs();
    const r = await runLoad('submit-probe', { ...opts, durationSec: Number(args.seconds) }, undefined);
    const s1 = cpuMs(tg.proc.pid), p1 = postgresCpuMs();
    const n = r.ok;
    out.push({ run, rps: Math.round(r.rps), p99_ms: r.p99_ms, server_cpu_us_per_req: Math.round(((s1 - s0) * 1000) / n), postgres_cpu_us_per_req: Math.round(((p1 - p0) * 1000) / n) });
    console.log(JSON.stringify(out.at(-1)));
  } finally {
    await tg.proc.stop();
    await store.dispose();
  }
}
