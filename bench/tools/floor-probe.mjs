#!/usr/bin/env node
// What this machine alone costs at the latency percentiles issue 6 targets, with no Taskgate in
// the path (not part of `npm run bench`):
//
//   node bench/tools/floor-probe.mjs [--requests 3000] [--commits 600]
//
// 1. HTTP ping-pong: a bare node:http server (its own process, not pinned) answering `{}`; one
//    client on the load generator's core (as the scenarios pin theirs), one request at a time over a
//    keep-alive connection — the floor under `scale` and the HTTP hop of `dispatch`.
// 2. The same server running one primary-key SELECT through a pg.Pool per request.
// 3. One-row INSERTs, each its own durable commit, 5 ms apart (the dispatch scenario's pace) —
//    the floor under a directly dispatched task, whose insert commits before it starts.
// Prints p50/p90/p99/max in ms for each. A scenario's p99 cannot be below these on the machine
// they were read on.

import { fork, execFileSync } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ensureServices, freshDatabase, dropDatabase, benchName } from '../lib/services.mjs';
import { percentilesLine, sleep } from '../lib/util.mjs';
import { LOAD_CPU } from '../lib/load.mjs';

const PORT = 18_181;

if (process.argv[2] === '--serve') {
  const [, , , mode, url] = process.argv;
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  http
    .createServer(async (req, res) => {
      let body = '{}';
      if (mode === 'select') {
        const k = 1 + Math.floor(Math.random() * 10_000);
        const r = await pool.query({ name: 'floor_get', text: 'SELECT * FROM floor_rows WHERE id = $1', values: [k] });
        body = JSON.stringify(r.rows[0]);
      }
      res.setHeader('content-type', 'application/json');
      res.end(body);
    })
    .listen(PORT, '127.0.0.1', () => process.send('up'));
} else {
  const { values: args } = parseArgs({
    options: { requests: { type: 'string', default: '3000' }, commits: { type: 'string', default: '600' } },
  });
  const summary = (name, lat) => console.log(`${name.padEnd(44)} ${percentilesLine(lat)}  (n=${lat.length})`);
  // pin this process (the client) to the scenarios' load-generator core
  try {
    execFileSync('taskset', ['-p', '-c', String(LOAD_CPU), String(process.pid)], { stdio: 'ignore' });
  } catch {
    console.log('(taskset unavailable: client not pinned)');
  }
  await ensureServices();
  const db = benchName('floor');
  const url = await freshDatabase(db);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE floor_rows AS SELECT g AS id, md5(g::text) AS v, now() AS t FROM generate_series(1, 10000) g`);
    await client.query('ALTER TABLE floor_rows ADD PRIMARY KEY (id)');
    await client.query('CREATE TABLE floor_commits (id bigserial PRIMARY KEY, v text)');

    for (const mode of ['bare', 'select']) {
      const srv = fork(import.meta.filename, ['--serve', mode, url], { stdio: 'inherit' });
      try {
        // the server may use both cores, whatever this process's affinity
        execFileSync('taskset', ['-p', '-c', '0,1', String(srv.pid)], { stdio: 'ignore' });
      } catch {
        /* not pinned either way */
      }
      await new Promise((resolve) => srv.once('message', resolve));
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const get = () =>
        new Promise((resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port: PORT, path: '/', agent }, (res) => {
            res.resume();
            res.on('end', resolve);
          });
          req.setTimeout(5_000, () => req.destroy(new Error('timed out')));
          req.on('error', reject);
        });
      for (let i = 0; i < 300; i++) await get();
      const lat = [];
      for (let i = 0; i < Number(args.requests); i++) {
        const t0 = performance.now();
        await get();
        lat.push(performance.now() - t0);
      }
      summary(mode === 'bare' ? 'HTTP ping-pong, no work' : 'HTTP ping-pong + primary-key SELECT', lat);
      agent.destroy();
      srv.kill();
    }

    const lat = [];
    for (let i = 0; i < Number(args.commits); i++) {
      const t0 = performance.now();
      await client.query({ name: 'floor_commit', text: 'INSERT INTO floor_commits (v) VALUES ($1)', values: ['x'] });
      lat.push(performance.now() - t0);
      await sleep(5);
    }
    summary('one-row INSERT, durable commit, 5 ms apart', lat);
  } finally {
    await client.end().catch(() => {});
    await dropDatabase(db);
  }
}
