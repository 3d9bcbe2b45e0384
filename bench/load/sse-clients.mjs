// SSE client process: opens `clients` streams to one loopback URL, and for every event whose
// `timestamp` is later than that client's connection, records receive time − timestamp.
// Reports {type:'connected'} once every stream is open, then {type:'result'} when all have
// seen `event: done` (or the budget runs out).

import http from 'node:http';
import { percentile, wallMs } from '../lib/util.mjs';

const opts = JSON.parse(process.argv[2]);
const base = new URL(opts.url);
if (base.hostname !== '127.0.0.1' && base.hostname !== 'localhost') throw new Error('loopback only');
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const lat = [];
let open = 0;
let done = 0;
let failed = 0;
let firstError = '';
const reqs = [];
let announced = false;
function settled() {
  if (!announced && open + failed === opts.clients) {
    announced = true;
    process.send({ type: 'connected', open, failed });
  }
}

function client() {
  return new Promise((resolve) => {
    let connectedAt = 0;
    let buf = '';
    const req = http.get({ host: base.hostname, port: base.port, path: opts.path, headers: { ...opts.headers, accept: 'text/event-stream' }, agent }, (res) => {
      if (res.statusCode !== 200) {
        failed++;
        firstError ||= `HTTP ${res.statusCode}`;
        settled();
        res.resume();
        return resolve();
      }
      connectedAt = wallMs();
      open++;
      settled();
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const now = wallMs();
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of frame.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (event === 'done') {
            done++;
            req.destroy();
            return resolve();
          }
          if (!data || data === '[DONE]') continue;
          try {
            const ts = Date.parse(JSON.parse(data).timestamp);
            if (Number.isFinite(ts) && ts >= connectedAt) lat.push(now - ts);
          } catch {
            /* not JSON: not an event we time */
          }
        }
      });
      res.on('end', resolve);
      res.on('error', resolve);
    });
    req.on('error', (err) => {
      failed++;
      firstError ||= err.message;
      settled();
      resolve();
    });
    reqs.push(req);
  });
}

const all = [];
for (let i = 0; i < opts.clients; i++) all.push(client());
const budget = setTimeout(() => {
  for (const r of reqs) r.destroy();
}, opts.budgetMs ?? 60_000);
await Promise.all(all);
clearTimeout(budget);
process.send({
  type: 'result',
  result: { p50_ms: percentile(lat, 50), p99_ms: percentile(lat, 99), samples: lat.length, open, done, failed, firstError },
});
process.disconnect();
