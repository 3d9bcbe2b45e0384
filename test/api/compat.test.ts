// Seed 004's task endpoint shapes, translated onto the canonical routes.
import { describe, expect, it } from 'vitest';
import { newTenant, startTestServer, until, useTestServer, waitForTask } from '../helpers/server.js';
import type { TaskDefinition } from '../../src/executors/types.js';
import { gates } from '../streaming/helpers.js';

/** Reports `done` of 500 steps as PROGRESS events (more than a page of events), then waits at gate `<key>`. */
const stepper: TaskDefinition = {
  id: 'test-compat-steps', name: 'steps', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { key: { type: 'string' }, done: { type: 'integer' } }, required: ['key', 'done'] },
  output_schema: { type: 'object' },
  async handler(input: { key: string; done: number }, ctx) {
    for (let step = 1; step <= input.done; step++) await ctx.progress(`step ${step}`, { step, steps: 500 });
    await gates.wait(input.key);
    return {};
  },
};

const fixture = useTestServer({}, { definitions: [stepper] });

describe('seed 004 compatibility routes', () => {
  it('POST /api/v1/task → 201 accepted; GET shows progress and result', async () => {
    const res = await fixture.server.call('POST', '/api/v1/task', { type: 'data_analysis', args: { data_source: 'a,b\n1,2\n2,4', analysis_type: 'correlation' }, priority: 'high', metadata: { source: 'api', tags: ['x'] } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ task_id: expect.stringMatching(/^task_/), status: 'accepted', message: expect.any(String), timestamp: expect.any(String), estimated_completion: expect.any(String) });
    const id = res.body.task_id;
    let t: any;
    const deadline = Date.now() + 20_000;
    do {
      t = (await fixture.server.call('GET', `/api/v1/task/${id}`)).body;
      if (t.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 25));
    } while (Date.now() < deadline);
    expect(t).toMatchObject({ task_id: id, status: 'completed', progress: 100, error: null, created_at: expect.any(String), updated_at: expect.any(String) });
    expect(t.result.correlation.a.b).toBe(1);
    // estimated: created + 30 minutes, or + metadata.timeout seconds
    const created = Date.parse((await fixture.server.call('GET', `/api/v1/tasks/${id}`)).body.created_at);
    expect(Date.parse(res.body.estimated_completion) - created).toBe(30 * 60_000);
    const timed = await fixture.server.call('POST', '/api/v1/task', { type: 'noop', args: {}, metadata: { timeout: 90 } });
    const timedCreated = Date.parse((await fixture.server.call('GET', `/api/v1/tasks/${timed.body.task_id}`)).body.created_at);
    expect(Date.parse(timed.body.estimated_completion) - timedCreated).toBe(90_000);
  });

  it('GET reports the newest step progress, also past the first page of events', async () => {
    const res = await fixture.server.call('POST', '/api/v1/task', { type: stepper.id, args: { key: 'compat-steps', done: 260 } });
    expect(res.status).toBe(201);
    const id = res.body.task_id;
    await until(async () => (await fixture.server.call('GET', `/api/v1/task/${id}`)).body.progress === 52, 'progress 260 of 500 steps', 40_000); // 260 durable step writes: slow on a loaded machine
    const t = (await fixture.server.call('GET', `/api/v1/task/${id}`)).body;
    expect(t).toMatchObject({ status: 'processing', progress: 52 });
    // another tenant sees nothing of it
    const other = await newTenant(fixture.tdb.db, ['admin']);
    expect((await fixture.server.call('GET', `/api/v1/task/${id}`, undefined, { key: other.key })).status).toBe(404);
    gates.open('compat-steps');
    await waitForTask(fixture.server, id);
    expect((await fixture.server.call('GET', `/api/v1/task/${id}`)).body).toMatchObject({ status: 'completed', progress: 100 });
  });

  it('uses its own error shape: validation 400 with errors, unknown 404, bad id 400', async () => {
    const bad = await fixture.server.call('POST', '/api/v1/task', { type: 'data_analysis', args: { analysis_type: 'nope', data_source: 'x' } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ status: 'error', message: 'Request validation failed', errors: [expect.stringContaining('analysis_type')], timestamp: expect.any(String) });
    const extra = await fixture.server.call('POST', '/api/v1/task', { type: 'noop', args: { a: 1 }, bogus: true });
    expect(extra.status).toBe(400);
    expect(extra.body.status).toBe('error');
    // seed 004's schema types are checked as sent, not converted
    for (const [metadata, field] of [[{ user_id: 5 }, 'user_id'], [{ tags: [1] }, 'tags'], [{ timeout: '10' }, 'timeout']] as const) {
      const typed = await fixture.server.call('POST', '/api/v1/task', { type: 'noop', args: { a: 1 }, metadata });
      expect(typed.status, JSON.stringify(metadata)).toBe(400);
      expect(typed.body).toMatchObject({ status: 'error', message: 'Request validation failed', errors: [expect.stringContaining(field)] });
    }
    const missing = await fixture.server.call('GET', '/api/v1/task/task_missing');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ task_id: 'task_missing', status: 'error' });
    expect((await fixture.server.call('GET', '/api/v1/task/bad%20id')).status).toBe(400);
    const unauth = await fixture.server.call('GET', '/api/v1/task/task_x', undefined, { key: null });
    expect(unauth.status).toBe(401);
    expect(unauth.body.status).toBe('error');
  });

  it('names the allowed values of an enum field: priority, metadata.source', async () => {
    const res = await fixture.server.call('POST', '/api/v1/task', { type: 'noop', args: { a: 1 }, priority: 'critical' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      status: 'error', message: 'Request validation failed', errors: ['Validation error at priority: must be one of low, medium, high, urgent'], timestamp: expect.any(String),
    });
    const source = await fixture.server.call('POST', '/api/v1/task', { type: 'noop', args: { a: 1 }, metadata: { source: 'fax' } });
    expect(source.status).toBe(400);
    expect(source.body.errors).toEqual(['Validation error at metadata.source: must be one of web, api, mobile']);
  });

  it("an unknown type is a 400 validation error naming the tenant's types, as seed 004's schema enum answers it", async () => {
    const res = await fixture.server.call('POST', '/api/v1/task', { type: 'sms', args: { to: '+1555' } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ status: 'error', message: 'Request validation failed', errors: [expect.any(String)], timestamp: expect.any(String) });
    const [error] = res.body.errors as string[];
    expect(error).toMatch(/^Validation error at type: must be one of [a-z]/);
    for (const kind of ['email_draft', 'data_analysis', 'report_generation', 'content_review', 'noop', stepper.id]) expect(error).toContain(kind);
    // a tenant's own definition is one of its types; another tenant's is not
    const other = await newTenant(fixture.tdb.db, ['admin']);
    const put = await fixture.server.call('PUT', '/api/v1/definitions/sms', { kind: 'approval', name: 'SMS, approved by hand' }, { key: other.key });
    expect(put.status, put.text).toBeLessThan(300);
    expect((await fixture.server.call('POST', '/api/v1/task', { type: 'sms', args: { to: '+1555' } }, { key: other.key })).status).toBe(201);
    const mine = await fixture.server.call('POST', '/api/v1/task', { type: 'sms', args: { to: '+1555' } });
    expect(mine.status).toBe(400);
    expect(mine.body.errors[0]).not.toMatch(/\bsms\b/);
    // the tenant's own ids are named only to a key that may list its definitions
    const submitter = await fixture.server.call('POST', '/api/v1/auth/api-keys', { name: 'submit-only', scopes: ['tasks:execute'] }, { key: other.key });
    expect(submitter.status, submitter.text).toBe(201);
    const unnamed = await fixture.server.call('POST', '/api/v1/task', { type: 'mms', args: {} }, { key: submitter.body.key });
    expect(unnamed.status).toBe(400);
    expect(unnamed.body.errors[0]).toContain('noop');
    expect(unnamed.body.errors[0]).not.toMatch(/\bsms\b/);
    expect((await fixture.server.call('POST', '/api/v1/task', { type: 'mms', args: {} }, { key: other.key })).body.errors[0]).toMatch(/\bsms\b/);
    // the canonical route keeps its 404 for an unknown task_definition_id
    const canonical = await fixture.server.call('POST', '/api/v1/tasks', { task_definition_id: 'sms', input: {} });
    expect(canonical.status).toBe(404);
    expect(canonical.body.error.code).toBe('NOT_FOUND');
  });

  it('DELETE cancels; a finished task cannot be cancelled (400); foreign tasks are 404', async () => {
    const res = await fixture.server.call('POST', '/api/v1/task', { type: 'sleep', args: { ms: 60_000 } });
    const id = res.body.task_id;
    const other = await newTenant(fixture.tdb.db);
    expect((await fixture.server.call('DELETE', `/api/v1/task/${id}`, undefined, { key: other.key })).status).toBe(404);
    const del = await fixture.server.call('DELETE', `/api/v1/task/${id}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ task_id: id, status: 'cancelled' });
    const deadline = Date.now() + 20_000;
    let status = '';
    while (Date.now() < deadline && status !== 'cancelled') {
      status = (await fixture.server.call('GET', `/api/v1/task/${id}`)).body.status;
      if (status !== 'cancelled') await new Promise((r) => setTimeout(r, 25));
    }
    expect(status).toBe('cancelled');
    const again = await fixture.server.call('DELETE', `/api/v1/task/${id}`);
    expect(again.status).toBe(400);
    expect(again.body.status).toBe('error');
  });

  it('counts a compatibility call once in the request metrics, not also as the canonical call it makes', async () => {
    const count = async (route: string, status: string): Promise<number> => {
      const text = (await fixture.server.call('GET', '/metrics')).text;
      const line = text.split('\n').find((l) => l.startsWith('taskgate_http_requests_total{') && l.includes(`route="${route}"`) && l.includes(`status="${status}"`) && l.includes('method="POST"'));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    };
    const [compat, canonical] = [await count('/api/v1/task', '201'), await count('/api/v1/tasks', '200')];
    expect((await fixture.server.call('POST', '/api/v1/task', { type: 'noop', args: {} })).status).toBe(201);
    expect([await count('/api/v1/task', '201'), await count('/api/v1/tasks', '200')]).toEqual([compat + 1, canonical]);
  });

  it('GET /api/v1/health needs no auth', async () => {
    const h = await fixture.server.call('GET', '/api/v1/health', undefined, { key: null });
    expect(h.status).toBe(200);
    expect(h.body.status).toBe('healthy');
  });
  it('carry the rate-limit headers of the canonical routes they call, and Retry-After on a 429', async () => {
    const limited = await startTestServer(fixture.tdb.db, { TASKGATE_RATE_LIMIT_PER_MIN: '1', TASKGATE_RATE_LIMIT_BURST: '2', TASKGATE_ROLE: 'api' });
    try {
      const { key } = await newTenant(fixture.tdb.db);
      const submits = [];
      for (let i = 0; i < 3; i++) submits.push(await limited.call('POST', '/api/v1/task', { type: 'noop', args: {} }, { key }));
      expect(submits.map((r) => r.status)).toEqual([201, 201, 429]);
      expect(submits.map((r) => r.headers.get('x-ratelimit-remaining'))).toEqual(['1', '0', '0']);
      for (const r of submits) {
        expect(r.headers.get('x-ratelimit-limit')).toBe('1'); // per minute (the burst is 2)
        expect(Number(r.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000 - 1);
      }
      expect(Number(submits[2]!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(submits[2]!.body).toMatchObject({ status: 'error' });
      // a cancel draws on the control budget, not the spent submit one; reads have their own
      const cancel = await limited.call('DELETE', `/api/v1/task/${submits[0]!.body.task_id}`, undefined, { key });
      // (200 cancelled, or 400 if the fixture's worker completed the noop first: either way, not 429)
      expect([[200, 400].includes(cancel.status), cancel.headers.get('x-ratelimit-remaining')]).toEqual([true, '1']);
      const read = await limited.call('GET', `/api/v1/task/${submits[0]!.body.task_id}`, undefined, { key });
      expect(read.status).toBe(200);
      expect(read.headers.get('x-ratelimit-limit')).not.toBeNull();
    } finally {
      await limited.close();
    }
  });
});

describe('answers made before a route is found', () => {
  const seed004 = (message: string) => ({ status: 'error', message, timestamp: expect.any(String) });

  it("a wrong method on a seed 004 path is 405 in seed 004's shape, with Allow; canonical paths keep the envelope", async () => {
    const put = await fixture.server.call('PUT', '/api/v1/task/task_x', {});
    expect([put.status, put.body, put.headers.get('allow')]).toEqual([405, seed004('Method PUT not allowed on /api/v1/task/task_x'), expect.stringContaining('DELETE')]);
    const health = await fixture.server.call('POST', '/api/v1/health', {});
    expect([health.status, health.body]).toEqual([405, seed004('Method POST not allowed on /api/v1/health')]);
    const submit = await fixture.server.call('GET', '/api/v1/task');
    expect([submit.status, submit.body]).toEqual([405, seed004('Method GET not allowed on /api/v1/task')]);
    const canonical = await fixture.server.call('PUT', '/api/v1/tasks/task_x', {});
    expect([canonical.status, canonical.body.error?.code]).toEqual([405, 'METHOD_NOT_ALLOWED']);
    const healthz = await fixture.server.call('POST', '/api/v1/healthz', {});
    expect([healthz.status, healthz.body.error?.code]).toEqual([404, 'NOT_FOUND']);
  });

  it("an unknown path is 404 in its prefix's shape: OpenAI's under /v1/ (clients probing /v1/responses, /v1/embeddings), seed 004's under /api/v1/task/", async () => {
    for (const path of ['/v1/responses', '/v1/embeddings']) {
      const res = await fixture.server.call('POST', path, {});
      expect([res.status, res.body.error]).toEqual([404, expect.objectContaining({ type: 'invalid_request_error', code: 'not_found', message: `Route POST ${path} not found` })]);
    }
    const seed = await fixture.server.call('GET', '/api/v1/task/task_x/extra');
    expect([seed.status, seed.body]).toEqual([404, seed004('Route GET /api/v1/task/task_x/extra not found')]);
    const canonical = await fixture.server.call('GET', '/api/v1/nowhere');
    expect([canonical.status, canonical.body.error?.code]).toEqual([404, 'NOT_FOUND']);
  });

  it("a path that is not valid URL encoding, or a segment over 256 characters, is 400 in seed 004's shape there", async () => {
    const bad = await fixture.server.call('GET', '/api/v1/task/%zz');
    expect([bad.status, bad.body]).toEqual([400, seed004('The path is not valid URL encoding')]);
    const long = await fixture.server.call('DELETE', `/api/v1/task/${'a'.repeat(300)}`);
    expect([long.status, long.body]).toEqual([400, seed004('A path segment is too long')]);
    const canonical = await fixture.server.call('GET', '/api/v1/tasks/%zz', undefined, { headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    expect([canonical.status, canonical.body.error?.code, canonical.body.error?.details]).toEqual([400, 'VALIDATION_ERROR', { location: 'path', reason: 'bad encoding' }]);
    expect(canonical.headers.get('x-trace-id')).toBe('0af7651916cd43dd8448eb211c80319c');
  });
});

