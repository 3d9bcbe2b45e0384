// The task API over HTTP against a real server and database: every route, error code and limit
// of PRODUCT.md §3 that the core owns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { newTenant, startTestServer, waitForTask, type TestServer } from '../helpers/server.js';
import { tasksInsertMany } from '../../src/storage/queries/tasks.js';
import { newTaskId } from '../../src/domain/ids.js';

let tdb: TestDb;
let server: TestServer;
let other: { tenantId: string; key: string };

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db, { TASKGATE_BODY_LIMIT_BYTES: '65536', TASKGATE_MAX_OBJECT_BYTES: '4096' });
  other = await newTenant(tdb.db);
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
});

const order = { orderId: 'ORD-1', items: [{ id: 'A', quantity: 2, price: 10.99 }, { id: 'B', quantity: 1, price: 24.99 }] };

describe('POST /api/v1/tasks', () => {
  it('accepts a definition task: 200 with the documented shape and headers', async () => {
    const res = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'calculate-order-total', input: order });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ task_id: expect.stringMatching(/^task_/), workflow_id: res.body.task_id, session_id: null, status: 'QUEUED', message: expect.any(String), created_at: expect.any(String) });
    expect(res.headers.get('x-workflow-id')).toBe(res.body.task_id);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const t = await waitForTask(server, res.body.task_id);
    expect(t).toMatchObject({ status: 'COMPLETED', output: { subtotal: 46.97, tax: 3.76, total: 50.73 }, response: { total: 50.73 }, task_definition_id: 'calculate-order-total', query: '', attempts: 1 });
    expect(t.execution_metadata).toMatchObject({ start_time: expect.any(String), end_time: expect.any(String), duration_ms: expect.any(Number), worker_id: expect.any(String) });
  });

  it('accepts the aliases type/args and taskDefinitionId + seed 003 executionConfig', async () => {
    const a = await server.call('POST', '/api/v1/tasks', { type: 'data_analysis', args: { data_source: 'x,y\n1,2\n2,4', analysis_type: 'summary' }, priority: 'HIGH' });
    expect(a.status).toBe(200);
    const b = await server.call('POST', '/api/v1/tasks', { taskDefinitionId: 'noop', workflowInstanceId: 'wf-1', input: {}, executionConfig: { timeout: 5000, retryPolicy: { maxRetries: 0, retryInterval: 10, backoffMultiplier: 1 } } });
    expect(b.status).toBe(200);
    const ta = await waitForTask(server, a.body.task_id);
    expect(ta.priority).toBe('high');
    expect(ta.output.statistics.y.mean).toBe(3);
    const tb = await waitForTask(server, b.body.task_id);
    expect(tb).toMatchObject({ max_attempts: 1, workflow_instance_id: 'wf-1' });
    // a misspelt executionConfig field is a 400, as anywhere else, not silently the default
    const typo = await server.call('POST', '/api/v1/tasks', { taskDefinitionId: 'noop', input: {}, executionConfig: { timeOut: 5000 } });
    expect(typo.status).toBe(400);
    expect(typo.body.error.message).toBe("body.executionConfig has unknown property 'timeOut'");
  });

  it('stores agent tasks with a session and their options', async () => {
    const res = await server.call('POST', '/api/v1/tasks', { query: 'hello', mode: 'simple', model_tier: 'small', context: { model_tier: 'large', x: 1 } });
    expect([200, 422]).toContain(res.status); // 422 LLM_NOT_CONFIGURED when no provider is set up
    if (res.status === 422) {
      expect(res.body.error.code).toBe('LLM_NOT_CONFIGURED');
      return;
    }
    expect(res.body.session_id).toMatch(/^sess_/);
    expect(res.headers.get('x-session-id')).toBe(res.body.session_id);
    const t = (await server.call('GET', `/api/v1/tasks/${res.body.task_id}`)).body;
    expect(t).toMatchObject({ query: 'hello', mode: 'simple', task_definition_id: null });
  });

  it('rejects bad bodies with 400 VALIDATION_ERROR naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{}, /query is required/],
      [{ query: '' }, /query/],
      [{ query: 'x'.repeat(10_001) }, /query/],
      [{ query: 'x', task_definition_id: 'noop' }, /either/],
      [{ task_definition_id: 'noop', input: {}, unknown_field: 1 }, /unknown_field/],
      [{ task_definition_id: 'noop', input: {}, priority: 'critical' }, /priority/],
      [{ task_definition_id: 'noop', input: {}, max_iterations: 51 }, /max_iterations/],
      [{ task_definition_id: 'noop', input: {}, run_at: 'tomorrow' }, /run_at/],
      [{ task_definition_id: 'bad id!' }, /task_definition_id/],
      [{ query: 'x', context: { disable_ai: true }, model_tier: 'small' }, /disable_ai/],
      [{ task_definition_id: 'noop', input: {}, context: { big: 'x'.repeat(5000) } }, /context/],
      // a JSON body is taken as sent: wrong types are refused, never converted
      [{ task_definition_id: 'noop', input: {}, timeout_ms: '5000' }, /timeout_ms/],
      [{ task_definition_id: 'noop', input: {}, priority: 3 }, /priority/],
      [{ query: 'x', max_iterations: '5' }, /max_iterations/],
      [{ query: 'x', enable_verification: 'true' }, /enable_verification/],
      [[1, 2], /body/],
      // tags are what the list filters on: one the index could not hold is refused, not dropped
      [{ task_definition_id: 'noop', input: {}, metadata: { tags: [1] } }, /metadata\.tags/],
      [{ task_definition_id: 'noop', input: {}, metadata: { tags: 'urgent' } }, /metadata\.tags/],
      [{ task_definition_id: 'noop', input: {}, metadata: { tags: ['x'.repeat(129)] } }, /metadata\.tags/],
      [{ task_definition_id: 'noop', input: {}, metadata: { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) } }, /metadata\.tags/],
    ];
    for (const [body, re] of cases) {
      const res = await server.call('POST', '/api/v1/tasks', body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      expect(res.body.error.message).toMatch(re);
      expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
    }
  });

  it('names the allowed values of every enum field in its 400', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ query: 'x', mode: 'turbo' }, 'mode must be one of simple, standard, complex, supervisor'],
      [{ query: 'x', model_tier: 'huge' }, 'model_tier must be one of small, medium, large'],
      [{ query: 'x', research_strategy: 'shallow' }, 'research_strategy must be one of quick, standard, deep, academic'],
      [{ task_definition_id: 'noop', input: {}, priority: 'critical' }, 'priority must be one of low, medium, high, urgent'],
      // (words the schema's pattern refused first, naming the pattern)
      [{ task_definition_id: 'noop', input: {}, priority: 'very_urgent' }, 'priority must be one of low, medium, high, urgent'],
      [{ task_definition_id: 'noop', input: {}, priority: 'URGENT!' }, 'priority must be one of low, medium, high, urgent'],
    ];
    for (const [body, message] of cases) {
      const res = await server.call('POST', '/api/v1/tasks', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message });
      expect(res.body.error.details.allowed_values, message).toEqual(message.replace(/^.* must be one of /, '').split(', '));
    }
    const spaced = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, priority: ' Urgent ' });
    expect(spaced.status, spaced.text).toBe(200);
    expect((await server.call('GET', `/api/v1/tasks/${spaced.body.task_id}`)).body.priority).toBe('urgent');
    // the list's status filter (checked by the route, not a schema) alike
    const status = await server.call('GET', '/api/v1/tasks?status=COMPLETED,DONE');
    expect(status.status).toBe(400);
    expect(status.body.error).toMatchObject({
      message: 'status must be one of QUEUED, RUNNING, PAUSED, COMPLETED, FAILED, CANCELLED, TIMEOUT (got DONE)',
      details: { path: 'status', allowed_values: ['QUEUED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT'] },
    });
    const tier = await server.call('POST', '/api/v1/tasks', { query: 'x', model_tier: 'huge' });
    expect(tier.body.error.details).toEqual({ location: 'body', path: 'model_tier', reason: 'must be one of small, medium, large', allowed_values: ['small', 'medium', 'large'] });
    // the same on the other routes whose schemas hold such fields
    const def = await server.call('PUT', '/api/v1/definitions/enum-check', { kind: 'sms', name: 'x' });
    expect(def.status).toBe(400);
    expect(def.body.error.message).toBe('kind must be one of http, agent, approval');
  });

  it('rejects input that fails the definition schema with 422 and the path', async () => {
    const res = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'calculate-order-total', input: { orderId: 'x', items: [{ id: 'a', quantity: 'two', price: 1 }] } });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'UNPROCESSABLE', details: { path: '/items/0/quantity' } });
    const missing = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'data_analysis', input: { analysis_type: 'summary' } });
    expect(missing.status).toBe(422);
    expect(missing.body.error.details.path).toBe('/data_source');
    // a format the definition cannot render is refused at submit, not accepted and failed
    const pdf = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'data_analysis', input: { data_source: 'a,b\n1,2', analysis_type: 'summary', output_format: 'pdf' } });
    expect(pdf.status).toBe(422);
    expect(pdf.body.error.details.path).toBe('/output_format');
  });

  it('analyses inline rows without a data_source (PRODUCT: over inline rows or CSV)', async () => {
    const id = (await server.call('POST', '/api/v1/tasks', {
      task_definition_id: 'data_analysis', input: { data: [{ a: 1, b: 2 }, { a: 2, b: 4 }, { a: 3, b: 6 }], analysis_type: 'trend', parameters: { x: 'a', y: 'b' } },
    })).body.task_id as string;
    const done = await waitForTask(server, id);
    expect(done.status).toBe('COMPLETED');
    expect(done.output.trend.slope).toBe(2);
    const headed = await waitForTask(server, (await server.call('POST', '/api/v1/tasks', {
      task_definition_id: 'data_analysis', input: { data: [['a', 'b'], [1, 2], [2, 4]], analysis_type: 'trend', parameters: { x: 'a', y: 'b' } },
    })).body.task_id);
    expect([headed.status, headed.output?.trend?.slope]).toEqual(['COMPLETED', 2]);
    // a stray row (null, a scalar, an array among objects) is a 422 at submit, not a failed task
    for (const data of [[['a'], 5, null], [{ a: 1 }, 'x'], [{ a: 1 }, ['a']]]) {
      const res = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'data_analysis', input: { data, analysis_type: 'summary' } });
      expect(res.status, JSON.stringify(data)).toBe(422);
    }
  });

  it('answers 404 for an unknown definition', async () => {
    const res = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'nope', input: {} });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
  });

  it('415 for non-JSON, 400 for invalid or too-deep JSON, 413 for oversized bodies', async () => {
    const text = await server.call('POST', '/api/v1/tasks', 'query=x', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const bad = await server.call('POST', '/api/v1/tasks', '{"query":', {});
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_ERROR');
    const deep = await server.call('POST', '/api/v1/tasks', '{"query":"x","context":' + '{"a":'.repeat(70) + '1' + '}'.repeat(70) + '}');
    expect(deep.status).toBe(400);
    expect(deep.body.error.message).toMatch(/nesting/);
    const big = await server.call('POST', '/api/v1/tasks', { query: 'x', context: { blob: 'x'.repeat(70_000) } });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('POST /api/v1/tasks/stream answers 201 with the stream URL and a Link header', async () => {
    const res = await server.call('POST', '/api/v1/tasks/stream', { task_definition_id: 'noop', input: {} });
    expect(res.status).toBe(201);
    expect(res.body.stream_url).toBe(`/api/v1/stream/sse?workflow_id=${res.body.task_id}`);
    expect(res.headers.get('link')).toBe(`<${res.body.stream_url}>; rel=stream`);
  });
});

describe('GET routes', () => {
  it('400 for ids that do not match the id pattern; 404 for unknown and foreign tasks', async () => {
    expect((await server.call('GET', '/api/v1/tasks/has%20space')).status).toBe(400);
    expect((await server.call('GET', `/api/v1/tasks/${'x'.repeat(129)}`)).status).toBe(400);
    expect((await server.call('GET', '/api/v1/tasks/task_unknown')).status).toBe(404);
    const mine = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} });
    const foreign = await server.call('GET', `/api/v1/tasks/${mine.body.task_id}`, undefined, { key: other.key });
    expect(foreign.status).toBe(404);
    for (const path of ['events', 'control-state', 'stream']) {
      expect((await server.call('GET', `/api/v1/tasks/${mine.body.task_id}/${path}`, undefined, { key: other.key })).status, path).toBe(404);
    }
    for (const action of ['cancel', 'pause', 'resume']) {
      expect((await server.call('POST', `/api/v1/tasks/${mine.body.task_id}/${action}`, {}, { key: other.key })).status, action).toBe(404);
    }
    const list = await server.call('GET', '/api/v1/tasks', undefined, { key: other.key });
    expect(list.body.tasks.map((t: any) => t.task_id)).not.toContain(mine.body.task_id);
  });

  it('lists with filters and pagination, newest first', async () => {
    const t = await newTenant(tdb.db);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'sleep', input: { ms: 0 }, metadata: { tags: [i % 2 ? 'odd' : 'even'] }, workflow_instance_id: 'wf-list' }, { key: t.key });
      ids.push(r.body.task_id);
    }
    await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} }, { key: t.key });
    for (const id of ids) await waitForTask(server, id, undefined, { key: t.key });
    const page1 = await server.call('GET', '/api/v1/tasks?limit=2&task_definition_id=sleep', undefined, { key: t.key });
    expect(page1.body).toMatchObject({ total_count: 5, limit: 2, offset: 0 });
    expect(page1.body.tasks.map((x: any) => x.task_id)).toEqual([ids[4], ids[3]]);
    expect(page1.body.tasks[0]).toEqual({
      task_id: ids[4], query: '', status: 'COMPLETED', mode: null, priority: 'medium', task_definition_id: 'sleep', session_id: null,
      created_at: expect.any(String), completed_at: expect.any(String), total_token_usage: { total_tokens: 0, cost_usd: 0, prompt_tokens: 0, completion_tokens: 0 },
    });
    const page3 = await server.call('GET', '/api/v1/tasks?limit=2&page=3&type=sleep', undefined, { key: t.key });
    expect(page3.body.tasks.map((x: any) => x.task_id)).toEqual([ids[0]]);
    expect(page3.body.offset).toBe(4);
    const odd = await server.call('GET', '/api/v1/tasks?tag=odd', undefined, { key: t.key });
    expect(odd.body.total_count).toBe(2);
    const byStatus = await server.call('GET', '/api/v1/tasks?status=completed,canceled&workflow_instance_id=wf-list', undefined, { key: t.key });
    expect(byStatus.body.total_count).toBe(5);
    expect((await server.call('GET', '/api/v1/tasks?status=DONE', undefined, { key: t.key })).status).toBe(400);
    expect((await server.call('GET', '/api/v1/tasks?limit=101', undefined, { key: t.key })).status).toBe(400);
    expect((await server.call('GET', '/api/v1/tasks?limit=0', undefined, { key: t.key })).status).toBe(400);
    expect((await server.call('GET', '/api/v1/tasks?offset=-1', undefined, { key: t.key })).status).toBe(400);
    expect((await server.call('GET', '/api/v1/tasks?bogus=1', undefined, { key: t.key })).status).toBe(400);
    // a page is held to the offset's bound: page 100,000 of 100 started at offset 9,999,900
    expect((await server.call('GET', '/api/v1/tasks?offset=1000001', undefined, { key: t.key })).status).toBe(400);
    const deep = await server.call('GET', '/api/v1/tasks?page=100000&limit=100', undefined, { key: t.key });
    expect(deep.status).toBe(400);
    expect(deep.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { path: 'page' } });
    expect((await server.call('GET', '/api/v1/tasks?page=10001&limit=100', undefined, { key: t.key })).body).toMatchObject({ tasks: [], offset: 1_000_000 });
  });

  it("filters by seed 003's ?workflowInstanceId= (the camelCase alias of workflow_instance_id)", async () => {
    const t = await newTenant(tdb.db);
    const mine = await server.submit({ taskDefinitionId: 'noop', workflowInstanceId: 'order-workflow-789', input: {} }, { key: t.key });
    await server.submit({ taskDefinitionId: 'noop', workflowInstanceId: 'order-workflow-790', input: {} }, { key: t.key });
    const res = await server.call('GET', '/api/v1/tasks?workflowInstanceId=order-workflow-789', undefined, { key: t.key });
    expect(res.status, res.text).toBe(200);
    expect(res.body.tasks.map((x: any) => x.task_id)).toEqual([mine]);
    expect(res.body.total_count).toBe(1);
    const same = await server.call('GET', '/api/v1/tasks?workflowInstanceId=order-workflow-789&workflow_instance_id=order-workflow-789', undefined, { key: t.key });
    expect(same.body.tasks.map((x: any) => x.task_id)).toEqual([mine]);
    const both = await server.call('GET', '/api/v1/tasks?workflowInstanceId=order-workflow-789&workflow_instance_id=order-workflow-790', undefined, { key: t.key });
    expect(both.status).toBe(400);
    expect(both.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(/workflow_instance_id.*workflowInstanceId/) });
    expect((await server.call('GET', '/api/v1/tasks?workflowInstanceId=bad%20id!', undefined, { key: t.key })).status).toBe(400);
    const kinds = await server.call('GET', '/api/v1/tasks?type=noop&task_definition_id=sleep', undefined, { key: t.key });
    expect(kinds.status).toBe(400);
    expect(kinds.body.error.details).toMatchObject({ path: 'type', reason: 'conflicts with task_definition_id' });
  });

  it('refuses a field and its alias with different values in a submit (the loser was silently ignored)', async () => {
    const t = await newTenant(tdb.db);
    const kinds = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', type: 'sleep', input: {} }, { key: t.key });
    expect(kinds.status).toBe(400);
    expect(kinds.body.error).toMatchObject({
      code: 'VALIDATION_ERROR', message: 'send task_definition_id or its aliases taskDefinitionId, type, not several with different values',
      details: { path: 'type', reason: 'conflicts with task_definition_id' },
    });
    const camel = await server.call('POST', '/api/v1/tasks', { taskDefinitionId: 'calculate-order-total', type: 'noop', input: {} }, { key: t.key });
    expect(camel.body.error.details).toMatchObject({ path: 'type', reason: 'conflicts with taskDefinitionId' });
    const wf = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, workflow_instance_id: 'a', workflowInstanceId: 'b' }, { key: t.key });
    expect(wf.status).toBe(400);
    expect(wf.body.error.details).toMatchObject({ path: 'workflowInstanceId', reason: 'conflicts with workflow_instance_id' });
    // the same value under both names is one value
    const same = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', type: 'noop', input: {}, workflow_instance_id: 'a', workflowInstanceId: 'a' }, { key: t.key });
    expect(same.status).toBe(200);
    expect((await server.call('GET', `/api/v1/tasks/${same.body.task_id}`, undefined, { key: t.key })).body).toMatchObject({ task_definition_id: 'noop', workflow_instance_id: 'a' });
  });

  it('refuses input (or args) beside a query: an agent task takes query and context (the input was dropped without a word)', async () => {
    const t = await newTenant(tdb.db);
    for (const field of ['input', 'args']) {
      const res = await server.call('POST', '/api/v1/tasks', { query: 'hi', [field]: { a: 1 } }, { key: t.key });
      expect([res.status, res.body.error?.details], field).toEqual([400, { path: field, reason: 'not allowed with query' }]);
    }
  });

  it('counts exactly up to offset + 1,000 matching rows, and reports that bound above it', async () => {
    const t = await newTenant(tdb.db);
    // rows straight into the table (delayed: no worker touches them); 1,205 match the filter
    const tasks = Array.from({ length: 1_205 }, () => ({
      id: newTaskId(), tenant_id: t.tenantId, user_id: 'u', session_id: null, kind: 'definition' as const, task_definition_id: 'noop', query: '',
      input: {}, context: {}, options: {}, mode: null, priority: 2, max_attempts: 1, retry_interval_ms: 1000, backoff_multiplier: 2,
      timeout_ms: 60_000, run_at: new Date(Date.now() + 3_600_000), metadata: {}, tags: [], workflow_instance_id: null,
    }));
    for (let i = 0; i < tasks.length; i += 256) await tasksInsertMany(tdb.db, tasks.slice(i, i + 256));
    const list = async (q: string) => (await server.call('GET', `/api/v1/tasks?type=noop&${q}`, undefined, { key: t.key })).body;
    expect(await list('limit=10')).toMatchObject({ total_count: 1_000, offset: 0 });
    expect(await list('limit=10&offset=100')).toMatchObject({ total_count: 1_100 });
    expect(await list('limit=10&offset=300')).toMatchObject({ total_count: 1_205 });
    const last = await list('limit=10&offset=1200');
    expect(last).toMatchObject({ total_count: 1_205 });
    expect(last.tasks).toHaveLength(5);
    expect(await list('limit=10&offset=5000')).toMatchObject({ total_count: 1_205, tasks: [] });
    // one status (counted in list order on its index) and several (counted unordered) alike
    expect(await list('limit=10&status=queued')).toMatchObject({ total_count: 1_000 });
    expect(await list('limit=10&offset=300&status=queued')).toMatchObject({ total_count: 1_205 });
    expect(await list('limit=10&offset=300&status=queued,running')).toMatchObject({ total_count: 1_205 });
    expect(await list('limit=10&status=failed')).toMatchObject({ total_count: 0, tasks: [] });
    const newest = await list('limit=3&status=queued');
    expect(newest.tasks.map((x: any) => x.task_id)).toEqual((await list('limit=3')).tasks.map((x: any) => x.task_id));
  });

  it('pages events with limit/offset', async () => {
    const r = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'sleep', input: { ms: 0, steps: 3 } });
    await waitForTask(server, r.body.task_id);
    const all = await server.call('GET', `/api/v1/tasks/${r.body.task_id}/events`);
    expect(all.body.count).toBe(all.body.events.length);
    expect(all.body.events.map((e: any) => e.type)).toEqual(['WORKFLOW_STARTED', 'PROGRESS', 'PROGRESS', 'PROGRESS', 'WORKFLOW_COMPLETED', 'STREAM_END']);
    expect(all.body.events[0]).toMatchObject({ workflow_id: r.body.task_id, seq: 1, timestamp: expect.any(String) });
    const page = await server.call('GET', `/api/v1/tasks/${r.body.task_id}/events?limit=2&offset=2`);
    expect(page.body.events.map((e: any) => e.seq)).toEqual([3, 4]);
    expect((await server.call('GET', `/api/v1/tasks/${r.body.task_id}/events?limit=201`)).status).toBe(400);
  });

  it('redirects /tasks/{id}/stream to the SSE URL with 307', async () => {
    const r = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} });
    const res = await server.call('GET', `/api/v1/tasks/${r.body.task_id}/stream?types=PROGRESS`);
    expect(res.status).toBe(307);
    expect(res.headers.get('location')).toBe(`/api/v1/stream/sse?workflow_id=${r.body.task_id}&types=PROGRESS`);
  });

  it('serves definitions with pagination and search', async () => {
    const list = await server.call('GET', '/api/v1/definitions?limit=2');
    expect(list.body.pagination).toMatchObject({ page: 1, limit: 2 });
    expect(list.body.pagination.total_items).toBeGreaterThanOrEqual(5);
    expect(list.body.items).toHaveLength(2);
    const search = await server.call('GET', '/api/v1/definitions?search=order');
    expect(search.body.items.map((d: any) => d.id)).toContain('calculate-order-total');
    const one = await server.call('GET', '/api/v1/definitions/calculate-order-total');
    expect(one.body).toMatchObject({ id: 'calculate-order-total', version: '1.2.0', input_schema: { required: ['orderId', 'items'] }, output_schema: { required: ['subtotal', 'tax', 'total'] } });
    expect((await server.call('GET', '/api/v1/definitions/nope')).status).toBe(404);
  });
});

