#!/usr/bin/env node
// What a short transaction costs through Taskgate's storage seam on PostgreSQL (not part of
// `npm run bench`): wall time and this process's CPU per transaction of two statements, with the
// COMMIT sent after they answered and with commitEarly() (pipelined behind them).
//
//   node bench/tools/tx-probe.mjs [--count 5000] [--url postgres://postgres@127.0.0.1:5432/postgres]
//
// Needs `npm run build`. Each transaction is BEGIN + `SELECT 1` + `SELECT 2` + COMMIT; BEGIN always
// leaves with the first statement.

import { parseArgs } from 'node:util';
import { openPg } from '../../dist/storage/pg.js';

const { values: args } = parseArgs({
  options: { count: { type: 'string', default: '5000' }, url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' } },
});
const n = Number(args.count);
const db = await openPg({ connectionString: args.url, maxConnections: 2 });
try {
  for (const early of [false, true, false, true]) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await db.transaction(async (tx) => {
        const a = tx.query('SELECT 1 AS a', [], { name: 'tx_probe_a' });
        const b = tx.query('SELECT 2 AS b', [], { name: 'tx_probe_b' });
        if (early) tx.commitEarly();
        await Promise.all([a, b]);
      });
    }
    const cpu = process.cpuUsage(cpu0);
    console.log(`${early ? 'commitEarly ' : 'COMMIT after'}  wall ${((performance.now() - t0) * 1000 / n).toFixed(0)} µs  client CPU ${((cpu.user + cpu.system) / n).toFixed(0)} µs per transaction`);
  }
} finally {
  await db.close();
}
