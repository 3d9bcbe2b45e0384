// Session routes on a real server: implicit creation at submit, the reference gateway's shapes
// (list, detail, history, turns), token/cost rollup from the tasks' usage, rename rules, soft
// delete, scopes and tenant isolation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { newTenant, startTestServer, waitForTask, type TestServer } from '../helpers/server.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import type { TaskDefinition } from '../../src/executors/types.js';

/** A definition whose executor reports LLM-style usage, like an agent would. */
const usageDef: TaskDefinition = {
  id: 'test-usage', name: 'usage', description: '', version: '1', kind: 'test-usage',
  input_schema: { type: 'object', properties: { tokens: { type: 'integer' } }, required: ['tokens'] },
  output_schema: { type: 'object' },
};

let tdb: TestDb;
let server: TestServer;
let owner: { tenantId: string; key: string };
const SID = 'sess-conversation-1';

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db, { TASKGATE_RATE_LIMIT_PER_MIN: '0' }, { definitions: [usageDef] });
  server.registry.addExecutor({
    kind: 'test-usage',
    async run(task, ctx) {
      const tokens = (task.input as { tokens: number }).tokens;
      await ctx.emit({ type: 'AGENT_STARTED', agent_id: 'planner', message: 'thinking' });
      await ctx.emit({ type: 'LLM_OUTPUT', agent_id: 'planner', message: `answer ${tokens}`, payload: { tokens } });
      return {
        output: { tokens }, result: `answer ${tokens}`,
        usage: { input_tokens: tokens, output_tokens: 2 * tokens, total_tokens: 3 * tokens, estimated_cost: tokens / 1000 },
      };
    },
  });
  owner = await newTenant(tdb.db, ['admin']);
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
});

const call = (method: string, path: string, body?: unknown, key = owner.key) => server.call(method, path, body, { key });
async function runTask(sessionId: string, tokens: number, key = owner.key): Promise<string> {
  const res = await call('POST', '/api/v1/tasks', { task_definition_id: 'test-usage', input: { tokens }, session_id: sessionId }, key);
  expect(res.status, res.text).toBe(200);
  expect(res.headers.get('x-session-id')).toBe(sessionId);
  await waitForTask(server, res.body.task_id, undefined, { key });
  return res.body.task_id;
}

