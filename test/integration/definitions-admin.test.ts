// Tenant definitions through the admin API: PUT creates (201) or replaces (200), GET and the list
// show them to their tenant only, tasks run on them end to end (http against a local upstream,
// approval), DELETE removes them (queued tasks then fail cleanly), built-in ids are refused (409),
// bad bodies are 4xx envelopes, and (PostgreSQL) another server on the same schema sees changes.
import { createServer, type Server as HttpServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPg } from '../../src/storage/pg.js';
import type { Db } from '../../src/storage/db.js';
import { openTestDb, usingPostgres, type TestDb } from '../helpers/db.js';
import { newTenant, startTestServer, until, waitForTask, type TestServer } from '../helpers/server.js';
import type { TaskDefinition } from '../../src/executors/types.js';
import { Registry } from '../../src/executors/registry.js';
import { TenantDefinitionSync } from '../../src/executors/tenant-definitions.js';
import { tenantDefinitionsDelete, tenantDefinitionsUpsert } from '../../src/storage/queries/definitions.js';
import { tasksInsertMany } from '../../src/storage/queries/tasks.js';
import { newTaskId } from '../../src/domain/ids.js';

const fileDef: TaskDefinition = {
  id: 'test-file-def', name: 'from a tasks dir', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: {}, handler: () => ({ ok: true }),
};

let tdb: TestDb;
let server: TestServer;
let upstream: HttpServer;
let upstreamUrl = '';
const hits: { url: string; method?: string; injected?: string; auth?: string; body: string }[] = [];

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hits.push({ url: req.url!, method: req.method, injected: req.headers['x-injected'] as string | undefined, auth: req.headers['x-upstream-token'] as string | undefined, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, path: req.url }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
  tdb = await openTestDb();
  server = await startTestServer(tdb.db, { TASKGATE_HTTP_ALLOW_LIST: '127.0.0.0/8' }, { definitions: [fileDef] });
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
  upstream?.close();
});

const put = (id: string, body: unknown, key?: string) => server.call('PUT', `/api/v1/definitions/${id}`, body, { key });
const httpDef = (suffix = '') => ({
  name: `Order lookup${suffix}`, description: 'fetches an order', version: '1.2.0', kind: 'http', type: 'INTEGRATION',
  input_schema: { type: 'object', properties: { order: { type: 'string', maxLength: 20 } }, required: ['order'], additionalProperties: false },
  output_schema: { type: 'object', required: ['status'] },
  priority: 'high', timeout_ms: 10_000, retry_policy: { max_retries: 1, retry_interval_ms: 100 },
  config: { method: 'GET', url: `${upstreamUrl}/orders/{{input.order}}`, headers: { 'x-upstream-token': 's3cret-token' } },
});

function expectEnvelope(res: { status: number; body: any; text: string }, status: number, code: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.body.error.code, res.text).toBe(code);
  expect(typeof res.body.error.message).toBe('string');
  expect(typeof res.body.request_id).toBe('string');
}

