// The SDK against a real server on a real database: submit and handles, wait/result, the live
// stream (replay, types, resume after a cut connection), control, sessions, approvals,
// definitions, and every failure as its typed error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthenticationError, ConflictError, NotFoundError, PermissionDeniedError, SessionNotFoundError, TaskFailedError, TaskgateClient,
  TaskgateError, TaskNotFoundError, TaskTimeoutError, ValidationError, type StreamEvent, type StreamState,
} from '../../src/sdk/index.js';
import type { TaskDefinition } from '../../src/executors/types.js';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, newTenant, startTestServer, type TestServer } from '../helpers/server.js';
import { failingDef, gatedDef, gates, progressDef } from '../streaming/helpers.js';

const approvalDef: TaskDefinition = {
  id: 'test-approve', name: 'approve', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  async handler(_input, ctx) {
    const d = await ctx.waitForApproval({ message: 'ship it?' });
    return { approved: d.approved, feedback: d.feedback ?? null };
  },
};

let tdb: TestDb;
let server: TestServer;
let client: TaskgateClient;

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db, {}, { definitions: [progressDef, failingDef, gatedDef, approvalDef] });
  client = new TaskgateClient({ baseUrl: server.url, apiKey: ADMIN_KEY });
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
});

const fast = { pollIntervalMs: 50, timeoutMs: 20_000 };
const collect = async (it: AsyncIterable<StreamEvent>) => {
  const out: StreamEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
};
const strip = ({ event: _e, ...rest }: StreamEvent) => rest;

