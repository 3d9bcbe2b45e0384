// graphile-worker 0.17 peer. Idle workers wake on LISTEN/NOTIFY (pollInterval is only the
// fallback for future-dated jobs). For throughput its performance docs recommend batching:
// `localQueue.size` (lock a batch of jobs per fetch) and `completeJobBatchDelay` (batch the
// completions); for latency the defaults (no local queue, no completion batching).

import { run, makeWorkerUtils, Logger } from 'graphile-worker';
import { runPeer } from './harness.mjs';

const CONCURRENCY = 50;
const PROFILES = {
  throughput: { localQueue: { size: 500 }, completeJobBatchDelay: 0 },
  latency: {},
};

runPeer(async (cfg) => {
  // errors only: logging every job would measure the logger
  const logger = new Logger(() => (level, message) => {
    if (level === 'error') process.stderr.write(`graphile-worker: ${message}\n`);
  });
  const utils = await makeWorkerUtils({ connectionString: cfg.databaseUrl, logger });
  await utils.migrate();
  let runner;

  return {
    async enqueueOne(data) {
      const job = await utils.addJob('noop', data);
      return job.id;
    },
    async enqueueMany(n) {
      const CHUNK = 1000;
      for (let i = 0; i < n; i += CHUNK) {
        const specs = [];
        for (let j = i; j < Math.min(n, i + CHUNK); j++) specs.push({ identifier: 'noop', payload: { j } });
        await utils.addJobs(specs);
      }
    },
    async startWorker(profile, onJob) {
      runner = await run({
        connectionString: cfg.databaseUrl,
        concurrency: CONCURRENCY,
        maxPoolSize: 12,
        pollInterval: 2_000,
        noHandleSignals: true,
        logger,
        taskList: {
          noop: async (payload) => {
            onJob(payload);
          },
        },
        preset: { worker: PROFILES[profile] },
      });
    },
    async remaining() {
      // finished jobs are deleted, so whatever is left is not done yet
      const { rows } = await utils.withPgClient((c) => c.query('select count(*)::int as n from graphile_worker._private_jobs'));
      return rows[0].n;
    },
    async close() {
      await runner?.stop();
      await utils.release();
    },
  };
});