describe('PUT/GET/DELETE /api/v1/definitions/{id}', () => {
  it('creates (201), replaces (200), shows it in GET and the list, and never returns config', async () => {
    const created = await put('orders.lookup', httpDef());
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      id: 'orders.lookup', name: 'Order lookup', kind: 'http', type: 'INTEGRATION', version: '1.2.0', priority: 'high', timeout_ms: 10_000,
      retry_policy: { max_retries: 1, retry_interval_ms: 100 }, approval: null,
    });
    expect(created.body.input_schema.required).toEqual(['order']);
    expect(created.text).not.toContain('s3cret-token');
    expect(created.body).not.toHaveProperty('config');

    const replaced = await put('orders.lookup', httpDef(' v2'));
    expect(replaced.status, replaced.text).toBe(200);
    expect(replaced.body.name).toBe('Order lookup v2');

    const got = await server.call('GET', '/api/v1/definitions/orders.lookup');
    expect(got.status).toBe(200);
    expect(got.body).toEqual(replaced.body);
    expect(got.text).not.toContain('s3cret-token');

    const list = await server.call('GET', '/api/v1/definitions?limit=100');
    const ids = list.body.items.map((d: any) => d.id);
    expect(ids).toContain('orders.lookup');
    expect(ids).toContain('noop');
    expect(list.body.items.find((d: any) => d.id === 'orders.lookup')).toEqual({
      id: 'orders.lookup', name: 'Order lookup v2', description: 'fetches an order', type: 'INTEGRATION', kind: 'http', version: '1.2.0',
    });
    const filtered = await server.call('GET', '/api/v1/definitions?search=order%20lookup');
    expect(filtered.body.items.map((d: any) => d.id)).toEqual(['orders.lookup']);
  });

  it('runs a task on an http definition end to end (config url template and headers)', async () => {
    await put('orders.fetch', httpDef());
    const id = await server.submit({ task_definition_id: 'orders.fetch', input: { order: 'A 1' } });
    const t = await waitForTask(server, id);
    expect(t.status, JSON.stringify(t)).toBe('COMPLETED');
    expect(t.priority).toBe('high');
    expect(t.output).toMatchObject({ status: 200, body: { ok: true, path: '/orders/A%201' } });
    expect(hits.find((h) => h.url === '/orders/A%201')?.auth).toBe('s3cret-token');
    // the definition's input_schema is enforced on submit
    const bad = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'orders.fetch', input: { order: 7 } });
    expectEnvelope(bad, 422, 'UNPROCESSABLE');
  });

  it("a submitter cannot take over an http definition's call: url, method and headers are the definition's", async () => {
    const def = { ...httpDef(' open'), input_schema: { type: 'object' }, config: { ...httpDef().config, method: 'GET' } };
    await put('orders.open', def);
    const before = hits.length;
    const id = await server.submit({
      task_definition_id: 'orders.open',
      input: { order: 'B2', url: 'http://127.0.0.1:9/collect', method: 'DELETE', headers: { 'x-upstream-token': 'forged', 'x-injected': 'yes' } },
    });
    const t = await waitForTask(server, id);
    expect(t.status, JSON.stringify(t)).toBe('COMPLETED');
    expect(t.output).toMatchObject({ status: 200, body: { path: '/orders/B2' } });
    const hit = hits.slice(before).find((h) => h.url === '/orders/B2');
    expect(hit).toMatchObject({ method: 'GET', auth: 's3cret-token', injected: undefined });
    // a whole '..' segment would climb out of the template's path
    const climb = await waitForTask(server, await server.submit({ task_definition_id: 'orders.open', input: { order: '..' }, retry_policy: { max_retries: 0 } }));
    expect(climb.status).toBe('FAILED');
    expect(climb.error).toContain('input.order cannot be ".."');
    expect(hits.slice(before).map((h) => h.url)).toEqual(['/orders/B2']);
  });

  it('runs a task whose definition this process has not loaded yet (another process created both a moment ago)', async () => {
    const t = await newTenant(tdb.db);
    // what another API process does: the definition row, then a task against it; this process
    // heard of neither (no hint, the periodic reload is seconds away)
    const { id: _id, ...definition } = { id: 'late.fetch', ...httpDef(' late') };
    await tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id: 'late.fetch', definition, maxPerTenant: 10 });
    expect(server.registry.get(t.tenantId, 'late.fetch')).toBeUndefined();
    const id = newTaskId();
    await tasksInsertMany(tdb.db, [{
      id, tenant_id: t.tenantId, user_id: 'u', session_id: null, kind: 'definition', task_definition_id: 'late.fetch', query: '',
      input: { order: 'late-1' }, context: {}, options: {}, mode: null, priority: 2, max_attempts: 1, retry_interval_ms: 1000, backoff_multiplier: 2,
      timeout_ms: 10_000, run_at: new Date(), metadata: {}, tags: [], workflow_instance_id: null,
    }]);
    server.signals.work();
    const done = await waitForTask(server, id, undefined, { key: t.key });
    expect(done.status, JSON.stringify(done)).toBe('COMPLETED');
    expect(done.output).toMatchObject({ status: 200, body: { path: '/orders/late-1' } });
  });

  it('accepts a submit and a GET of a definition this process has not heard of yet; an unknown id stays a 404', async () => {
    const t = await newTenant(tdb.db);
    // another API process created it a moment ago: the row is there, this process had no hint yet
    await tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id: 'late.approval', definition: { kind: 'approval', name: 'late' }, maxPerTenant: 10 });
    expect(server.registry.get(t.tenantId, 'late.approval')).toBeUndefined();
    const submitted = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'late.approval', input: { message: 'ok?' } }, { key: t.key });
    expect(submitted.status, submitted.text).toBe(200);
    await tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id: 'late.second', definition: { kind: 'approval', name: 'second' }, maxPerTenant: 10 });
    const shown = await server.call('GET', '/api/v1/definitions/late.second', undefined, { key: t.key });
    expect(shown.status, shown.text).toBe(200);
    expect(shown.body).toMatchObject({ id: 'late.second', name: 'second' });
    expectEnvelope(await server.call('POST', '/api/v1/tasks', { task_definition_id: 'never.made', input: {} }, { key: t.key }), 404, 'NOT_FOUND');
    expectEnvelope(await server.call('GET', '/api/v1/definitions/never.made', undefined, { key: t.key }), 404, 'NOT_FOUND');
    // another tenant's stored definition stays invisible through the same path
    const other = await newTenant(tdb.db);
    expectEnvelope(await server.call('POST', '/api/v1/tasks', { task_definition_id: 'late.approval', input: {} }, { key: other.key }), 404, 'NOT_FOUND');
    expectEnvelope(await server.call('GET', '/api/v1/definitions/late.second', undefined, { key: other.key }), 404, 'NOT_FOUND');
  });

  it('runs a task on an approval definition: it waits for the decision and completes with it', async () => {
    const res = await put('ship.approval', { kind: 'approval', description: 'Ship it?', approval: { required: false, timeout_ms: 600_000 } });
    expect(res.status, res.text).toBe(201);
    const id = await server.submit({ task_definition_id: 'ship.approval', input: { message: 'ship order 7?' } });
    let approvalId: string | undefined;
    await until(async () => {
      const events = (await server.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as any[];
      approvalId = events.find((e) => e.type === 'APPROVAL_REQUESTED')?.payload?.approval_id;
      return approvalId !== undefined;
    }, 'APPROVAL_REQUESTED');
    const d = await server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: approvalId, approved: true, feedback: 'go' });
    expect(d.status, d.text).toBe(200);
    const t = await waitForTask(server, id);
    expect(t.status).toBe('COMPLETED');
    expect(t.output).toMatchObject({ approved: true, feedback: 'go' });
  });

  it('accepts an agent definition (config.prompt) without an LLM configured', async () => {
    const res = await put('summarize', { kind: 'agent', input_schema: { type: 'object' }, config: { prompt: 'Summarize {{text}}', mode: 'simple', model_tier: 'small' } });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ id: 'summarize', name: 'summarize', kind: 'agent', type: 'AGENT', version: '1.0.0', priority: 'medium' });
  });

  it('DELETE → 204, then 404 everywhere; a task queued before the delete fails cleanly when it runs', async () => {
    await put('to-delete', { kind: 'http', config: { url: `${upstreamUrl}/never` } });
    const queued = await server.submit({ task_definition_id: 'to-delete', input: {}, delay_ms: 400 });
    const del = await server.call('DELETE', '/api/v1/definitions/to-delete');
    expect(del.status, del.text).toBe(204);
    expect(del.text).toBe('');
    expectEnvelope(await server.call('GET', '/api/v1/definitions/to-delete'), 404, 'NOT_FOUND');
    expectEnvelope(await server.call('DELETE', '/api/v1/definitions/to-delete'), 404, 'NOT_FOUND');
    expectEnvelope(await server.call('POST', '/api/v1/tasks', { task_definition_id: 'to-delete', input: {} }), 404, 'NOT_FOUND');
    expect((await server.call('GET', '/api/v1/definitions?limit=100')).body.items.map((d: any) => d.id)).not.toContain('to-delete');

    const t = await waitForTask(server, queued);
    expect(t.status).toBe('FAILED');
    expect(t.error).toContain('task definition to-delete no longer exists');
    expect(t.attempts).toBe(1);
    expect(hits.some((h) => h.url === '/never')).toBe(false);
  });

  it('refuses shipped and --tasks-dir ids with 409 CONFLICT (PUT and DELETE)', async () => {
    for (const id of ['noop', 'http_request', 'approval', 'test-file-def']) {
      expectEnvelope(await put(id, { kind: 'approval' }), 409, 'CONFLICT');
      expectEnvelope(await server.call('DELETE', `/api/v1/definitions/${id}`), 409, 'CONFLICT');
    }
    expect((await server.call('GET', '/api/v1/definitions/noop')).body.kind).toBe('function');
  });

  it('needs tasks:definitions:write (403 otherwise); that scope alone suffices', async () => {
    const reader = await newTenant(tdb.db, ['tasks:definitions:read', 'tasks:definitions:list', 'tasks:execute']);
    expectEnvelope(await put('scoped', { kind: 'approval' }, reader.key), 403, 'FORBIDDEN');
    expectEnvelope(await server.call('DELETE', '/api/v1/definitions/scoped', undefined, { key: reader.key }), 403, 'FORBIDDEN');
    const writer = await newTenant(tdb.db, ['tasks:definitions:write']);
    expect((await put('scoped', { kind: 'approval' }, writer.key)).status).toBe(201);
    expect((await server.call('DELETE', '/api/v1/definitions/scoped', undefined, { key: writer.key })).status).toBe(204);
  });

  it("keeps tenants apart: another tenant's definition is a 404, not listed, not submittable, not deletable", async () => {
    const a = await newTenant(tdb.db, ['admin']);
    const b = await newTenant(tdb.db, ['admin']);
    expect((await put('tenant.private', { kind: 'approval', name: 'A only' }, a.key)).status).toBe(201);
    expectEnvelope(await server.call('GET', '/api/v1/definitions/tenant.private', undefined, { key: b.key }), 404, 'NOT_FOUND');
    const listB = await server.call('GET', '/api/v1/definitions?limit=100', undefined, { key: b.key });
    expect(listB.body.items.map((d: any) => d.id)).not.toContain('tenant.private');
    expect(listB.text).not.toContain('A only');
    expectEnvelope(await server.call('POST', '/api/v1/tasks', { task_definition_id: 'tenant.private', input: {} }, { key: b.key }), 404, 'NOT_FOUND');
    expectEnvelope(await server.call('DELETE', '/api/v1/definitions/tenant.private', undefined, { key: b.key }), 404, 'NOT_FOUND');
    // B may use the same id: its own definition, A's is untouched
    expect((await put('tenant.private', { kind: 'approval', name: 'B only' }, b.key)).status).toBe(201);
    expect((await server.call('GET', '/api/v1/definitions/tenant.private', undefined, { key: a.key })).body.name).toBe('A only');
    expect((await server.call('GET', '/api/v1/definitions/tenant.private', undefined, { key: b.key })).body.name).toBe('B only');
    expect((await server.call('GET', '/api/v1/definitions/tenant.private')).status).toBe(404); // the default tenant
  });

  it('refuses bad bodies and ids with a 4xx envelope', async () => {
    const cases: [string, unknown, number, string][] = [
      ['bad.kind', { kind: 'shell' }, 400, 'VALIDATION_ERROR'],
      ['bad.function', { kind: 'function' }, 400, 'VALIDATION_ERROR'],
      ['bad.nokind', { name: 'x' }, 400, 'VALIDATION_ERROR'],
      ['bad.schema', { kind: 'http', input_schema: { type: 'nonsense' } }, 400, 'VALIDATION_ERROR'],
      ['bad.schema2', { kind: 'http', output_schema: { properties: { a: { minLength: -1 } } } }, 400, 'VALIDATION_ERROR'],
      ['bad.schemaid', { kind: 'http', input_schema: { $id: 'https://example.com/s', type: 'object' } }, 400, 'VALIDATION_ERROR'],
      ['bad.extra', { kind: 'http', handler: 'x' }, 400, 'VALIDATION_ERROR'],
      ['bad.config', { kind: 'http', config: { prompt: 'hi' } }, 400, 'VALIDATION_ERROR'],
      ['bad.config2', { kind: 'approval', config: { url: 'http://x' } }, 400, 'VALIDATION_ERROR'],
      ['bad.config3', { kind: 'http', config: { shell: 'rm' } }, 400, 'VALIDATION_ERROR'],
      // a url no task of it could call (every task failed at run time)
      ['bad.url', { kind: 'http', config: { url: 'http://exa mple.invalid/x' } }, 400, 'VALIDATION_ERROR'],
      ['bad.url2', { kind: 'http', config: { url: 'https://{{input.host}}:99999/x' } }, 400, 'VALIDATION_ERROR'],
      ['bad.url3', { kind: 'http', config: { url: 'http://{{input.a}} {{input.b}}/' } }, 400, 'VALIDATION_ERROR'],
      ['bad.header', { kind: 'http', config: { headers: { 'bad header': 'x' } } }, 400, 'VALIDATION_ERROR'],
      ['bad.header2', { kind: 'http', config: { headers: { 'x-a': 'line\r\nbreak' } } }, 400, 'VALIDATION_ERROR'],
      ['bad.priority', { kind: 'http', priority: 'asap' }, 400, 'VALIDATION_ERROR'],
      ['bad.timeout', { kind: 'http', timeout_ms: 0 }, 400, 'VALIDATION_ERROR'],
      ['bad.retry', { kind: 'http', retry_policy: { max_retries: 1000 } }, 400, 'VALIDATION_ERROR'],
      ['bad.idmismatch', { id: 'other', kind: 'http' }, 400, 'VALIDATION_ERROR'],
      ['bad.array', [{ kind: 'http' }], 400, 'VALIDATION_ERROR'],
      ['bad.big', { kind: 'http', description: 'x', input_schema: { type: 'object', description: 'x'.repeat(300_000) } }, 413, 'PAYLOAD_TOO_LARGE'],
      ['bad%20id!', { kind: 'http' }, 400, 'VALIDATION_ERROR'],
      // patterns run on RE2 (linear time): lookaround and backreferences are not its syntax
      ['bad.lookbehind', { kind: 'http', input_schema: { properties: { x: { type: 'string', pattern: '(?<=a)b' } } } }, 400, 'VALIDATION_ERROR'],
      ['bad.backref', { kind: 'http', output_schema: { patternProperties: { '(x)\\1': {} } } }, 400, 'VALIDATION_ERROR'],
      ['bad.regex', { kind: 'http', input_schema: { properties: { x: { pattern: '([a-z' } } } }, 400, 'VALIDATION_ERROR'],
      ['bad.longpattern', { kind: 'http', input_schema: { properties: { x: { pattern: 'a'.repeat(501) } } } }, 400, 'VALIDATION_ERROR'],
      // compiling is synchronous on the shared event loop: a schema of more than 500 objects is refused
      ['bad.huge', { kind: 'http', input_schema: { type: 'object', properties: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`p${i}`, { type: 'integer' }])) } }, 400, 'VALIDATION_ERROR'],
      // a $ref cycle that never descends into the value: every validation would overflow the stack
      ['bad.cycle', { kind: 'approval', output_schema: { $ref: '#' } }, 400, 'VALIDATION_ERROR'],
      ['bad.cycle2', { kind: 'http', input_schema: { $defs: { a: { allOf: [{ $ref: '#/$defs/a' }] } }, $ref: '#/$defs/a' } }, 400, 'VALIDATION_ERROR'],
      // uniqueItems over items that are not scalars compares every pair (30,000 took ~9 s of the loop)
      ['bad.unique', { kind: 'approval', input_schema: { type: 'array', uniqueItems: true } }, 400, 'VALIDATION_ERROR'],
      ['bad.unique2', { kind: 'http', output_schema: { properties: { body: { type: 'array', uniqueItems: true, items: { type: ['string', 'object'] } } } } }, 400, 'VALIDATION_ERROR'],
      ['bad.unique3', { kind: 'approval', input_schema: { type: 'array', uniqueItems: true, maxItems: 101 } }, 400, 'VALIDATION_ERROR'],
    ];
    // every http case but the URL ones has a valid config.url, so each is refused for its own reason
    const withUrl = (b: unknown): unknown =>
      b && typeof b === 'object' && !Array.isArray(b) && (b as any).kind === 'http' ? { ...b, config: { url: 'https://example.com/x', ...((b as any).config ?? {}) } } : b;
    for (const c of cases) c[1] = withUrl(c[1]);
    cases.push(
      ['bad.nourl', { kind: 'http', config: { method: 'POST', headers: { authorization: 'Bearer s' } } }, 400, 'VALIDATION_ERROR'],
      ['bad.fileurl', { kind: 'http', config: { url: 'file:///etc/passwd' } }, 400, 'VALIDATION_ERROR'],
    );
    for (const [id, body, status, code] of cases) {
      const res = await put(id, body);
      expect(res.status, `${id}: ${res.text}`).toBe(status);
      expect(res.body.error.code, id).toBe(code);
      expect(typeof res.body.request_id).toBe('string');
    }
    // placeholders anywhere a value can make a URL: the port, part of the port, the host
    for (const url of ['http://127.0.0.1:{{input.port}}/health', 'http://h:80{{input.n}}/', 'https://{{input.host}}/x?q={{input.q}}']) {
      const ok = await put('ok.url', { kind: 'http', config: { url } });
      expect([200, 201], `${url}: ${ok.text}`).toContain(ok.status);
    }
    // at the pattern's place (the schema's compile named only the schema)
    const regex = (await put('bad.regex', cases.find((c) => c[0] === 'bad.regex')![1])).body.error;
    expect(regex.message).toMatch(/^input_schema\.properties\.x\.pattern is not an RE2 regular expression .*missing closing \]/);
    expect(regex.details).toMatchObject({ path: 'input_schema.properties.x.pattern' });
    expect((await put('bad.lookbehind', cases.find((c) => c[0] === 'bad.lookbehind')![1])).body.error.details).toMatchObject({ path: 'input_schema.properties.x.pattern' });
    expect((await put('bad.backref', cases.find((c) => c[0] === 'bad.backref')![1])).body.error).toMatchObject({
      details: { path: 'output_schema.patternProperties' }, message: expect.stringContaining('key "(x)\\\\1" is not an RE2 regular expression'),
    });
    expect((await put('bad.huge', cases.find((c) => c[0] === 'bad.huge')![1])).body.error.message).toContain('larger than 500 objects and arrays');
    expect((await put('bad.cycle', cases.find((c) => c[0] === 'bad.cycle')![1])).body.error.message).toContain('refers back to itself');
    expect((await put('bad.unique2', cases.find((c) => c[0] === 'bad.unique2')![1])).body.error.details).toMatchObject({ path: 'output_schema.properties.body.uniqueItems' });
    // unique scalars are checked in one pass, and a short array is cheap whatever its items
    for (const [id, schema] of [['fine.unique', { type: 'array', uniqueItems: true, items: { type: ['string', 'integer'] } }], ['fine.unique2', { type: 'array', uniqueItems: true, maxItems: 100 }]] as const) {
      const res = await put(id, { kind: 'approval', input_schema: schema });
      expect(res.status, res.text).toBe(201);
      expect((await server.call('DELETE', `/api/v1/definitions/${id}`)).status).toBe(204);
    }
    // a plain pattern is fine, and so is the word "pattern" as data or as a property name
    expect((await put('bad.nourl', cases.find((c) => c[0] === 'bad.nourl')![1])).body.error.details).toMatchObject({ path: 'config.url' });
    const fine = await put('fine.pattern', {
      kind: 'http', config: { url: 'https://example.com/x' }, input_schema: { properties: { pattern: { type: 'string', pattern: '^[a-z0-9-]{1,40}$', default: '(a+)+' } }, patternProperties: { '^x-': {} } },
    });
    expect(fine.status, fine.text).toBe(201);
    expect((await server.call('DELETE', '/api/v1/definitions/fine.pattern')).status).toBe(204);
    const notJson = await server.call('PUT', '/api/v1/definitions/bad.media', 'kind=http', { headers: { 'content-type': 'text/plain' } });
    expectEnvelope(notJson, 415, 'UNSUPPORTED_MEDIA_TYPE');
    const broken = await server.call('PUT', '/api/v1/definitions/bad.json', '{"kind":', {});
    expectEnvelope(broken, 400, 'VALIDATION_ERROR');
    const listed = (await server.call('GET', '/api/v1/definitions?search=bad.&limit=100')).body.items;
    expect(listed).toEqual([]);
  });

  it("refuses a pattern compiling to more than 1,000 RE2 instructions and a $ref into data (400 at its path); ordinary patterns pass", async () => {
    // 392 characters, 60,004 instructions: one 250 KB string held the event loop ~47 s
    const huge = '^' + '[a-z]{0,1000}'.repeat(30) + '$';
    const refused: [string, Record<string, unknown>, string][] = [
      ['big.pattern', { properties: { s: { type: 'string', pattern: huge } } }, 'input_schema.properties.s.pattern'],
      ['big.pattern2', { properties: { s: { type: 'string', pattern: '^.{0,1000}$' } } }, 'input_schema.properties.s.pattern'],
      ['big.patternprops', { patternProperties: { '^[a-z]{0,600}$': {} } }, 'input_schema.patternProperties'],
      ['big.names', { propertyNames: { pattern: '[a-z]{0,999}' } }, 'input_schema.propertyNames.pattern'],
      // Ajv follows a JSON Pointer into a data keyword and compiles the data there as a schema
      ['ref.default', { type: 'object', default: { type: 'array', uniqueItems: true }, properties: { a: { $ref: '#/default' } } }, 'input_schema.properties.a.$ref'],
      ['ref.examples', { $defs: { u: { examples: [{ type: 'array', uniqueItems: true }] } }, properties: { a: { $ref: '#/$defs/u/examples/0' } } }, 'input_schema.properties.a.$ref'],
      ['ref.encoded', { const: { type: 'string', pattern: huge }, properties: { a: { $ref: '#/%63onst' } } }, 'input_schema.properties.a.$ref'],
      ['ref.enum', { $defs: { e: { enum: [{ type: 'string' }] } }, $dynamicRef: '#/$defs/e/enum/0' }, 'input_schema.$dynamicRef'],
      ['ref.items', { items: { default: { type: 'array', uniqueItems: true } }, properties: { a: { $ref: '#/items/default' } } }, 'input_schema.properties.a.$ref'],
      // a property or a definition named like a data keyword is a schema, and is checked as one
      ['named.default', { properties: { default: { type: 'array', uniqueItems: true } } }, 'input_schema.properties.default.uniqueItems'],
      ['named.examples', { $defs: { examples: { type: 'string', pattern: huge } } }, 'input_schema.$defs.examples.pattern'],
    ];
    for (const [id, schema, path] of refused) {
      const res = await put(id, { kind: 'approval', input_schema: schema });
      expect(res.status, `${id}: ${res.text}`).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      expect(res.body.error.details, id).toMatchObject({ path });
    }
    expect((await put('big.pattern', { kind: 'approval', input_schema: refused[0]![1] })).body.error.message).toMatch(/60004 RE2 instructions, more than 1000/);
    const ordinary = [
      '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$',
      '^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\\.[A-Za-z]{2,63}$',
      '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
      '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2}))?$',
      '^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\\.)+[a-zA-Z]{2,63}$',
      '^[\\p{L} .\'-]{1,255}$',
      '^\\+?[1-9]\\d{1,14}$',
    ];
    const fine = await put('fine.patterns', {
      kind: 'approval',
      input_schema: {
        properties: Object.fromEntries(ordinary.map((p, i) => [`p${i}`, { type: 'string', pattern: p }])),
        patternProperties: { '^x-[a-z]{1,100}$': {} },
        // a property or a definition merely named like a data keyword is a schema
        $defs: { default: { type: 'string' }, examples: { type: 'integer' } },
        default: { p0: 'a@b.co' },
      },
      output_schema: { properties: { default: { type: 'string' }, a: { $ref: '#/properties/default' }, b: { $ref: '#/$defs/examples' } }, $defs: { examples: { type: 'integer' } } },
    });
    expect(fine.status, fine.text).toBe(201);
    try {
      const ok = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'fine.patterns', input: { p0: 'a@b.co', p1: 'a@b.co', p2: '123e4567-e89b-12d3-a456-426614174000', p3: '2026-01-02T03:04:05.123Z' } });
      expect(ok.status, ok.text).toBe(200);
    } finally {
      expect((await server.call('DELETE', '/api/v1/definitions/fine.patterns')).status).toBe(204);
    }
  });

  it('refuses schemas whose compile would block the server: a dependentRequired list over 200 names, patterns over 50,000 RE2 instructions together; long required lists pass', async () => {
    const names = (n: number, p = 'r') => Array.from({ length: n }, (_, i) => `${p}${i}`);
    // 1,000 names in one list (7 KB) held every request of the server ~13 s while it compiled
    const refused: [string, Record<string, unknown>, string, RegExp][] = [
      ['dep.long', { type: 'object', dependentRequired: { d: names(1_000) } }, 'input_schema.dependentRequired.d', /lists 1000 names, more than 200/],
      ['dep.draft07', { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', dependencies: { d: names(201) } }, 'input_schema.dependencies.d', /more than 200/],
      // short lists, many of them: 240 × 200 names (236 KB) held the event loop 3.2 s
      ['dep.many', { type: 'object', dependentRequired: Object.fromEntries(names(20, 'd').map((d) => [d, names(200)])) }, 'input_schema.dependentRequired.d10', /more than 2000 names together/],
      // 60 patterns of ~1,000 instructions: each under its own cap, over the schema's together
      ['pat.many', { type: 'object', properties: Object.fromEntries(names(60, 'p').map((p) => [p, { type: 'string', pattern: 'a[ab]{980}$' }])) }, 'input_schema.properties', /more than 50000 RE2 instructions together/],
    ];
    for (const [id, schema, path, why] of refused) {
      const res = await put(id, { kind: 'approval', input_schema: schema });
      expect(res.status, `${id}: ${res.text}`).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      expect(res.body.error.details.path, id).toContain(path);
      expect(res.body.error.message, id).toMatch(why);
    }
    // at the caps, and required lists of any length in many subschemas (checked in a loop)
    const fine = await put('dep.fine', {
      kind: 'approval',
      input_schema: {
        type: 'object',
        dependentRequired: Object.fromEntries(names(10, 'd').map((d) => [d, names(200)])),
        dependentSchemas: Object.fromEntries(names(200, 'e').map((d) => [d, { required: names(100) }])),
        required: ['message'],
      },
    });
    expect(fine.status, fine.text).toBe(201);
    try {
      const missing = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'dep.fine', input: { message: 'm', d3: 1, r0: 1 } });
      expect(missing.status, missing.text).toBe(422);
      expect(missing.body.error.message).toMatch(/r1/);
      const e = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'dep.fine', input: { message: 'm', e7: 1 } });
      expect(e.status, e.text).toBe(422);
      expect(e.body.error.message).toMatch(/r0/);
      const ok = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'dep.fine', input: { message: 'm', ...Object.fromEntries(names(200).map((r) => [r, 1])), d0: 1, e0: 1 } });
      expect(ok.status, ok.text).toBe(200);
    } finally {
      expect((await server.call('DELETE', '/api/v1/definitions/dep.fine')).status).toBe(204);
    }
  });

  it("refuses a format validation does not check (a typo would accept anything); known formats and a property named format pass; a stored one still loads", async () => {
    const typo = await put('fmt.typo', { kind: 'approval', input_schema: { type: 'object', properties: { to: { type: 'string', format: 'emial' } } } });
    expectEnvelope(typo, 400, 'VALIDATION_ERROR');
    expect(typo.body.error.details).toMatchObject({ path: 'input_schema.properties.to.format' });
    expect(typo.body.error.message).toMatch(/not a format Taskgate checks \(one of .*\bemail\b.*\buuid\b/);
    const inOutput = await put('fmt.typo2', { kind: 'approval', output_schema: { items: { format: 'datetime' } } });
    expect(inOutput.body.error.details).toMatchObject({ path: 'output_schema.items.format' });
    const fine = await put('fmt.fine', {
      kind: 'approval',
      input_schema: { type: 'object', properties: { to: { type: 'string', format: 'email' }, at: { format: 'date-time' }, format: { type: 'string', default: 'emial' } }, $defs: { format: { const: { format: 'nope' } } } },
    });
    expect(fine.status, fine.text).toBe(201);
    const bad = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'fmt.fine', input: { to: 'not an address' } });
    expect(bad.status, bad.text).toBe(422);
    expect((await server.call('DELETE', '/api/v1/definitions/fmt.fine')).status).toBe(204);
    // a definition stored before formats were checked keeps working (its format is ignored, as before)
    const t = await newTenant(tdb.db, ['admin']);
    const registry = new Registry();
    const errors: unknown[] = [];
    await tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id: 'stored.fmt', definition: { kind: 'approval', input_schema: { properties: { s: { format: 'emial' } } } }, maxPerTenant: 10 });
    await new TenantDefinitionSync(tdb.db, registry, { onError: (e) => errors.push(e) }).refreshTenant(t.tenantId);
    expect(registry.get(t.tenantId, 'stored.fmt')).toMatchObject({ kind: 'approval' });
    expect(errors).toEqual([]);
  });

  it('refuses a schema whose $refs expand past 20,000 subschemas (a failing validation visits each: 2^N); a recursive tree and ordinary reuse pass', async () => {
    // each level refers to the next from two branches: 1.8 KB at N=22 held the event loop 9 s per submit
    const doubling = (n: number, via: (ref: string) => string) => ({
      $defs: Object.fromEntries(Array.from({ length: n }, (_, i) => [`l${i}`, i === n - 1 ? { type: 'string' } : { anyOf: [{ $ref: via(`l${i + 1}`) }, { allOf: [{ $ref: via(`l${i + 1}`) }] }] }])),
      $ref: via('l0'),
    });
    for (const [id, schema] of [['blowup.pointer', doubling(23, (d) => `#/$defs/${d}`)], ['blowup.small', doubling(16, (d) => `#/$defs/${d}`)]] as const) {
      const res = await put(id, { kind: 'approval', input_schema: schema });
      expect([res.status, res.body.error?.details?.path], `${id}: ${res.text}`).toEqual([400, 'input_schema']);
      expect(res.body.error.message).toMatch(/expand to more than 20000 subschemas/);
    }
    const anchored = doubling(23, (d) => `#${d}`);
    for (const [name, def] of Object.entries(anchored.$defs)) (def as Record<string, unknown>).$anchor = name;
    expect((await put('blowup.anchor', { kind: 'approval', input_schema: anchored })).status).toBe(400);
    // (refused before any compile or validation: N=23 took 91 s, then ran the server out of memory)
    const tree = { type: 'object', properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#' } } } };
    const reuse = { $defs: { addr: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } }, properties: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`a${i}`, { $ref: '#/$defs/addr' }])) };
    for (const [id, schema] of [['ok.tree', tree], ['ok.reuse', reuse]] as const) {
      const res = await put(id, { kind: 'approval', input_schema: schema });
      expect(res.status, `${id}: ${res.text}`).toBe(201);
      expect((await server.call('DELETE', `/api/v1/definitions/${id}`)).status).toBe(204);
    }
  });

  it("runs tenants' patterns in linear time, and validates with own properties only; a cycle only some values enter is a 400", async () => {
    const def = {
      kind: 'approval',
      input_schema: {
        type: 'object', required: ['constructor'],
        properties: { s: { type: 'string', pattern: '^(a|a)*$' }, n: { $ref: '#/$defs/loop' } },
        $defs: { loop: { if: { const: 5 }, then: { $ref: '#/$defs/loop' } } },
      },
    };
    expect((await put('linear.patterns', def)).status).toBe(201);
    try {
      // backtracking would try 2^40 ways before failing; RE2 answers at once
      const slow = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'linear.patterns', input: { constructor: 1, s: `${'a'.repeat(40)}!` } });
      expect(slow.status).toBe(422);
      expect(slow.body.error.details).toMatchObject({ path: '/s' });
      // an inherited name does not meet `required`
      const inherited = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'linear.patterns', input: { s: 'aa' } });
      expect(inherited.status).toBe(422);
      expect(inherited.body.error.details).toMatchObject({ path: '/constructor' });
      const loop = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'linear.patterns', input: { constructor: 1, n: 5 } });
      expect(loop.status).toBe(422);
      expect(loop.body.error.message).toContain('refers back to itself');
      const fine = await server.call('POST', '/api/v1/tasks', { task_definition_id: 'linear.patterns', input: { constructor: 1, s: 'aaaa', n: 4 } });
      expect(fine.status, fine.text).toBe(200);
    } finally {
      expect((await server.call('DELETE', '/api/v1/definitions/linear.patterns')).status).toBe(204);
    }
  });

  it('documents PUT and DELETE in /openapi.json', async () => {
    const doc = (await server.call('GET', '/openapi.json', undefined, { key: null })).body;
    const path = doc.paths['/api/v1/definitions/{id}'];
    expect(path.put.tags).toEqual(['definitions']);
    expect(path.delete.tags).toEqual(['definitions']);
    expect(Object.keys(path.put.responses)).toEqual(expect.arrayContaining(['200', '201', '400', '409']));
    expect(Object.keys(path.delete.responses)).toEqual(expect.arrayContaining(['204', '404', '409']));
    expect(JSON.stringify(path.put.requestBody)).toContain('approval');
  });

  it('loads stored definitions at start-up (a new server on the same database)', async () => {
    const t = await newTenant(tdb.db, ['admin']);
    expect((await put('persisted', { kind: 'approval', name: 'kept' }, t.key)).status).toBe(201);
    const second = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api' });
    try {
      const got = await second.call('GET', '/api/v1/definitions/persisted', undefined, { key: t.key });
      expect(got.status, got.text).toBe(200);
      expect(got.body.name).toBe('kept');
      expect((await second.call('GET', '/api/v1/definitions/persisted')).status).toBe(404);
    } finally {
      await second.close();
    }
  });
});