describe('sessions', () => {
  let first: string;
  let second: string;
  beforeAll(async () => {
    first = await runTask(SID, 10);
    second = await runTask(SID, 20);
    await runTask('sess-other', 5);
  });

  it('GET /sessions/{id}: every field present, tokens and cost rolled up from the tasks', async () => {
    const res = await call('GET', `/api/v1/sessions/${SID}`);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual([
      'context', 'cost_usd', 'created_at', 'expires_at', 'is_research_session', 'research_strategy', 'session_id', 'task_count',
      'title', 'token_budget', 'tokens_used', 'updated_at', 'user_id',
    ]);
    expect(res.body).toMatchObject({
      session_id: SID, user_id: `user-${owner.tenantId}`, title: null, context: {}, token_budget: null,
      tokens_used: 90, task_count: 2, expires_at: null, is_research_session: false, research_strategy: null,
    });
    expect(res.body.cost_usd).toBeCloseTo(0.03, 10);
    expect(Date.parse(res.body.created_at)).not.toBeNaN();
    expect(Date.parse(res.body.updated_at)).not.toBeNaN();
  });

  it('GET /sessions lists the tenant\'s sessions newest first with total_count', async () => {
    const res = await call('GET', '/api/v1/sessions?limit=10');
    expect(res.status).toBe(200);
    expect(res.body.total_count).toBe(2);
    expect(res.body.sessions.map((s: any) => s.session_id)).toEqual(['sess-other', SID]);
    const s = res.body.sessions[1];
    expect(s).toMatchObject({ session_id: SID, user_id: `user-${owner.tenantId}`, task_count: 2, tokens_used: 90, successful_tasks: 2, failed_tasks: 0 });
    expect(s.created_at).toBeTruthy();
    expect((await call('GET', '/api/v1/sessions?limit=1&offset=1')).body.sessions.map((x: any) => x.session_id)).toEqual([SID]);
    expect((await call('GET', '/api/v1/sessions?limit=0')).status).toBe(400);
    // past the end: an empty page, and the count is still the count (it read as the offset)
    const past = await call('GET', '/api/v1/sessions?limit=10&offset=5000');
    expect(past.body).toMatchObject({ sessions: [], total_count: 2 });
  });

  it('GET /sessions/{id}/history: the tasks oldest first with their tokens and cost', async () => {
    const res = await call('GET', `/api/v1/sessions/${SID}/history`);
    expect(res.status).toBe(200);
    expect(res.body.session_id).toBe(SID);
    expect(res.body.total).toBe(2);
    expect(res.body.tasks.map((t: any) => t.task_id)).toEqual([first, second]);
    expect(res.body.tasks[0]).toMatchObject({
      task_id: first, workflow_id: first, query: '', status: 'COMPLETED', result: 'answer 10', total_tokens: 30, agents_used: 1, tools_invoked: 0,
    });
    expect(res.body.tasks[0].total_cost_usd).toBeCloseTo(0.01, 10);
    expect(Date.parse(res.body.tasks[0].started_at)).not.toBeNaN();
    expect(Date.parse(res.body.tasks[0].completed_at)).not.toBeNaN();
  });

  it('GET /sessions/{id}/events: one turn per task with its events, paged, payloads on request', async () => {
    const res = await call('GET', `/api/v1/sessions/${SID}/events`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ session_id: SID, count: 2 });
    const [t1, t2] = res.body.turns;
    expect(t1).toMatchObject({ turn: 1, task_id: first, user_query: '', final_output: 'answer 10', metadata: { tokens_used: 30, agents_involved: ['planner'] } });
    expect(t2).toMatchObject({ turn: 2, task_id: second, final_output: 'answer 20' });
    expect(Date.parse(t1.timestamp)).not.toBeNaN();
    expect(typeof t1.metadata.execution_time_ms).toBe('number');
    const types = t1.events.map((e: any) => e.type);
    expect(types[0]).toBe('WORKFLOW_STARTED');
    expect(types).toContain('LLM_OUTPUT');
    expect(types.at(-1)).toBe('STREAM_END');
    expect(t1.events.every((e: any) => e.workflow_id === first && !('payload' in e) && e.timestamp)).toBe(true);

    const paged = await call('GET', `/api/v1/sessions/${SID}/events?limit=1&offset=1&include_payload=true`);
    expect(paged.body.count).toBe(2);
    expect(paged.body.turns.map((t: any) => t.turn)).toEqual([2]);
    expect(paged.body.turns[0].events.find((e: any) => e.type === 'LLM_OUTPUT').payload).toEqual({ tokens: 20 });
  });

  it('PATCH renames: control characters trimmed, at most 60 characters, 400 otherwise', async () => {
    const ok = await call('PATCH', `/api/v1/sessions/${SID}`, { title: '  Trip\u0007 plan\n\u200B ' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ session_id: SID, title: 'Trip plan' });
    expect((await call('GET', `/api/v1/sessions/${SID}`)).body.title).toBe('Trip plan');
    expect((await call('PATCH', `/api/v1/sessions/${SID}`, { title: 'é'.repeat(60) })).status).toBe(200);
    expect((await call('PATCH', `/api/v1/sessions/${SID}`, { title: 'x'.repeat(61) })).status).toBe(400);
    expect((await call('PATCH', `/api/v1/sessions/${SID}`, { title: '\n\t\u0000' })).status).toBe(400);
    expect((await call('PATCH', `/api/v1/sessions/${SID}`, {})).status).toBe(400);
    expect((await call('PATCH', '/api/v1/sessions/sess-missing', { title: 'x' })).status).toBe(404);
  });

  it('another tenant\'s session is a 404 everywhere; scopes are enforced', async () => {
    const other = await newTenant(tdb.db, ['admin']);
    for (const [m, p] of [['GET', ''], ['GET', '/history'], ['GET', '/events'], ['PATCH', ''], ['DELETE', '']] as const) {
      const res = await call(m, `/api/v1/sessions/${SID}${p}`, m === 'PATCH' ? { title: 'mine' } : undefined, other.key);
      expect(res.status, `${m} ${p}`).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    expect((await call('GET', '/api/v1/sessions', undefined, other.key)).body).toEqual({ sessions: [], total_count: 0 });
    const reader = await createApiKey(tdb.db, { tenantId: owner.tenantId, userId: 'r', name: 'r', scopes: ['sessions:read'], expiresAt: null });
    expect((await call('GET', `/api/v1/sessions/${SID}`, undefined, reader.key)).status).toBe(200);
    expect((await call('PATCH', `/api/v1/sessions/${SID}`, { title: 'x' }, reader.key)).status).toBe(403);
    expect((await call('DELETE', `/api/v1/sessions/${SID}`, undefined, reader.key)).status).toBe(403);
    const tasksOnly = await createApiKey(tdb.db, { tenantId: owner.tenantId, userId: 't', name: 't', scopes: ['tasks:read'], expiresAt: null });
    expect((await call('GET', '/api/v1/sessions', undefined, tasksOnly.key)).status).toBe(403);
    expect((await call('GET', '/api/v1/sessions/bad%20id')).status).toBe(400);
  });

  it('DELETE is a soft delete: 204, again 204, then 404 for reads; unknown is 404', async () => {
    await runTask('sess-doomed', 1);
    expect((await call('DELETE', '/api/v1/sessions/sess-doomed')).status).toBe(204);
    expect((await call('DELETE', '/api/v1/sessions/sess-doomed')).status).toBe(204);
    expect((await call('GET', '/api/v1/sessions/sess-doomed')).status).toBe(404);
    expect((await call('GET', '/api/v1/sessions/sess-doomed/history')).status).toBe(404);
    expect((await call('PATCH', '/api/v1/sessions/sess-doomed', { title: 'x' })).status).toBe(404);
    expect((await call('GET', '/api/v1/sessions')).body.sessions.map((s: any) => s.session_id)).not.toContain('sess-doomed');
    expect((await call('DELETE', '/api/v1/sessions/sess-never-existed')).status).toBe(404);
    // the tasks stay readable
    const tasks = await call('GET', '/api/v1/tasks?session_id=sess-doomed');
    expect(tasks.body.tasks).toHaveLength(1);
  });
});
