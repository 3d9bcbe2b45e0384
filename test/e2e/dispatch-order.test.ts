// Dispatch order and wake-ups on a real server, with a poll (TASKGATE_POLL_INTERVAL_MS 60 s) that
// cannot run within any test: a freed slot claims what waits, a higher-priority task waiting is
// not overtaken by a direct dispatch, and delayed tasks and retries start when they come due.
// Also: a handler that blocks the event loop past its deadline ends TIMEOUT.
// Order is asserted from the handlers' own start order; waits are bounded polls.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer, until, waitForTask, type TestServer } from '../helpers/server.js';
import type { TaskDefinition } from '../../src/executors/types.js';

/** Far beyond every wait below (a poll runs after 45–75 s): only a wake-up can start a task in time. */
const NO_POLL = { TASKGATE_POLL_INTERVAL_MS: '60000' };
/** How long a task that should start at once (or when due) may take on a loaded machine. */
const BOUND_MS = 10_000;

/** Labels in the order their handlers started. */
const started: string[] = [];
const gates = new Map<string, () => void>();

const def = (id: string, handler: TaskDefinition['handler']): TaskDefinition => ({
  id, name: id, description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] }, output_schema: { type: 'object' },
  handler,
});
const definitions = [
  // runs until the test releases it
  def('test-gate', (input: { key: string }) => {
    started.push(input.key);
    return new Promise((resolve) => gates.set(input.key, () => resolve({})));
  }),
  def('test-mark', (input: { key: string }) => {
    started.push(input.key);
    return {};
  }),
  def('test-fail-once', (input: { key: string }, ctx) => {
    started.push(`${input.key}#${ctx.attempt}`);
    if (ctx.attempt === 1) throw new Error('first attempt fails');
    return {};
  }),
  // never yields: its timeout's timer cannot fire while it runs
  def('test-spin', (input: { key: string; ms: number }) => {
    started.push(input.key);
    const end = Date.now() + input.ms;
    while (Date.now() < end) { /* busy */ }
    return {};
  }),
];

let tdb: TestDb;
beforeAll(async () => {
  tdb = await openTestDb();
});
afterAll(async () => {
  for (const release of gates.values()) release();
  await tdb?.close();
});
/** What each test submitted: a test that failed leaves nothing behind for the next one. */
const submitted: { server: TestServer; id: string }[] = [];
afterEach(async () => {
  for (const release of gates.values()) release();
  for (const { server, id } of submitted.splice(0)) await server.call('POST', `/api/v1/tasks/${id}/cancel`, { force: true });
  gates.clear();
  started.length = 0;
});

async function submit(server: TestServer, body: Record<string, unknown>): Promise<string> {
  const id = await server.submit(body);
  submitted.push({ server, id });
  return id;
}

async function row(id: string) {
  const res = await tdb.db.query<{ status: string; created_at: Date; run_at: Date; started_at: Date | null; attempt: number }>(
    'SELECT status, created_at, run_at, started_at, attempt FROM tasks WHERE id = $1', [id],
  );
  return res.rows[0]!;
}

/** Waits (bounded) until every label has started; returns the start order either way. */
async function startOrder(labels: string[]): Promise<string[]> {
  await until(() => labels.every((l) => started.includes(l)), `${labels.join(', ')} to start`, BOUND_MS).catch(() => {});
  return [...started];
}

async function idle(server: TestServer): Promise<void> {
  await until(() => server.worker!.activeCount === 0 && server.worker!.state === 'idle', 'an idle worker');
}

describe('one slot', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(tdb.db, NO_POLL, { definitions, flags: { concurrency: '1' } });
  });
  afterAll(async () => {
    for (const release of gates.values()) release();
    await server?.close();
  });

  it('a slot freed while an urgent task waits claims it; a low submit that follows is not dispatched ahead of it', async () => {
    await idle(server);
    const block = await submit(server, { task_definition_id: 'test-gate', input: { key: 'block' } });
    await until(() => gates.has('block'), 'the blocking task to start');
    const urgent = await submit(server, { task_definition_id: 'test-mark', input: { key: 'urgent' }, priority: 'urgent' });
    expect((await row(urgent)).status).toBe('QUEUED'); // the only slot is busy
    gates.get('block')!();
    expect((await waitForTask(server, block)).status).toBe('COMPLETED');
    const low = await submit(server, { task_definition_id: 'test-mark', input: { key: 'low' }, priority: 'low' });
    expect(await startOrder(['urgent', 'low'])).toEqual(['block', 'urgent', 'low']);
    expect((await waitForTask(server, low)).status).toBe('COMPLETED');
  });

  it('a delayed task starts when it comes due, not at the next poll', async () => {
    await idle(server);
    const delayed = await submit(server, { task_definition_id: 'test-mark', input: { key: 'delayed' }, priority: 'urgent', delay_ms: 300 });
    expect(await startOrder(['delayed'])).toEqual(['delayed']);
    // (a claim window writes started_at with its commit)
    expect((await waitForTask(server, delayed)).status).toBe('COMPLETED');
    const r = await row(delayed);
    expect(r.started_at!.getTime() - r.created_at.getTime()).toBeGreaterThanOrEqual(300);
  });

  it('wakes for the earliest delayed task whatever its priority', async () => {
    await idle(server);
    await submit(server, { task_definition_id: 'test-mark', input: { key: 'urgent-later' }, priority: 'urgent', delay_ms: 2000 });
    await submit(server, { task_definition_id: 'test-mark', input: { key: 'low-sooner' }, priority: 'low', delay_ms: 300 });
    expect(await startOrder(['low-sooner', 'urgent-later'])).toEqual(['low-sooner', 'urgent-later']);
  });

  it('a retry starts when its backoff has passed, not at the next poll', async () => {
    await idle(server);
    const id = await submit(server, {
      task_definition_id: 'test-fail-once', input: { key: 'retry' }, priority: 'urgent', retry_policy: { max_retries: 1, retry_interval_ms: 200 },
    });
    expect(await startOrder(['retry#1', 'retry#2'])).toEqual(['retry#1', 'retry#2']);
    const done = await waitForTask(server, id);
    expect(done).toMatchObject({ status: 'COMPLETED' });
    expect((await row(id)).attempt).toBe(2);
  });

  it('a handler that holds the event loop past its deadline times out', async () => {
    await idle(server);
    const id = await submit(server, {
      task_definition_id: 'test-spin', input: { key: 'spin', ms: 500 }, timeout_ms: 100, retry_policy: { max_retries: 0 },
    });
    const done = await waitForTask(server, id);
    expect(done).toMatchObject({ status: 'TIMEOUT', error: 'task timed out after 100 ms' });
  });
});

describe('two slots', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(tdb.db, NO_POLL, { definitions, flags: { concurrency: '2' } });
  });
  afterAll(async () => {
    for (const release of gates.values()) release();
    await server?.close();
  });

  it('a freed slot is refilled at once from the queue', async () => {
    await idle(server);
    await submit(server, { task_definition_id: 'test-gate', input: { key: 'a' } });
    await submit(server, { task_definition_id: 'test-gate', input: { key: 'b' } });
    await until(() => gates.has('a') && gates.has('b'), 'both slots to be taken');
    const next = await submit(server, { task_definition_id: 'test-mark', input: { key: 'next' } });
    expect((await row(next)).status).toBe('QUEUED');
    gates.get('a')!();
    expect(await startOrder(['next'])).toEqual(['a', 'b', 'next']);
    expect((await waitForTask(server, next)).status).toBe('COMPLETED');
  });
});
