// Latency client process: issues GET requests one at a time over a keep-alive connection and
// reports per-request latency percentiles (µs resolution). Paths come from a template where
// `{k}` is replaced by a random integer in [1, maxK], zero-padded to 8 digits.

import http from 'node:http';
import { percentile, wallMs } from '../lib/util.mjs';

const opts = JSON.parse(process.argv[2]);
const base = new URL(opts.url);
if (base.hostname !== '127.0.0.1' && base.hostname !== 'localhost') throw new Error('loopback only');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(p) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: base.hostname, port: base.port, path: p, headers: opts.headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out after 10 s')));
    req.on('error', reject);
  });
}

function path() {
  const k = 1 + Math.floor(Math.random() * opts.maxK);
  return opts.path.replace('{k}', String(k).padStart(8, '0'));
}

async function once() {
  const t0 = wallMs();
  const res = await get(path());
  const ms = wallMs() - t0;
  if (res.status !== 200) throw new Error(`GET ${opts.path}: ${res.status} ${res.body.slice(0, 300)}`);
  return ms;
}

try {
  const deadline = Date.now() + (opts.budgetMs ?? 120_000);
  for (let i = 0; i < opts.warmup; i++) await once();
  const lat = [];
  const t0 = wallMs();
  for (let i = 0; i < opts.count && Date.now() < deadline; i++) lat.push(await once());
  const seconds = (wallMs() - t0) / 1000;
  process.send({
    type: 'result',
    result: { p50_ms: percentile(lat, 50), p99_ms: percentile(lat, 99), rps: lat.length / seconds, n: lat.length },
  });
} catch (err) {
  process.send({ type: 'error', error: String(err?.stack ?? err) });
}
agent.destroy();
process.disconnect();
