// pg-boss 10 peer. pg-boss has no LISTEN/NOTIFY wake-up: each work() loop polls, so its
// docs' levers are `pollingIntervalSeconds` (minimum 0.5 s in v10) and `batchSize`, and
// concurrency comes from registering work() more than once. Bulk enqueue uses insert().
// Measured here (20,000 no-op jobs): 2 loops x batch 1,000 ~4,000/s; 4 x 500 ~2,100–2,800/s;
// 8 x 500 ~1,300/s. For latency a batch of 100 lets one poll drain whatever arrived.

import PgBoss from 'pg-boss';
import { runPeer } from './harness.mjs';

const QUEUE = 'bench';
const WORKERS = { throughput: 2, latency: 2 };
const BATCH = { throughput: 1000, latency: 100 };
const POLL_S = 0.5;

runPeer(async (cfg) => {
  const boss = new PgBoss({ connectionString: cfg.databaseUrl, max: 12 });
  boss.on('error', (err) => process.stderr.write(`pg-boss error: ${err?.message}\n`));
  await boss.start();
  await boss.createQueue(QUEUE);

  return {
    enqueueOne(data) {
      return boss.send(QUEUE, data);
    },
    async enqueueMany(n) {
      const CHUNK = 1000;
      for (let i = 0; i < n; i += CHUNK) {
        const jobs = [];
        for (let j = i; j < Math.min(n, i + CHUNK); j++) jobs.push({ name: QUEUE, data: { j } });
        await boss.insert(jobs);
      }
    },
    async startWorker(profile, onJob) {
      for (let w = 0; w < (cfg.workers ?? WORKERS[profile]); w++) {
        await boss.work(QUEUE, { batchSize: cfg.batch ?? BATCH[profile], pollingIntervalSeconds: POLL_S }, async (jobs) => {
          for (const job of jobs) onJob(job.data);
        });
      }
    },
    remaining() {
      // created + retry + active: everything not yet completed
      return boss.getQueueSize(QUEUE, { before: 'completed' });
    },
    async close() {
      await boss.stop({ graceful: false, wait: false });
    },
  };
});
