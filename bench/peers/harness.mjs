// The part every peer child process shares: it receives {mode, ...} on argv, builds the
// peer's adapter and runs one mode, reporting over IPC. Producer and worker live in this
// one process (the peers' usual benchmark setup), so the parent reads its RSS/CPU alone.
//
// An adapter is { enqueueOne(data), enqueueMany(n), startWorker(profile, onJob),
//   remaining(), close() }; onJob(data) is called first thing in the job handler.

import Fastify from 'fastify';
import { percentile, sleep, wallMs } from '../lib/util.mjs';

export const cfg = JSON.parse(process.argv[2]);

/** Resolves once the message is handed to the IPC channel, so exit cannot drop it. */
function send(msg) {
  return new Promise((resolve) => (process.send ? process.send(msg, () => resolve()) : resolve()));
}

async function modeSubmit(adapter) {
  if (cfg.withWorker) await adapter.startWorker('latency', () => {});
  const app = Fastify({ logger: false });
  app.post(
    '/api/v1/tasks',
    {
      schema: {
        body: {
          type: 'object',
          required: ['task_definition_id'],
          properties: { task_definition_id: { type: 'string', maxLength: 128 }, input: { type: 'object' } },
        },
      },
    },
    async (req) => {
      const id = await adapter.enqueueOne(req.body.input ?? {});
      return { task_id: String(id), status: 'QUEUED' };
    },
  );
  await app.listen({ port: cfg.port, host: '127.0.0.1' });
  send({ type: 'ready' });
  return new Promise((resolve) => process.once('message', (m) => m?.type === 'stop' && resolve(app.close())));
}

async function modeIdle(adapter) {
  await adapter.startWorker('latency', () => {});
  send({ type: 'ready' });
  await new Promise((resolve) => process.once('message', (m) => m?.type === 'stop' && resolve()));
}

/** Pre-enqueue n jobs in bulk, then start the workers and time first start → all done. */
async function modeE2e(adapter) {
  const n = cfg.n;
  const e0 = wallMs();
  await adapter.enqueueMany(n);
  const enqueueMs = wallMs() - e0;
  const before = await adapter.remaining();
  if (before !== n) throw new Error(`expected ${n} queued jobs, found ${before}`);
  send({ type: 'enqueued' });
  let firstStart = 0;
  let handled = 0;
  await adapter.startWorker('throughput', () => {
    handled++;
    if (firstStart === 0) firstStart = wallMs();
  });
  const deadline = Date.now() + cfg.timeoutMs;
  let doneAt = 0;
  while (Date.now() < deadline) {
    if ((await adapter.remaining()) === 0) {
      doneAt = wallMs();
      break;
    }
    await sleep(10);
  }
  if (!doneAt) throw new Error(`e2e: not all ${n} jobs completed within ${cfg.timeoutMs} ms (handled ${handled})`);
  const seconds = (doneAt - firstStart) / 1000;
  await send({
    type: 'result',
    result: { tasks_per_s: n / seconds, duration_s: seconds, enqueue_per_s: n / (enqueueMs / 1000), handled },
  });
}

/** Idle workers; n jobs submitted one by one, `gapMs` apart; submit → handler start. */
async function modeDispatch(adapter) {
  const n = cfg.n;
  const submitted = new Array(n).fill(0);
  const started = new Array(n).fill(0);
  let seen = 0;
  let warmSeen = 0;
  await adapter.startWorker('latency', (data) => {
    const i = data?.i;
    if (data?.warm) warmSeen++;
    else if (Number.isInteger(i) && started[i] === 0) {
      started[i] = wallMs();
      seen++;
    }
  });
  // the same untimed warm-up as Taskgate's (first-use costs are not dispatch latency)
  const warmup = cfg.warmup ?? 0;
  for (let i = 0; i < warmup; i++) {
    await adapter.enqueueOne({ warm: true });
    await sleep(cfg.gapMs);
  }
  const warmDeadline = Date.now() + cfg.timeoutMs;
  while (warmSeen < warmup && Date.now() < warmDeadline) await sleep(20);
  await sleep(cfg.settleMs ?? 1_000); // let every worker reach its idle wait
  let next = wallMs();
  for (let i = 0; i < n; i++) {
    const wait = next - wallMs();
    if (wait > 0) await sleep(wait);
    submitted[i] = wallMs();
    await adapter.enqueueOne({ i });
    next = submitted[i] + cfg.gapMs;
  }
  const deadline = Date.now() + cfg.timeoutMs;
  while (seen < n && Date.now() < deadline) await sleep(20);
  if (seen < n) throw new Error(`dispatch: only ${seen}/${n} jobs started within ${cfg.timeoutMs} ms`);
  const lat = started.map((s, i) => s - submitted[i]);
  await send({ type: 'result', result: { p50_ms: percentile(lat, 50), p99_ms: percentile(lat, 99), max_ms: Math.max(...lat), n } });
}

export async function runPeer(makeAdapter) {
  let adapter;
  const guard = setTimeout(() => {
    send({ type: 'error', error: `peer ${cfg.mode} exceeded its ${cfg.hardTimeoutMs ?? 600_000} ms budget` });
    process.exit(3);
  }, cfg.hardTimeoutMs ?? 600_000);
  guard.unref();
  process.on('disconnect', () => process.exit(0));
  try {
    adapter = await makeAdapter(cfg);
    if (cfg.mode === 'submit') await modeSubmit(adapter);
    else if (cfg.mode === 'idle') await modeIdle(adapter);
    else if (cfg.mode === 'e2e') await modeE2e(adapter);
    else if (cfg.mode === 'dispatch') await modeDispatch(adapter);
    else throw new Error(`unknown mode ${cfg.mode}`);
  } catch (err) {
    await send({ type: 'error', error: String(err?.stack ?? err) });
  }
  try {
    await Promise.race([adapter?.close(), sleep(5_000)]);
  } catch {
    /* closing is best effort */
  }
  process.exit(0);
}