describe('TenantDefinitionSync', () => {
  it('the periodic reload picks up rows written elsewhere (a lost hint heals), and skips an invalid row', async () => {
    const t = await newTenant(tdb.db, ['admin']);
    const registry = new Registry();
    const errors: unknown[] = [];
    const sync = new TenantDefinitionSync(tdb.db, registry, { refreshIntervalMs: 50, onError: (e) => errors.push(e) });
    await sync.start();
    try {
      await tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id: 'written.elsewhere', definition: { kind: 'approval', name: 'x' }, maxPerTenant: 10 });
      await tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id: 'stored.bad', definition: { kind: 'function' }, maxPerTenant: 10 });
      await until(() => registry.get(t.tenantId, 'written.elsewhere') !== undefined, 'the reload to load the row');
      const first = registry.get(t.tenantId, 'written.elsewhere');
      expect(first).toMatchObject({ id: 'written.elsewhere', kind: 'approval', name: 'x', version: '1.0.0' });
      expect(registry.get(t.tenantId, 'stored.bad')).toBeUndefined();
      expect(String((errors[0] as Error).message)).toContain('stored.bad');
      expect(registry.get('someone-else', 'written.elsewhere')).toBeUndefined();
      // an unchanged row keeps its object across reloads (its schemas are not compiled again)
      await sync.refreshAll();
      expect(registry.get(t.tenantId, 'written.elsewhere')).toBe(first);
      // the per-tenant cap: a create past it is refused, a replace is not
      expect(await tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id: 'third', definition: { kind: 'approval' }, maxPerTenant: 2 })).toBeUndefined();
      expect(await tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id: 'stored.bad', definition: { kind: 'approval' }, maxPerTenant: 2 })).toMatchObject({ created: false });
      await tenantDefinitionsDelete(tdb.db, { tenantId: t.tenantId, id: 'written.elsewhere' });
      await until(() => registry.get(t.tenantId, 'written.elsewhere') === undefined, 'the reload to drop the row');
      expect(registry.get(t.tenantId, 'stored.bad')).toMatchObject({ kind: 'approval' });
    } finally {
      sync.stop();
    }
  });
});

