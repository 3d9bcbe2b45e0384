// Load generator process: runs autocannon against one loopback URL (a warm-up, then the
// measured run) and reports the result over IPC. Started pinned to one core with taskset.

import autocannon from 'autocannon';

const opts = JSON.parse(process.argv[2]);
const url = new URL(opts.url);
if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
  throw new Error(`refusing to load a non-loopback host: ${url.hostname}`);
}

function fire(durationSec) {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: opts.url,
        method: opts.method ?? 'GET',
        headers: opts.headers ?? {},
        body: opts.body,
        connections: opts.connections ?? 64,
        duration: durationSec,
        timeout: 10, // seconds per request before it counts as a timeout
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    // a hard stop in case the target hangs: autocannon's own duration plus 15 s
    const guard = setTimeout(() => instance.stop(), (durationSec + 15) * 1000);
    guard.unref();
  });
}

try {
  if (opts.warmupSec > 0) await fire(opts.warmupSec);
  process.send({ type: 'measuring' });
  const r = await fire(opts.durationSec);
  const ok = r['2xx'] ?? 0;
  process.send({
    type: 'result',
    result: {
      rps: ok / r.duration,
      p50_ms: r.latency.p50,
      p97_5_ms: r.latency.p97_5,
      p99_ms: r.latency.p99,
      mean_ms: r.latency.average,
      ok,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      durationSec: r.duration,
    },
  });
} catch (err) {
  process.send({ type: 'error', error: String(err?.stack ?? err) });
}
process.disconnect();
