// Outbound HTTP hardening against a real local upstream that counts what reaches it: a configured
// definition's URL (write-only, may hold credentials) never shows in a task's error or events,
// input.timeout_ms does not touch a configured call, and framing headers are refused before sending.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server as HttpServer } from 'node:http';
import { newTenant, useTestServer, waitForTask } from '../helpers/server.js';

let upstream: HttpServer;
let upstreamUrl = '';
const hits: { url: string; method: string; body: string; headers: Record<string, string | string[] | undefined> }[] = [];
const SECRET = 'SECRET-k3y-0123456789';

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      hits.push({ url: req.url!, method: req.method!, body, headers: req.headers });
      // answers after 100 ms: a NaN or 1 ms client timer fires first
      if (req.url === '/slow-post') return setTimeout(() => res.end('done'), 100).unref();
      if (req.url === '/null') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('null');
      }
      // down for maintenance until a date, the first time it is called
      if (req.url === '/maintenance' && hitsOn('/maintenance') === 1) {
        res.writeHead(503, { 'retry-after': new Date(Date.now() + 3_000).toUTCString() });
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
});
afterAll(() => {
  upstream?.close();
});

const fixture = useTestServer({ TASKGATE_HTTP_ALLOW_LIST: '127.0.0.0/8', TASKGATE_HTTP_TIMEOUT_MS: '10000' });
const hitsOn = (path: string) => hits.filter((h) => h.url.startsWith(path)).length;

async function runAs(key: string, body: Record<string, unknown>) {
  const res = await fixture.server.call('POST', '/api/v1/tasks', body, { key });
  expect(res.status, res.text).toBe(200);
  const task = await waitForTask(fixture.server, res.body.task_id, undefined, { key });
  const events = (await fixture.server.call('GET', `/api/v1/tasks/${res.body.task_id}/events?limit=200`, undefined, { key })).body;
  return { task, events: JSON.stringify(events) };
}

async function putDefinition(key: string, id: string, config: Record<string, unknown>) {
  const res = await fixture.server.call('PUT', `/api/v1/definitions/${id}`, {
    kind: 'http', input_schema: { type: 'object' }, retry_policy: { max_retries: 2, retry_interval_ms: 10 }, config,
  }, { key });
  expect(res.status, res.text).toBe(201);
}