describe('TenantDefinitionSync look-ups', () => {
  it('concurrent look-ups of a definition created elsewhere all find it (the earlier reloads, superseded, returned before anything was installed)', async () => {
    const t = await newTenant(tdb.db, ['admin']);
    const registry = new Registry();
    const sync = new TenantDefinitionSync(tdb.db, registry, { refreshIntervalMs: 3_600_000 });
    await sync.start();
    try {
      await tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id: 'made.elsewhere', definition: { kind: 'approval', name: 'x' }, maxPerTenant: 10 });
      // six tasks of it claimed at once, a hint arriving meanwhile
      const found = await Promise.all([
        ...Array.from({ length: 6 }, () => registry.getFresh(t.tenantId, 'made.elsewhere')),
        sync.refreshTenant(t.tenantId).then(() => registry.get(t.tenantId, 'made.elsewhere')),
      ]);
      expect(found.map((d) => d?.id)).toEqual(Array(7).fill('made.elsewhere'));
    } finally {
      sync.stop();
    }
  });
});

describe('TenantDefinitionSync load', () => {
  it('ignores, with an error, stored rows whose pattern compiles too large or whose $ref points into data', async () => {
    const t = await newTenant(tdb.db, ['admin']);
    const registry = new Registry();
    const errors: unknown[] = [];
    const sync = new TenantDefinitionSync(tdb.db, registry, { onError: (e) => errors.push(e) });
    const rows: Record<string, Record<string, unknown>> = {
      'stored.pattern': { kind: 'approval', input_schema: { properties: { s: { type: 'string', pattern: '^' + '[a-z]{0,1000}'.repeat(30) + '$' } } } },
      'stored.ref': { kind: 'approval', input_schema: { type: 'object', default: { type: 'array', uniqueItems: true }, properties: { a: { $ref: '#/default' } } } },
      'stored.fine': { kind: 'approval', input_schema: { properties: { s: { type: 'string', pattern: '^[a-z]{1,64}$' } } } },
    };
    for (const [id, definition] of Object.entries(rows)) await tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id, definition, maxPerTenant: 10 });
    await sync.refreshTenant(t.tenantId);
    expect(registry.get(t.tenantId, 'stored.fine')).toMatchObject({ kind: 'approval' });
    expect(registry.get(t.tenantId, 'stored.pattern')).toBeUndefined();
    expect(registry.get(t.tenantId, 'stored.ref')).toBeUndefined();
    const messages = errors.map((e) => `${(e as Error).message}: ${((e as Error).cause as Error)?.message}`);
    expect(messages).toEqual(expect.arrayContaining([expect.stringMatching(/stored\.pattern .*RE2 instructions/), expect.stringMatching(/stored\.ref .*data keyword/)]));
  });
});

