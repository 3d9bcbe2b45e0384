// Reference ceilings for durable submit: a bare Fastify 5 route that inserts one row per
// request into PostgreSQL (`insert`), and the same route without the database (`bare`).
// Same path, body schema and response shape as POST /api/v1/tasks; no auth, no batching.

import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';

const [mode, portArg] = process.argv.slice(2);
const port = Number(portArg);
const POOL_SIZE = 16; // node-postgres default is 10; 16 lets 64 connections group-commit

let pool;
if (mode === 'insert') {
  pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: POOL_SIZE });
  await pool.query(`CREATE TABLE IF NOT EXISTS bench_tasks (
    id text PRIMARY KEY,
    task_definition_id text NOT NULL,
    input jsonb,
    status text NOT NULL DEFAULT 'QUEUED',
    created_at timestamptz NOT NULL DEFAULT now())`);
}

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
    const id = `task_${randomUUID()}`;
    if (pool) {
      await pool.query('INSERT INTO bench_tasks (id, task_definition_id, input) VALUES ($1, $2, $3)', [
        id,
        req.body.task_definition_id,
        req.body.input ?? {},
      ]);
    }
    return { task_id: id, workflow_id: id, status: 'QUEUED' };
  },
);
app.get('/health', async () => ({ status: 'ok' }));

await app.listen({ port, host: '127.0.0.1' });
process.send?.({ type: 'ready' });

const shutdown = async () => {
  await app.close();
  await pool?.end();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('disconnect', shutdown);
