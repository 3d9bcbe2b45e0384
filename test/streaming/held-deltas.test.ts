// Live-only events (LLM_PARTIAL token deltas) that reach a subscriber while it is still reading
// the persisted log (it connected as the task started: submit, then stream) are held and handed
// over in their place in the replay — right after the last event known when they arrived, or
// after the replay when none was known yet — instead of being dropped (the first deltas of a
// client that connected right after its submit never arrived). Real EventHub over a real
// database (PGlite, or PostgreSQL with DATABASE_URL).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { until } from '../helpers/server.js';
import { EventHub } from '../../src/events/hub.js';
import { tenantsInsert } from '../../src/storage/queries/tenants.js';
import { tasksClaimAvailable, tasksTransition } from '../../src/storage/queries/transitions.js';
import { tasksInsertMany, type NewTask } from '../../src/storage/queries/tasks.js';
import { eventsList } from '../../src/storage/queries/events.js';
import { newTaskId, newTenantId } from '../../src/domain/ids.js';
import type { TaskEvent } from '../../src/contract/events.js';

let tdb: TestDb;
let tenant: string;

beforeAll(async () => {
  tdb = await openTestDb();
  tenant = newTenantId();
  await tenantsInsert(tdb.db, { id: tenant, name: 't' });
});
afterAll(async () => tdb?.close());

/** A running task with `n` persisted events (WORKFLOW_STARTED, then PROGRESS …). */
async function runningTask(n: number): Promise<string> {
  const task: NewTask = {
    id: newTaskId(), tenant_id: tenant, user_id: 'u', session_id: null, kind: 'definition', task_definition_id: 'noop',
    query: '', input: {}, context: {}, options: {}, mode: null, priority: 0, max_attempts: 1, retry_interval_ms: 10,
    backoff_multiplier: 2, timeout_ms: 60_000, run_at: null, metadata: {}, tags: [], workflow_instance_id: null,
  };
  await tasksInsertMany(tdb.db, [task]);
  // (urgent: claimed ahead of anything another test left queued in this schema)
  const claimed = await tasksClaimAvailable(tdb.db, { limit: 1, owner: 'w', leaseMs: 60_000 });
  expect(claimed[0]?.task.id).toBe(task.id);
  for (let i = 1; i < n; i++) {
    await tasksTransition(tdb.db, { id: task.id, statuses: ['RUNNING'], attempt: 1, leaseOwner: 'w' }, {}, [{ type: 'PROGRESS', message: `p${i}` }]);
  }
  return task.id;
}

const delta = (taskId: string, text: string): TaskEvent => ({
  workflow_id: taskId, type: 'LLM_PARTIAL', agent_id: null, message: text, payload: { delta: text }, timestamp: new Date().toISOString(), seq: 0, stream_id: null,
});

/** Subscribes from the start and records what arrives: `3` for persisted seq 3, `~x` for a delta `x`. */
function follow(hub: EventHub, taskId: string): string[] {
  const got: string[] = [];
  hub.subscribe(taskId, tenant, 0, { deliver: (e, ephemeral) => got.push(ephemeral ? `~${e.message}` : String(e.seq)) });
  return got;
}

describe('live-only events reaching a subscriber that is still reading the log', () => {
  it('arrive after the replay when no event was known yet (a new subscription)', async () => {
    const id = await runningTask(3);
    const hub = new EventHub(tdb.db, { crossProcess: false });
    const got = follow(hub, id);
    // the subscription's first read is in flight: nothing of the log is known to the hub yet
    hub.publishEphemeral(delta(id, 'a'));
    hub.publishEphemeral(delta(id, 'b'));
    await until(() => got.length === 5, 'the replay and the deltas');
    expect(got).toEqual(['1', '2', '3', '~a', '~b']);
    // and once caught up, live as before
    hub.publishEphemeral(delta(id, 'c'));
    expect(got.at(-1)).toBe('~c');
  });

  it('arrive in their place: right after the last event known when they came', async () => {
    const id = await runningTask(5);
    const stored = await eventsList(tdb.db, { tenantId: tenant, taskId: id, limit: 10 });
    const hub = new EventHub(tdb.db, { crossProcess: false });
    const got = follow(hub, id);
    // while the replay is being read, this process hears of events 3 and 4 as they commit, and a
    // delta after each
    hub.publish([stored[2]!]);
    hub.publishEphemeral(delta(id, 'after-3'));
    hub.publish([stored[3]!]);
    hub.publishEphemeral(delta(id, 'after-4'));
    await until(() => got.length === 7, 'the replay and the deltas');
    expect(got).toEqual(['1', '2', '3', '~after-3', '4', '~after-4', '5']);
  });
});
