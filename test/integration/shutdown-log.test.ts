// What an operator reads after a SIGTERM: the worker's last line says how many attempts were
// running when the stop began and how many it stopped when the grace ran out (their tasks go
// back to the queue). Real server, real database (PGlite, or PostgreSQL with DATABASE_URL).
import { Writable } from 'node:stream';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openTestDb } from '../helpers/db.js';
import { ADMIN_KEY, until } from '../helpers/server.js';
import { startServer } from '../../src/main.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/logger.js';
import type { TaskDefinition } from '../../src/executors/types.js';

// runs until its attempt is stopped
const stuck: TaskDefinition = {
  id: 'test-stuck', name: 'test-stuck', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  handler: (_input, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
};

it('a stopping worker logs how many attempts ran and how many the end of its grace stopped', async () => {
  const tdb = await openTestDb();
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const config = loadConfig({}, {
    TASKGATE_ADMIN_KEY: ADMIN_KEY, PORT: '0', TASKGATE_DATA_DIR: mkdtempSync(join(tmpdir(), 'taskgate-stop-')),
    TASKGATE_RATE_LIMIT_PER_MIN: '0', TASKGATE_SHUTDOWN_GRACE_MS: '100',
  });
  const server = await startServer(config, { db: tdb.db, logger: createLogger('info', sink) });
  try {
    server.registry.addDefinition(stuck, 'test');
    const res = await fetch(`${server.url}/api/v1/tasks`, {
      method: 'POST', headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ task_definition_id: stuck.id, input: {} }),
    });
    expect(res.status).toBe(200);
    await until(() => (server.worker?.activeCount ?? 0) === 1, 'the attempt to run');
    await server.close();
    const stopped = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'worker stopped');
    expect(stopped).toMatchObject({ running_at_stop: 1, stopped_after_grace: 1, grace_ms: 100 });
  } finally {
    await server.close();
    await tdb.close();
  }
});