describe('a configured definition whose url a placeholder made invalid', () => {
  it('fails without telling the url (or the secret in it) in the error or the events', async () => {
    const { key } = await newTenant(fixture.tdb.db);
    await putDefinition(key, 'region.data', { url: `http://{{input.region}}.api.example.com/v1/data?api_key=${SECRET}` });
    const { task, events } = await runAs(key, { task_definition_id: 'region.data', input: { region: 'eu%' } });
    expect(task.status).toBe('FAILED');
    expect(task.attempts).toBe(1);
    expect(task.error).toMatch(/definition's url is invalid after its placeholders were filled/);
    for (const text of [JSON.stringify(task), events]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('api.example.com');
    }
  });

  it("fails without telling the host when the call is refused or cannot resolve: the host is the config's too", async () => {
    const { key } = await newTenant(fixture.tdb.db);
    // .invalid never resolves (RFC 2606); 10.0.0.1 is private and not allow-listed here
    await putDefinition(key, 'unresolvable', { url: 'http://internal-billing.invalid/v1' });
    await putDefinition(key, 'private', { url: 'http://10.0.0.1/v1' });
    const unresolvable = await runAs(key, { task_definition_id: 'unresolvable', input: {} });
    expect(unresolvable.task.error).toBe("cannot resolve host the definition's host");
    const refused = await runAs(key, { task_definition_id: 'private', input: {} });
    expect(refused.task.error).toMatch(/^refusing to call the definition's host: /);
    for (const text of [JSON.stringify(unresolvable), JSON.stringify(refused)]) {
      expect(text).not.toContain('internal-billing');
      expect(text).not.toContain('10.0.0.1');
    }
    // nor the address a socket error quotes (allow-listed, nothing listening)
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await putDefinition(key, 'closed', { url: `http://localhost:${port}/private` });
    const refusedConnection = await runAs(key, { task_definition_id: 'closed', input: {} });
    expect(refusedConnection.task.status).toBe('FAILED');
    expect(refusedConnection.task.error).toMatch(/ECONNREFUSED the definition's address/);
    expect(JSON.stringify(refusedConnection)).not.toContain(String(port));
  });
});

describe("a configured definition's call and input.timeout_ms", () => {
  it('ignores it (the input only fills placeholders and gives the body): one POST, answered', async () => {
    const { key } = await newTenant(fixture.tdb.db);
    await putDefinition(key, 'slow.post', { method: 'POST', url: `${upstreamUrl}/slow-post` });
    for (const timeout_ms of ['abc', -5, 0, 1]) {
      const before = hitsOn('/slow-post');
      const { task } = await runAs(key, { task_definition_id: 'slow.post', input: { timeout_ms, body: { n: 1 } } });
      expect(task.status, `${timeout_ms}: ${task.error}`).toBe('COMPLETED');
      expect(task.output.body, String(timeout_ms)).toBe('done');
      expect(hitsOn('/slow-post') - before, String(timeout_ms)).toBe(1);
    }
  });
});

describe('framing, hop-by-hop and proxy headers', () => {
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
  it.each([
    ['content-length', '0'], ['Transfer-Encoding', 'chunked'], ['CONNECTION', 'keep-alive'], ['host', 'other.example'],
    ['upgrade', 'websocket'], ['keep-alive', 'timeout=5'], ['TE', 'trailers'], ['trailer', 'x-a'], ['expect', '100-continue'],
    ['Proxy-Authorization', 'Basic eA=='],
  ])('refuses %s in an http_request input before anything is sent', async (name, value) => {
    const { key } = await newTenant(fixture.tdb.db);
    const before = hits.length;
    const { task } = await runAs(key, {
      task_definition_id: 'http_request', retry_policy: { max_retries: 2, retry_interval_ms: 10 },
      input: { url: `${upstreamUrl}/framing`, method: 'POST', headers: { [name]: value }, body: smuggled },
    });
    expect(task.status).toBe('FAILED');
    expect(task.attempts).toBe(1);
    expect(task.error).toContain(`header "${name}" cannot be set`);
    expect(hits.length - before).toBe(0);
    expect(hitsOn('/smuggled')).toBe(0);
  });

  it("refuses them in a definition's config headers too, when the definition is written", async () => {
    const { key } = await newTenant(fixture.tdb.db);
    const res = await fixture.server.call('PUT', '/api/v1/definitions/framed', {
      kind: 'http', input_schema: { type: 'object' }, config: { method: 'POST', url: `${upstreamUrl}/framed`, headers: { 'Content-Length': '0' } },
    }, { key });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { path: 'config.headers.Content-Length' } });
    expect(res.body.error.message).toContain('config.headers.Content-Length cannot be set');
    expect((await fixture.server.call('GET', '/api/v1/definitions/framed', undefined, { key })).status).toBe(404);
    expect(hitsOn('/framed')).toBe(0);
  });

  it('still sends ordinary headers', async () => {
    const { key } = await newTenant(fixture.tdb.db);
    const { task } = await runAs(key, {
      task_definition_id: 'http_request', input: { url: `${upstreamUrl}/plain`, method: 'POST', headers: { 'x-contentlength': '1', 'content-type': 'text/plain' }, body: 'hi' },
    });
    expect(task.status, task.error).toBe('COMPLETED');
    expect(hits.filter((h) => h.url === '/plain').map((h) => h.body)).toEqual(['hi']);
  });
});

describe('what the call sends and what its answer stores', () => {
  it("sends the caller's Content-Type and User-Agent in any case, not the defaults beside them", async () => {
    const { key } = await newTenant(fixture.tdb.db);
    const { task } = await runAs(key, {
      task_definition_id: 'http_request',
      input: { url: `${upstreamUrl}/typed`, method: 'PATCH', headers: { 'Content-Type': 'application/merge-patch+json', 'User-Agent': 'mine/1' }, body: { a: 1 } },
    });
    expect(task.status, task.error).toBe('COMPLETED');
    await putDefinition(key, 'typed.post', { method: 'POST', url: `${upstreamUrl}/typed-def`, headers: { 'CONTENT-TYPE': 'application/vnd.api+json' } });
    expect((await runAs(key, { task_definition_id: 'typed.post', input: { body: { data: {} } } })).task.status).toBe('COMPLETED');
    const sent = hits.filter((h) => h.url.startsWith('/typed')).map((h) => [h.headers['content-type'], h.headers['user-agent']]);
    expect(sent).toEqual([['application/merge-patch+json', 'mine/1'], ['application/vnd.api+json', 'taskgate']]);
  });

  it('stores a JSON null answer as null, not as the text "null"', async () => {
    const { key } = await newTenant(fixture.tdb.db);
    const { task } = await runAs(key, { task_definition_id: 'http_request', input: { url: `${upstreamUrl}/null` } });
    expect(task.status, task.error).toBe('COMPLETED');
    expect(task.output.body).toBeNull();
  });

  it('waits out a Retry-After given as an HTTP date', async () => {
    const { key } = await newTenant(fixture.tdb.db);
    const { task, events } = await runAs(key, { task_definition_id: 'http_request', input: { url: `${upstreamUrl}/maintenance` }, retry_policy: { max_retries: 1, retry_interval_ms: 10 } });
    expect(task.status, task.error).toBe('COMPLETED');
    const retrying = (JSON.parse(events).events as any[]).find((e) => e.type === 'RETRYING');
    // the date has whole seconds: 2-3 s from when it was sent
    expect(retrying.payload.delay_ms).toBeGreaterThan(1_500);
    expect(retrying.payload.delay_ms).toBeLessThanOrEqual(3_000);
  });
});