describe('tenant definition cap', () => {
  it('holds under concurrent creates (writes of one tenant are serialized)', async () => {
    const t = await newTenant(tdb.db);
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) =>
      tenantDefinitionsUpsert(tdb.db, { tenantId: t.tenantId, id: `burst.${i}`, definition: { kind: 'approval' }, maxPerTenant: 3 })));
    expect(results.filter((r) => r !== undefined)).toHaveLength(3);
    const count = await tdb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tenant_definitions WHERE tenant_id = $1', [t.tenantId]);
    expect(count.rows[0]!.n).toBe(3);
  });
});

describe('TenantDefinitionSync saves', () => {
  it('two saves of one id whose answers come back out of order leave the process serving the last commit', async () => {
    const t = await newTenant(tdb.db);
    // the first save's transaction commits, then its answer is held until the second save is done
    let releaseFirst!: () => void;
    let held: Promise<void> | undefined = new Promise<void>((r) => (releaseFirst = r));
    let firstCommitted!: () => void;
    const committed = new Promise<void>((r) => (firstCommitted = r));
    const slowFirst = new Proxy(tdb.db, {
      get(target, prop, receiver) {
        if (prop !== 'transaction') return Reflect.get(target, prop, receiver);
        return async (fn: Parameters<Db['transaction']>[0]) => {
          const result = await target.transaction(fn);
          const hold = held;
          held = undefined;
          if (hold) {
            firstCommitted();
            await hold;
          }
          return result;
        };
      },
    });
    const registry = new Registry();
    const sync = new TenantDefinitionSync(slowFirst, registry, { refreshIntervalMs: 3_600_000 });
    await sync.start();
    try {
      const first = sync.save(t.tenantId, 'raced', { kind: 'approval', name: 'first' });
      await committed;
      expect(await sync.save(t.tenantId, 'raced', { kind: 'approval', name: 'second' })).toMatchObject({ ok: true });
      releaseFirst();
      expect(await first).toMatchObject({ ok: true });
      const { rows } = await tdb.db.query<{ name: string }>(`SELECT definition->>'name' AS name FROM tenant_definitions WHERE tenant_id = $1 AND id = 'raced'`, [t.tenantId]);
      expect(rows).toEqual([{ name: 'second' }]);
      expect(registry.get(t.tenantId, 'raced')?.name).toBe('second');
    } finally {
      sync.stop();
    }
  });
});