describe('SDK: tasks', () => {
  it('submitTask returns a handle; result() waits and gives the output; the view, list and events agree', async () => {
    const handle = await client.submitTask({ task_definition_id: 'test-progress', input: { count: 2, key: 'sdk-basic' }, metadata: { tags: ['sdk-basic'] } });
    expect(handle.taskId).toMatch(/^task_/);
    expect(handle.workflowId).toBe(handle.taskId);
    expect(handle.submitted.status).toBe('QUEUED');
    expect(await handle.result(fast)).toEqual({ count: 2 });
    const view = await handle.status();
    expect(view).toMatchObject({ task_id: handle.taskId, status: 'COMPLETED', output: { count: 2 } });
    const list = await client.listTasks({ tag: 'sdk-basic' });
    expect(list.tasks.map((t) => t.task_id)).toEqual([handle.taskId]);
    const { events } = await client.getEvents(handle.taskId, { limit: 200 });
    expect(events.map((e) => e.type)).toEqual(['WORKFLOW_STARTED', 'PROGRESS', 'PROGRESS', 'WORKFLOW_COMPLETED', 'STREAM_END']);
    const timeline = await client.getTimeline(handle.taskId);
    expect(timeline.stats.status).toBe('COMPLETED');
  });

  it('iterTasks pages through every matching task', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await client.submitTask({ task_definition_id: 'test-progress', input: { count: 0, key: `it${i}` }, metadata: { tags: ['sdk-iter'] } })).taskId);
    const seen: string[] = [];
    for await (const t of client.iterTasks({ tag: 'sdk-iter', limit: 2 })) seen.push(t.task_id);
    expect(seen).toHaveLength(5);
    expect(new Set(seen)).toEqual(ids);
  });

  it('iterTasks sees every task once while the list changes under it: a drain that takes each out of the filter, and tasks submitted meanwhile', async () => {
    // an hour's delay keeps them QUEUED; cancelling each takes it out of status=QUEUED, shifting the pages
    const submit = (tag: string, i: number) => client.submitTask({ task_definition_id: 'test-progress', input: { count: 0, key: `${tag}${i}` }, delay_ms: 3_600_000, metadata: { tags: [tag] } });
    const queued = new Set<string>();
    for (let i = 0; i < 10; i++) queued.add((await submit('sdk-drain', i)).taskId);
    const drained: string[] = [];
    for await (const t of client.iterTasks({ status: 'QUEUED', tag: 'sdk-drain', limit: 3 })) {
      drained.push(t.task_id);
      await client.cancel(t.task_id);
    }
    expect(drained).toHaveLength(10);
    expect(new Set(drained)).toEqual(queued);
    expect((await client.listTasks({ status: 'QUEUED', tag: 'sdk-drain' })).total_count).toBe(0);

    // a task submitted at each step sorts ahead of the walk: the ones there before are each seen once
    const before = new Set<string>();
    for (let i = 0; i < 7; i++) before.add((await submit('sdk-grow', i)).taskId);
    const walked: string[] = [];
    let added = 0;
    for await (const t of client.iterTasks({ tag: 'sdk-grow', limit: 2 })) {
      walked.push(t.task_id);
      if (added++ < 5) await submit('sdk-grow', 100 + added);
    }
    expect(walked.filter((id) => before.has(id)).sort()).toEqual([...before].sort());
    expect(new Set(walked).size).toBe(walked.length);
  });

  it('result() of a failed task throws TaskFailedError with the final view', async () => {
    const handle = await client.submitTask({ task_definition_id: 'test-fail', input: {} });
    const err = await handle.result(fast).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect((err as TaskFailedError).task.status).toBe('FAILED');
    expect((err as TaskFailedError).message).toContain('it broke');
    // wait() itself gives the view whatever the outcome
    expect((await handle.wait(fast)).status).toBe('FAILED');
  });

  it('wait() gives up with TaskTimeoutError; pause, resume, control state and cancel through the handle', async () => {
    const handle = await client.submitTask({ task_definition_id: 'test-gated', input: { key: 'sdk-ctl' } });
    const err = await handle.wait({ timeoutMs: 300, pollIntervalMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskTimeoutError);
    expect((err as TaskTimeoutError).code).toBe('WAIT_TIMEOUT');

    expect(await handle.pause({ reason: 'hold on' })).toMatchObject({ success: true, task_id: handle.taskId });
    expect((await handle.controlState()).pause_reason).toBe('hold on');
    expect(await handle.resume()).toMatchObject({ success: true, status: 'RUNNING' });
    const cancelled = await handle.cancel({ reason: 'enough', force: true });
    expect(cancelled).toMatchObject({ success: true, task_id: handle.taskId });
    const err2 = await handle.result(fast).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(TaskFailedError);
    expect((err2 as TaskFailedError).task.status).toBe('CANCELLED');
    expect((await handle.controlState()).is_cancelled).toBe(true);
    // a second cancel of an ended task: 409
    const again = await handle.cancel().catch((e: unknown) => e);
    expect(again).toBeInstanceOf(ConflictError);
    expect((again as ConflictError).code).toBe('TASK_ALREADY_FINISHED');
  });

  it('sends the Idempotency-Key: the same key gives the same task', async () => {
    const body = { task_definition_id: 'test-progress', input: { count: 0, key: 'idem' } };
    const a = await client.submitTask(body, { idempotencyKey: 'sdk-idem-1' });
    const b = await client.submitTask(body, { idempotencyKey: 'sdk-idem-1' });
    expect(b.taskId).toBe(a.taskId);
    expect([a.replayed, b.replayed]).toEqual([false, true]);
    const conflict = await client.submitTask({ ...body, priority: 'high' }, { idempotencyKey: 'sdk-idem-1' }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ValidationError);
    expect((conflict as ValidationError).code).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});

describe('SDK: streaming', () => {
  it('stream() replays then follows live until the end: every persisted event once, in order', async () => {
    const handle = await client.submitTask({ task_definition_id: 'test-progress', input: { count: 3, key: 'sdk-live', gated: true } });
    const states: StreamState[] = [];
    const seen = collect(handle.stream({ onState: (s) => states.push(s) }));
    await new Promise((r) => setTimeout(r, 100));
    gates.open('sdk-live:start');
    const events = await seen;
    const { events: persisted } = await client.getEvents(handle.taskId, { limit: 200 });
    expect(events.map(strip)).toEqual(persisted);
    expect(events.at(-1)?.type).toBe('STREAM_END');
    expect(states).toEqual(['connecting', 'live', 'done']);
  });

  it('filters by type, and resumes after lastEventId', async () => {
    const handle = await client.submitTask({ task_definition_id: 'test-progress', input: { count: 4, key: 'sdk-types' } });
    await handle.wait(fast);
    const progress = await collect(handle.stream({ types: ['PROGRESS'] }));
    expect(progress.map((e) => e.type)).toEqual(['PROGRESS', 'PROGRESS', 'PROGRESS', 'PROGRESS']);
    const after = await collect(handle.stream({ lastEventId: progress[1]!.seq }));
    expect(after[0]!.seq).toBe(progress[1]!.seq + 1);
    expect(after.at(-1)?.type).toBe('STREAM_END');
  });

  it('a connection cut mid-stream is resumed with Last-Event-ID: nothing lost, nothing twice', async () => {
    const handle = await client.submitTask({ task_definition_id: 'test-progress', input: { count: 6, key: 'sdk-cut' } });
    await handle.wait(fast);
    const lastEventIds: (string | null)[] = [];
    let cuts = 0;
    // the network, not our code: the first response's body fails after two event frames
    const cutting: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!String(input).includes('/stream/sse')) return res;
      lastEventIds.push(new Headers(init?.headers).get('last-event-id'));
      if (cuts++ > 0) return res;
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      const encoder = new TextEncoder();
      let text = '';
      let events = 0;
      let cut = false;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          // (an error discards what is queued: fail on the read after the two events were taken)
          if (cut) {
            void reader.cancel();
            return controller.error(new TypeError('terminated'));
          }
          const { value, done } = await reader.read();
          if (done) return controller.close();
          // frame by frame until two events went by, then fail the body like a reset socket
          text += decoder.decode(value, { stream: true });
          let end: number;
          while ((end = text.indexOf('\n\n')) !== -1) {
            const frame = text.slice(0, end + 2);
            text = text.slice(end + 2);
            if (/^id: /m.test(frame) && ++events > 2) {
              cut = true;
              return;
            }
            controller.enqueue(encoder.encode(frame));
          }
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const cutClient = new TaskgateClient({ baseUrl: server.url, apiKey: ADMIN_KEY, fetch: cutting });
    const states: StreamState[] = [];
    const events = await collect(cutClient.stream(handle.workflowId, { onState: (s) => states.push(s) }));
    const { events: persisted } = await client.getEvents(handle.taskId, { limit: 200 });
    expect(events.map(strip)).toEqual(persisted);
    expect(lastEventIds[0]).toBeNull();
    expect(Number(lastEventIds[1])).toBeGreaterThan(0);
    expect(states).toContain('reconnecting');
  });

  it('submitAndStream gives the handle and the stream URL', async () => {
    const { handle, streamUrl } = await client.submitAndStream({ task_definition_id: 'test-progress', input: { count: 1, key: 'sdk-sas' } });
    expect(streamUrl).toContain(`workflow_id=${handle.workflowId}`);
    expect(new URL(streamUrl).origin).toBe(new URL(server.url).origin);
    expect(handle.submitted).toMatchObject({ task_id: handle.taskId, stream_url: expect.stringContaining('/api/v1/stream/sse') });
    expect(handle.submitted.status).toBeUndefined(); // this route does not say; nothing is made up
    const events = await collect(handle.stream());
    expect(events.map((e) => e.type)).toEqual(['WORKFLOW_STARTED', 'PROGRESS', 'WORKFLOW_COMPLETED', 'STREAM_END']);
  });

  it('an unknown (or foreign) workflow throws TaskNotFoundError from the iteration; the signal ends it quietly', async () => {
    await expect(collect(client.stream('task_nope'))).rejects.toBeInstanceOf(TaskNotFoundError);
    const handle = await client.submitTask({ task_definition_id: 'test-gated', input: { key: 'sdk-abort' } });
    const ac = new AbortController();
    const seen: StreamEvent[] = [];
    const run = (async () => {
      for await (const e of handle.stream({ signal: ac.signal })) {
        seen.push(e);
        ac.abort();
      }
    })();
    await expect(run).resolves.toBeUndefined();
    expect(seen).toHaveLength(1);
    await handle.cancel({ force: true });
  });
});

