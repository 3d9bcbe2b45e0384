// Direct dispatch on a real database: a submit that finds this process's worker idle with the
// queue drained is inserted already claimed (RUNNING, attempt 1, WORKFLOW_STARTED as event 1,
// started in the same statement that created it) and runs without a claim; a submit that finds
// the worker busy, or a delayed one, waits in the queue and is claimed in order as before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer, until, waitForTask, type TestServer } from '../helpers/server.js';
import type { TaskDefinition } from '../../src/executors/types.js';

const gates = new Map<string, () => void>();
const gate: TaskDefinition = {
  id: 'test-gate', name: 'waits for the test', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] }, output_schema: { type: 'object' },
  handler: (input: { key: string }) => new Promise((resolve) => gates.set(input.key, () => resolve({ released: input.key }))),
};

let tdb: TestDb;
let server: TestServer;

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db, {}, { definitions: [gate], flags: { concurrency: '1' } });
});
afterAll(async () => {
  for (const release of gates.values()) release();
  await server?.close();
  await tdb?.close();
});

async function row(id: string) {
  const res = await tdb.db.query<{ status: string; created_at: Date; run_at: Date; started_at: Date | null; attempt: number; delay_us: number }>(
    `SELECT status, created_at, run_at, started_at, attempt, (extract(epoch FROM run_at - created_at) * 1e6)::float8 AS delay_us
       FROM tasks WHERE id = $1`,
    [id],
  );
  return res.rows[0]!;
}

/**
 * Submits no-op tasks one at a time until one is dispatched directly; its id. A worker's start-up
 * claim (slow on a loaded machine) or a hint's claim still in flight sends a submit the queue path.
 */
async function submitUntilDirect(s: TestServer, tries = 20): Promise<string | undefined> {
  for (let i = 0; i < tries; i++) {
    const id = await s.submit({ task_definition_id: 'noop', input: {} });
    await waitForTask(s, id);
    const r = await row(id);
    if (r.started_at?.getTime() === r.created_at.getTime()) return id;
  }
  return undefined;
}

describe('direct dispatch', () => {
  it('inserts a task already claimed when the worker is idle, with the claim event as event 1', async () => {
    await until(() => server.worker!.activeCount === 0, 'an idle worker');
    const direct = await submitUntilDirect(server);
    expect(direct).toBeDefined();
    const events = (await server.call('GET', `/api/v1/tasks/${direct}/events`)).body.events;
    expect(events.map((e: { type: string }) => e.type)).toEqual(['WORKFLOW_STARTED', 'WORKFLOW_COMPLETED', 'STREAM_END']);
    expect(events[0]).toMatchObject({ seq: 1, payload: { attempt: 1, worker_id: expect.any(String) } });
    expect((await waitForTask(server, direct!)).status).toBe('COMPLETED');
  });

  it('queues what arrives while the worker is busy, and runs it in order once a slot frees', async () => {
    const first = await server.submit({ task_definition_id: 'test-gate', input: { key: 'a' } });
    await until(() => gates.has('a'), 'the first task to start');
    const second = await server.submit({ task_definition_id: 'test-gate', input: { key: 'b' } });
    const third = await server.submit({ task_definition_id: 'noop', input: {} });
    expect((await row(second)).status).toBe('QUEUED');
    expect((await row(third)).status).toBe('QUEUED');
    gates.get('a')!();
    await until(() => gates.has('b'), 'the second task to start');
    expect((await row(third)).status).toBe('QUEUED'); // not overtaken by anything
    gates.get('b')!();
    await waitForTask(server, third);
    const [b, c] = [await row(second), await row(third)];
    expect(b.started_at!.getTime()).toBeGreaterThan(b.created_at.getTime());
    expect(c.started_at!.getTime()).toBeGreaterThanOrEqual(b.started_at!.getTime());
    expect((await waitForTask(server, first)).status).toBe('COMPLETED');
  });

  it('never dispatches a delayed task directly; the delay counts from created_at, on the database clock', async () => {
    await until(() => server.worker!.activeCount === 0, 'an idle worker');
    const task_id = await server.submit({ task_definition_id: 'noop', input: {}, delay_ms: 300 });
    const queued = await row(task_id);
    expect(queued.status).toBe('QUEUED');
    // exactly, to the microsecond: run_at and created_at come from the same statement's clock (a
    // run_at computed on this host's clock was ~1 ms short of created_at + delay, and any skew
    // between the hosts' clocks would have moved it further)
    expect(queued.delay_us).toBe(300_000);
    const done = await waitForTask(server, task_id);
    expect(done.status).toBe('COMPLETED');
    const r = await row(task_id);
    expect(r.started_at!.getTime() - r.created_at.getTime()).toBeGreaterThanOrEqual(300);
  });
});

describe('direct dispatch beside a fast poll', () => {
  let polling: TestServer;
  beforeAll(async () => {
    // polls every ~10 ms: an idle worker's poll that claimed made submits take the queue path
    polling = await startTestServer(tdb.db, { TASKGATE_POLL_INTERVAL_MS: '10' }, { flags: { concurrency: '1' } });
  });
  afterAll(async () => {
    await polling?.close();
  });

  it('an idle worker\'s polls do not take submits off the direct path', async () => {
    await until(() => polling.worker!.activeCount === 0, 'an idle worker');
    // until a submit goes direct, they are queued by design (the start-up claim), not by the polls
    expect(await submitUntilDirect(polling)).toBeDefined();
    const queued: string[] = [];
    for (let i = 0; i < 40; i++) {
      const id = await polling.submit({ task_definition_id: 'noop', input: {} });
      await waitForTask(polling, id);
      const r = await row(id);
      if (r.started_at?.getTime() !== r.created_at.getTime()) queued.push(id);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    expect(queued).toEqual([]);
  });
});