describe('TenantDefinitionSync periodic check', () => {
  it('reloads only tenants whose definitions changed (count or newest update), reading no rows otherwise', async () => {
    const [a, b] = [await newTenant(tdb.db), await newTenant(tdb.db)];
    await tenantDefinitionsUpsert(tdb.db, { tenantId: a.tenantId, id: 'a.one', definition: { kind: 'approval', name: 'a1' }, maxPerTenant: 10 });
    await tenantDefinitionsUpsert(tdb.db, { tenantId: b.tenantId, id: 'b.one', definition: { kind: 'approval', name: 'b1' }, maxPerTenant: 10 });
    // the statements that read definition rows, per tenant ('' = every tenant's)
    const rowReads: string[] = [];
    const counting = new Proxy(tdb.db, {
      get(target, prop, receiver) {
        if (prop !== 'query') return Reflect.get(target, prop, receiver);
        return (sql: string, params?: unknown[], opts?: unknown) => {
          if (/SELECT tenant_id, id, definition/.test(sql)) rowReads.push(String(params?.[0] ?? ''));
          return target.query(sql, params as never, opts as never);
        };
      },
    });
    const registry = new Registry();
    const sync = new TenantDefinitionSync(counting, registry, { refreshIntervalMs: 3_600_000 });
    await sync.start(); // the start-up load reads every tenant's rows once
    try {
      expect(rowReads).toEqual(['']);
      await sync.refreshChanged();
      expect(rowReads).toEqual(['']); // nothing changed: no rows read
      // a replace (same count, newer update) in tenant a; nothing in b
      await tenantDefinitionsUpsert(tdb.db, { tenantId: a.tenantId, id: 'a.one', definition: { kind: 'approval', name: 'a1 v2' }, maxPerTenant: 10 });
      await sync.refreshChanged();
      expect(rowReads).toEqual(['', a.tenantId]);
      expect(registry.get(a.tenantId, 'a.one')?.name).toBe('a1 v2');
      // a delete in b (count moves); a unchanged
      await tenantDefinitionsDelete(tdb.db, { tenantId: b.tenantId, id: 'b.one' });
      await sync.refreshChanged();
      expect(rowReads).toEqual(['', a.tenantId, b.tenantId]);
      expect(registry.get(b.tenantId, 'b.one')).toBeUndefined();
      await sync.refreshChanged();
      expect(rowReads).toHaveLength(3);
    } finally {
      sync.stop();
    }
  });
});