describe('SDK: typed errors', () => {
  it('404, 401, 403, 400 each become their class, with the envelope and request id', async () => {
    const missing = await client.getStatus('task_missing').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TaskNotFoundError);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toBeInstanceOf(TaskgateError);
    expect(missing).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    expect((missing as TaskgateError).requestId).toBeTruthy();

    // another tenant's task is a 404 too
    const own = await client.submitTask({ task_definition_id: 'test-progress', input: { count: 0, key: 'mine' } });
    const other = await newTenant(tdb.db);
    const stranger = new TaskgateClient({ baseUrl: server.url, apiKey: other.key });
    await expect(stranger.getStatus(own.taskId)).rejects.toBeInstanceOf(TaskNotFoundError);

    await expect(new TaskgateClient({ baseUrl: server.url, apiKey: 'sk_wrong_key_000000000000' }).listTasks()).rejects.toBeInstanceOf(AuthenticationError);
    const reader = await newTenant(tdb.db, ['tasks:read']);
    const readOnly = new TaskgateClient({ baseUrl: server.url, apiKey: reader.key });
    await expect(readOnly.submitTask({ query: 'hi' })).rejects.toBeInstanceOf(PermissionDeniedError);

    const bad = await client.submitTask({ task_definition_id: 'test-progress', input: { key: 'no count' } }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ValidationError);
    expect((bad as ValidationError).status).toBe(422);
    expect((bad as ValidationError).details).toBeTruthy();
    await expect(client.getSession('sess_missing')).rejects.toBeInstanceOf(SessionNotFoundError);
  });
});

