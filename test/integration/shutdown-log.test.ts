// What an operator reads after a SIGTERM: the worker's last line says how many attempts were
// running when the stop began and how many it stopped when the grace ran out (their tasks go
// back to the queue). Real server, real database (PGlite, or PostgreSQL with DATABASE_URL).
import { expect, it } from 'vitest';
import { openTestDb } from '../helpers/db.js';
import { ADMIN_KEY, serverWithLogs, until } from '../helpers/server.js';
import type { TaskDefinition } from '../../src/executors/types.js';

// runs until its attempt is stopped
const stuck: TaskDefinition = {
  id: 'test-stuck', name: 'test-stuck', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  handler: (_input, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
};

it('a stopping worker logs how many attempts ran and how many the end of its grace stopped', async () => {
  const tdb = await openTestDb();
  const { server, entries } = await serverWithLogs(tdb.db, { TASKGATE_ROLE: 'all', TASKGATE_SHUTDOWN_GRACE_MS: '100' });
  try {
    server.registry.addDefinition(stuck, 'test');
    const res = await fetch(`${server.url}/api/v1/tasks`, {
      method: 'POST', headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ task_definition_id: stuck.id, input: {} }),
    });
    expect(res.status).toBe(200);
    await until(() => (server.worker?.activeCount ?? 0) === 1, 'the attempt to run');
    await server.close();
    const stopped = entries().find((l) => l.msg === 'worker stopped');
    expect(stopped).toMatchObject({ running_at_stop: 1, stopped_after_grace: 1, grace_ms: 100 });
  } finally {
    await server.close();
    await tdb.close();
  }
});
