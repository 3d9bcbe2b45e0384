// BullMQ peer (Redis, or its built-in PostgreSQL backend, `createPostgresBackend`).
// Configured per BullMQ's docs: one Worker with a high `concurrency` (its knob for fast,
// IO-bound jobs; blocking BZPOPMIN on Redis / LISTEN-NOTIFY on PostgreSQL wakes idle
// workers), `addBulk` for bulk enqueue, `maxRetriesPerRequest: null`, a pg pool larger than
// the concurrency. Finished jobs are kept (BullMQ's default): `removeOnComplete: {count: 1000}`
// cut PostgreSQL-backend throughput ~3x in a trial here (1,100 → 330 jobs/s).

import { Queue, Worker, createPostgresBackend, runMigrations } from 'bullmq';
import pg from 'pg';
import { runPeer } from './harness.mjs';

const QUEUE = 'bench';
// Measured here (2 cores, 5,000 no-op jobs): on PostgreSQL concurrency 4/16/32/64 gave
// ~630/1,100/820/940 jobs/s, so 16 (the docs' table uses 8–32); on Redis 100 beat 50.
const PG_CONCURRENCY = 16;
const REDIS_CONCURRENCY = 100;

runPeer(async (cfg) => {
  const onPg = cfg.backend === 'pg';
  let connection;
  let factory;
  if (onPg) {
    const pool = new pg.Pool({ connectionString: cfg.databaseUrl, max: 4 });
    const client = await pool.connect();
    try {
      await runMigrations(client);
    } finally {
      client.release();
      await pool.end();
    }
    connection = { connectionString: cfg.databaseUrl, max: cfg.poolMax ?? 20 };
    factory = createPostgresBackend;
  } else {
    connection = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };
  }
  // on Redis a per-run key prefix keeps runs apart (BullMQ's default prefix is "bull")
  const prefixOpt = onPg ? {} : { prefix: cfg.redisPrefix };
  const queue = onPg
    ? new Queue(QUEUE, { connection }, factory)
    : new Queue(QUEUE, { connection, ...prefixOpt });
  await queue.waitUntilReady();
  let worker;
  let completed = 0;
  let target = 0;

  return {
    async enqueueOne(data) {
      const job = await queue.add('noop', data);
      return job.id;
    },
    async enqueueMany(n) {
      target = n;
      const CHUNK = 1000;
      for (let i = 0; i < n; i += CHUNK) {
        const jobs = [];
        for (let j = i; j < Math.min(n, i + CHUNK); j++) jobs.push({ name: 'noop', data: { j } });
        await queue.addBulk(jobs);
      }
    },
    async startWorker(profile, onJob) {
      const opts = { connection, ...prefixOpt, concurrency: cfg.concurrency ?? (onPg ? PG_CONCURRENCY : REDIS_CONCURRENCY) };
      const processor = async (job) => {
        onJob(job.data);
        return null;
      };
      worker = onPg ? new Worker(QUEUE, processor, opts, factory) : new Worker(QUEUE, processor, opts);
      // 'completed' is emitted after moveToCompleted has returned from the store
      worker.on('completed', () => completed++);
      worker.on('error', (err) => process.stderr.write(`bullmq worker error: ${err?.message}\n`));
      await worker.waitUntilReady();
    },
    async remaining() {
      if (!worker) {
        const c = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
        return Object.values(c).reduce((a, b) => a + b, 0);
      }
      return target - completed;
    },
    async close() {
      await worker?.close();
      if (!onPg) await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    },
  };
});