describe('SDK: sessions, approvals, definitions', () => {
  it('a session gathers its tasks; it can be renamed and deleted', async () => {
    const a = await client.submitTask({ task_definition_id: 'test-progress', input: { count: 1, key: 's1' }, session_id: 'sdk-session-1' });
    expect(a.sessionId).toBe('sdk-session-1');
    await a.wait(fast);
    const s = await client.getSession('sdk-session-1');
    expect(s).toMatchObject({ session_id: 'sdk-session-1', task_count: 1 });
    expect((await client.listSessions()).sessions.map((x) => x.session_id)).toContain('sdk-session-1');
    expect((await client.getSessionHistory('sdk-session-1')).tasks.map((t) => t.task_id)).toEqual([a.taskId]);
    const turns = await client.getSessionEvents('sdk-session-1', { includePayload: true });
    expect(turns.turns[0]?.task_id).toBe(a.taskId);
    expect((await client.updateSessionTitle('sdk-session-1', 'Renamed')).title).toBe('Renamed');
    await client.deleteSession('sdk-session-1');
    await client.deleteSession('sdk-session-1');
    await expect(client.getSession('sdk-session-1')).rejects.toBeInstanceOf(SessionNotFoundError);
  });

  it('an approval is listed pending and decided; the task finishes with the decision', async () => {
    const handle = await client.submitTask({ task_definition_id: 'test-approve', input: {} });
    let pending;
    for (let i = 0; i < 200 && !pending; i++) {
      pending = (await client.listApprovals({ status: 'pending' })).approvals.find((a) => a.workflow_id === handle.taskId);
      if (!pending) await new Promise((r) => setTimeout(r, 50));
    }
    expect(pending).toMatchObject({ status: 'pending', message: 'ship it?' });
    // the task parks itself (awaiting_approval) just after it asked: the approval may be listed a moment before
    let parked = false;
    for (let i = 0; i < 200 && !parked; i++) {
      parked = (await handle.controlState()).awaiting_approval;
      if (!parked) await new Promise((r) => setTimeout(r, 25));
    }
    expect(parked).toBe(true);
    const out = await client.decideApproval({ workflow_id: handle.workflowId, approval_id: pending!.approval_id, approved: true, feedback: 'go' });
    expect(out).toMatchObject({ status: 'sent', success: true });
    expect(await handle.result(fast)).toEqual({ approved: true, feedback: 'go' });
    const twice = await client.decideApproval({ workflow_id: handle.workflowId, approval_id: pending!.approval_id, approved: false }).catch((e: unknown) => e);
    expect(twice).toBeInstanceOf(ConflictError);
    // a 404 about the task is TaskNotFoundError; one about the approval (of a real task) is not
    const noTask = await client.decideApproval({ workflow_id: 'task_nope', approval_id: pending!.approval_id, approved: true }).catch((e: unknown) => e);
    expect(noTask).toBeInstanceOf(TaskNotFoundError);
    expect((noTask as TaskNotFoundError).details).toEqual({ path: 'workflow_id' });
    const noApproval = await client.decideApproval({ workflow_id: handle.workflowId, approval_id: '00000000-0000-4000-8000-000000000000', approved: true }).catch((e: unknown) => e);
    expect(noApproval).toBeInstanceOf(NotFoundError);
    expect(noApproval).not.toBeInstanceOf(TaskNotFoundError);
    expect((noApproval as NotFoundError).details).toEqual({ path: 'approval_id' });
  });

  it('definitions: put, get, list, delete', async () => {
    const def = await client.putDefinition('sdk-ask', {
      kind: 'approval', name: 'Ask first', input_schema: { type: 'object', properties: { what: { type: 'string' } }, required: ['what'] },
    });
    expect(def).toMatchObject({ id: 'sdk-ask', kind: 'approval', name: 'Ask first' });
    expect((await client.getDefinition('sdk-ask')).input_schema).toMatchObject({ required: ['what'] });
    expect((await client.listDefinitions({ search: 'sdk-ask' })).items.map((d) => d.id)).toEqual(['sdk-ask']);
    await client.deleteDefinition('sdk-ask');
    await expect(client.getDefinition('sdk-ask')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a DELETE whose answer was lost is retried, and the 404 its retry gets means done; a plain 404 stays an error', async () => {
    await client.putDefinition('sdk-lossy', { kind: 'approval' });
    let dropped = 0;
    // the server deletes, and the answer never reaches the client
    const lossy: typeof fetch = async (url, init) => {
      const res = await fetch(url, init);
      if (init?.method === 'DELETE' && dropped++ === 0) {
        await res.text();
        throw new TypeError('fetch failed');
      }
      return res;
    };
    const flaky = new TaskgateClient({ baseUrl: server.url, apiKey: ADMIN_KEY, fetch: lossy });
    await flaky.deleteDefinition('sdk-lossy');
    expect(dropped).toBe(2);
    await expect(client.getDefinition('sdk-lossy')).rejects.toBeInstanceOf(NotFoundError);
    await expect(flaky.deleteDefinition('sdk-never-was')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('health and readiness', async () => {
    expect((await client.health()).status).toBe('healthy');
    expect((await client.readiness()).status).toBe('ready');
  });
});