describe('control routes', () => {
  it('cancels queued tasks at once and refuses finished ones with 409', async () => {
    const r = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, delay_ms: 60_000 });
    const c = await server.call('POST', `/api/v1/tasks/${r.body.task_id}/cancel`, { reason: 'no longer needed' });
    expect(c.status).toBe(202);
    expect(c.body).toEqual({ success: true, message: expect.any(String), task_id: r.body.task_id, status: 'CANCELLED' });
    const again = await server.call('POST', `/api/v1/tasks/${r.body.task_id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('TASK_ALREADY_FINISHED');
    const types = (await server.call('GET', `/api/v1/tasks/${r.body.task_id}/events`)).body.events.map((e: any) => e.type);
    expect(types).toEqual(['WORKFLOW_CANCELLED', 'STREAM_END']);
  });

  it('a paused task that is cancelled is not paused in its control state: the pause fields go, the cancel ones come', async () => {
    const { task_id: id } = (await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, delay_ms: 60_000 })).body;
    expect((await server.call('POST', `/api/v1/tasks/${id}/pause`, { reason: 'hold on' })).body.status).toBe('PAUSED');
    expect((await server.call('POST', `/api/v1/tasks/${id}/cancel`, { reason: 'not needed' })).status).toBe(202);
    const cs = (await server.call('GET', `/api/v1/tasks/${id}/control-state`)).body;
    expect(cs).toEqual({ is_paused: false, is_cancelled: true, paused_at: null, pause_reason: null, paused_by: null, cancel_reason: 'not needed', cancelled_by: 'admin', awaiting_approval: false });
  });

  it('pauses and resumes a queued task; wrong states are 409 INVALID_TASK_STATE', async () => {
    const r = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, delay_ms: 200 });
    const id = r.body.task_id;
    expect((await server.call('POST', `/api/v1/tasks/${id}/resume`)).status).toBe(409);
    const p = await server.call('POST', `/api/v1/tasks/${id}/pause`, { reason: 'wait' });
    expect(p.body.status).toBe('PAUSED');
    const cs = (await server.call('GET', `/api/v1/tasks/${id}/control-state`)).body;
    expect(cs).toEqual({ is_paused: true, is_cancelled: false, paused_at: expect.any(String), pause_reason: 'wait', paused_by: 'admin', cancel_reason: null, cancelled_by: null, awaiting_approval: false });
    expect((await server.call('POST', `/api/v1/tasks/${id}/resume`)).status).toBe(202);
    const t = await waitForTask(server, id);
    expect(t.status).toBe('COMPLETED');
    expect((await server.call('GET', `/api/v1/tasks/${id}/control-state`)).body).toMatchObject({ is_paused: false, paused_at: null, pause_reason: null, paused_by: null });
    const bad = await server.call('POST', `/api/v1/tasks/${id}/pause`);
    expect(bad.status).toBe(409);
    expect(bad.body.error.code).toBe('INVALID_TASK_STATE');
    expect((await server.call('POST', `/api/v1/tasks/${id}/cancel`, { force: 'yes' })).status).toBe(400);
    // force is cancel's alone: on pause and resume it was validated and then ignored
    for (const action of ['pause', 'resume']) {
      const res = await server.call('POST', `/api/v1/tasks/${id}/${action}`, { force: true });
      expect([res.status, res.body.error?.message], action).toEqual([400, "body has unknown property 'force'"]);
    }
  });

  it('a delayed task paused and resumed before its run_at keeps its delay', async () => {
    const r = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, delay_ms: 60_000 });
    const id = r.body.task_id;
    const runAt = (await server.call('GET', `/api/v1/tasks/${id}`)).body.run_at;
    expect(new Date(runAt).getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect((await server.call('POST', `/api/v1/tasks/${id}/pause`)).body.status).toBe('PAUSED');
    const resumed = await server.call('POST', `/api/v1/tasks/${id}/resume`);
    expect(resumed.body.status).toBe('QUEUED');
    const t = (await server.call('GET', `/api/v1/tasks/${id}`)).body;
    expect([t.status, t.run_at]).toEqual(['QUEUED', runAt]);
    expect((await server.call('POST', `/api/v1/tasks/${id}/cancel`)).body.status).toBe('CANCELLED');
  });
});

describe('service routes and envelopes', () => {
  it('TASKGATE_METRICS_PUBLIC=true serves /metrics without credentials (a scraper on a private network)', async () => {
    const open = await startTestServer(tdb.db, { TASKGATE_METRICS_PUBLIC: 'true', TASKGATE_ROLE: 'api' });
    try {
      const m = await open.call('GET', '/metrics', undefined, { key: null });
      expect([m.status, m.text.includes('taskgate_http_requests_total')]).toEqual([200, true]);
    } finally {
      await open.close();
    }
  });

  it('health, readiness and OpenAPI need no auth; metrics need the admin scope', async () => {
    const h = await server.call('GET', '/health', undefined, { key: null });
    expect(h.body).toMatchObject({ status: 'healthy', version: expect.any(String), time: expect.any(String) });
    const r = await server.call('GET', '/readiness', undefined, { key: null });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('ready');
    expect((await server.call('GET', '/metrics', undefined, { key: null })).status).toBe(401);
    const reader = await newTenant(tdb.db, ['tasks:read', 'tasks:list']);
    expect((await server.call('GET', '/metrics', undefined, { key: reader.key })).status).toBe(403);
    const m = await server.call('GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.text).toContain('taskgate_http_requests_total');
    // the worker's counters: tasks above completed; the active-attempts gauge is read at scrape time
    expect(m.text).toMatch(/^taskgate_task_outcomes_total\{status="COMPLETED"\} [1-9]\d*$/m);
    expect(m.text).toMatch(/^taskgate_tasks_claimed_total [1-9]\d*$/m);
    expect(m.text).toMatch(/^taskgate_worker_active_attempts \d+$/m);
    const o = await server.call('GET', '/openapi.json', undefined, { key: null });
    expect(o.body.openapi).toBe('3.1.0');
    expect(Object.keys(o.body.paths)).toEqual(expect.arrayContaining(['/api/v1/tasks', '/api/v1/tasks/{id}', '/api/v1/tasks/{id}/cancel', '/api/v1/definitions']));
    // the streaming routes too (@fastify/websocket hides WebSocket routes unless told otherwise)
    expect(Object.keys(o.body.paths)).toEqual(expect.arrayContaining(['/api/v1/stream/sse', '/api/v1/stream/ws']));
    expect(o.body.paths['/api/v1/stream/ws'].get.responses['101']).toBeDefined();
    const docs = await fetch(server.url + '/docs/');
    expect(docs.status).toBe(200);
    // swagger-ui's old index page leads to the UI whatever the URL's tail (it redirected to itself)
    for (const path of ['/docs/static/index.html', '/docs/static/index.html/', '/docs/static/index.html?x=1']) {
      const old = await fetch(server.url + path, { redirect: 'manual' });
      expect([old.status, old.headers.get('location')]).toEqual([302, '/docs/']);
    }
  });

  it('401 with WWW-Authenticate without or with a bad key', async () => {
    for (const key of [null, 'sk_nope_nope', 'x'.repeat(600)]) {
      const res = await server.call('GET', '/api/v1/tasks', undefined, { key });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    const bearer = await fetch(server.url + '/api/v1/tasks', { headers: { authorization: 'Bearer sk_test_admin_key_0123456789abcdef' } });
    expect(bearer.status).toBe(200);
  });

  it('403 FORBIDDEN names the missing scope', async () => {
    const reader = await newTenant(tdb.db, ['tasks:read']);
    const res = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} }, { key: reader.key });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining('tasks:execute') });
  });

  it('unknown routes 404 and wrong methods 405, in the envelope; request ids echo', async () => {
    const nf = await server.call('GET', '/api/v1/nope');
    expect(nf.status).toBe(404);
    expect(nf.body.error.code).toBe('NOT_FOUND');
    const na = await server.call('PUT', '/api/v1/tasks', {});
    expect(na.status).toBe(405);
    expect(na.body.error.code).toBe('METHOD_NOT_ALLOWED');
    expect(na.headers.get('allow')).toContain('POST');
    const withId = await server.call('GET', '/health', undefined, { headers: { 'x-request-id': 'my-req-1', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    expect(withId.headers.get('x-request-id')).toBe('my-req-1');
    expect(withId.headers.get('x-trace-id')).toBe('0af7651916cd43dd8448eb211c80319c');
  });
});
