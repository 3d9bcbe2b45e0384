// Seed 004's task endpoint under its own bar: "100+ concurrent requests, response time < 500 ms
// for 95 % of requests". POST /api/v1/task (the compatibility route: seed 004's body and answer,
// mapped onto a durable submit) at 128 connections, Taskgate `--role api` on each database.
// autocannon reports p97.5, not p95: p97.5 under 500 ms is the stricter reading of the bar.

import { runLoad } from '../lib/load.mjs';
import { AUTH, freshStore, startTaskgate } from '../systems/taskgate.mjs';

export const COMPAT_CONNECTIONS = 128;
const BODY = JSON.stringify({ type: 'noop', args: {}, priority: 'medium', metadata: { user_id: 'bench', source: 'api', tags: ['seed-004'] } });

export default {
  name: 'compat',
  title: `seed 004's endpoint, POST /api/v1/task, ${COMPAT_CONNECTIONS} connections`,
  cases(ctx) {
    return ['pg', 'pglite'].map((db) => ({
      system: 'taskgate',
      db,
      async run() {
        const store = await freshStore(db);
        const tg = await startTaskgate(`taskgate-${db}-compat`, store, { port: ctx.nextPort(), role: 'api' });
        try {
          const r = await runLoad(`taskgate-${db}-compat`, {
            url: `${tg.url}/api/v1/task`, method: 'POST', headers: AUTH, body: BODY,
            connections: COMPAT_CONNECTIONS, durationSec: ctx.quick ? 3 : 10, warmupSec: ctx.quick ? 1 : 2,
          }, tg.proc.pid);
          if (r.ok === 0) throw new Error(`no request completed in ${r.durationSec} s`);
          const failed = (r.non2xx ?? 0) + (r.errors ?? 0);
          return [
            { metric: 'rps', value: r.rps, unit: 'req/s' },
            { metric: 'p50_ms', value: r.p50_ms, unit: 'ms' },
            { metric: 'p97_5_ms', value: r.p97_5_ms, unit: 'ms' },
            { metric: 'p99_ms', value: r.p99_ms, unit: 'ms' },
            { metric: 'failed_requests', value: failed, unit: 'count' },
            ...(failed > 0.01 * (r.ok + failed) ? [{ error: `${failed} of ${r.ok + failed} requests failed (non-2xx ${r.non2xx}, errors ${r.errors})` }] : []),
          ];
        } finally {
          await tg.proc.stop();
          await store.dispose();
        }
      },
    }));
  },
};