describe.skipIf(!usingPostgres())('across processes (PostgreSQL)', () => {
  let otherDb: Db;
  let other: TestServer;

  beforeAll(async () => {
    otherDb = await openPg({ connectionString: process.env.DATABASE_URL!, schema: tdb.schema, maxConnections: 5 });
    other = await startTestServer(otherDb, { TASKGATE_ROLE: 'api' });
  });
  afterAll(async () => {
    await other?.close();
    await otherDb?.close();
  });

  it('a PUT and a DELETE on one server reach the other within seconds (NOTIFY hint)', async () => {
    const t = await newTenant(tdb.db, ['admin']);
    expect((await other.call('GET', '/api/v1/definitions/xp.def', undefined, { key: t.key })).status).toBe(404);
    expect((await put('xp.def', { kind: 'approval', name: 'first' }, t.key)).status).toBe(201);
    await until(async () => (await other.call('GET', '/api/v1/definitions/xp.def', undefined, { key: t.key })).status === 200, 'the PUT on the other server', 3_000);
    expect((await put('xp.def', { kind: 'approval', name: 'second' }, t.key)).status).toBe(200);
    await until(async () => (await other.call('GET', '/api/v1/definitions/xp.def', undefined, { key: t.key })).body.name === 'second', 'the replace on the other server', 3_000);
    // and back: a submit on the other server is accepted, a delete there is seen here
    expect((await other.call('POST', '/api/v1/tasks', { task_definition_id: 'xp.def', input: {} }, { key: t.key })).status).toBe(200);
    expect((await other.call('DELETE', '/api/v1/definitions/xp.def', undefined, { key: t.key })).status).toBe(204);
    await until(async () => (await server.call('GET', '/api/v1/definitions/xp.def', undefined, { key: t.key })).status === 404, 'the DELETE on the first server', 3_000);
  });
});
