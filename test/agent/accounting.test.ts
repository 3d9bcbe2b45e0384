// Model names, usage, cost and the session account of agent tasks, end to end: a real Taskgate
// server (real database, real worker) whose provider is the fake OpenAI server, driven over HTTP.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { newTenant, startTestServer, waitForTask, type TestServer } from '../helpers/server.js';
import { useAgentServer } from '../helpers/agent-server.js';
import { agentSessionAddUsage, agentSessionTurns } from '../../src/storage/queries/agent.js';
import { estimateTokens } from '../../src/executors/agent/runtime.js';
import { AGENT_SYSTEM } from '../../src/executors/agent/prompts.js';

/** Tiers and prices as a deployment would write them; `local-model` is served but has no price. */
function llmFile(baseUrl: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'tg-acct-')), 'llm.json');
  writeFileSync(path, JSON.stringify({
    providers: [{ name: 'openai', type: 'openai', base_url: baseUrl, api_key: 'sk-upstream', models: ['local-model'] }],
    tiers: { small: ['gpt-4o-mini'], medium: ['gpt-4o'], large: ['gpt-4.1'] },
    prices: { 'gpt-4o': { input: 2.5, output: 10 } },
  }));
  return path;
}

const fx = useAgentServer((baseUrl) => ({ TASKGATE_LLM_CONFIG: llmFile(baseUrl) }));

/** One streamed OpenAI answer whose chunks report `model` (a provider names the snapshot it ran). */
function reportingModel(model: string, text: string, usage: { prompt_tokens: number; completion_tokens: number }) {
  const frame = (o: Record<string, unknown>) => `data: ${JSON.stringify({ id: 'chatcmpl-x', object: 'chat.completion.chunk', created: 1, model, ...o })}\n\n`;
  const body =
    frame({ choices: [{ index: 0, delta: { role: 'assistant', content: text }, finish_reason: null }] }) +
    frame({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
    frame({ choices: [], usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }) +
    'data: [DONE]\n\n';
  return { kind: 'raw' as const, contentType: 'text/event-stream', body };
}

describe('model names that are also Object.prototype properties', () => {
  it('__proto__, constructor and toString are unknown models (400 / 404), and nothing is polluted', async () => {
    for (const model of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const res = await fx.server.call('POST', '/api/v1/tasks', { query: 'hi', mode: 'simple', model_override: model });
      expect(res.status, `${model}: ${res.text}`).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { path: 'model_override' } });
      const chat = await fx.server.call('POST', '/v1/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }] });
      expect(chat.status, `${model}: ${chat.text}`).toBe(404);
      expect(chat.body.error).toMatchObject({ code: 'model_not_found', param: 'model' });
    }
    expect(fx.oai.requests).toHaveLength(0);
    expect(Object.prototype).not.toHaveProperty('executions');
    // another tenant's ordinary submit still works
    const other = await newTenant(fx.tdb.db);
    const ok = await fx.server.call('POST', '/api/v1/tasks', { query: 'hi', mode: 'simple' }, { key: other.key });
    expect(ok.status, ok.text).toBe(200);
    expect((await waitForTask(fx.server, ok.body.task_id, undefined, { key: other.key })).status).toBe('COMPLETED');
  });

  it('a provider that reports such a name gets its own model_breakdown entry, cost 0, no pollution', async () => {
    fx.oai.script(reportingModel('__proto__', 'odd', { prompt_tokens: 10, completion_tokens: 5 }));
    const { body } = await fx.server.call('POST', '/api/v1/tasks', { query: 'hi', mode: 'simple', model_override: 'local-model' });
    const task = await waitForTask(fx.server, body.task_id);
    expect(task.status, task.error).toBe('COMPLETED');
    expect(Object.prototype).not.toHaveProperty('executions');
    expect(Object.hasOwn(task.metadata.model_breakdown, '__proto__')).toBe(true);
    expect(task.metadata.model_breakdown['__proto__']).toMatchObject({ executions: 1, total_tokens: 15, cost_usd: 0 });
    expect(task.usage).toEqual({ input_tokens: 10, output_tokens: 5, total_tokens: 15, estimated_cost: 0 });
  });

  it('a tool call whose index is __proto__ or length is a tool call, not a write to Array.prototype', async () => {
    const frame = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const body =
      frame({ tool_calls: [{ index: '__proto__', id: 'p1', type: 'function', function: { name: 'calculator', arguments: '{"expression":"1+1"}' } }] }) +
      frame({ tool_calls: [{ index: 'length', id: 'p2', type: 'function', function: { name: 'calculator', arguments: '{"expression":"2+2"}' } }] }) +
      frame({}, 'tool_calls') + 'data: [DONE]\n\n';
    fx.oai.script({ kind: 'raw', contentType: 'text/event-stream', body }, { kind: 'text', text: 'two and four' });
    const { body: sub } = await fx.server.call('POST', '/api/v1/tasks', { query: 'add', mode: 'standard' });
    const task = await waitForTask(fx.server, sub.task_id);
    expect(task.status, task.error).toBe('COMPLETED');
    expect(Object.hasOwn(Array.prototype, 'arguments')).toBe(false);
    expect(Object.hasOwn(Array.prototype, 'id')).toBe(false);
    expect(fx.oai.requests[1]!.body.messages.filter((m: { role: string }) => m.role === 'tool').map((m: { content: string }) => m.content)).toEqual(['2', '4']);
  });

  it('a provider reporting "constructor" for an unpriced model costs 0, not NaN, and the session keeps counting', async () => {
    fx.oai.script(reportingModel('constructor', 'odd', { prompt_tokens: 10, completion_tokens: 5 }));
    const first = await fx.server.call('POST', '/api/v1/tasks', { query: 'hi', mode: 'simple', model_override: 'local-model' });
    const task = await waitForTask(fx.server, first.body.task_id);
    expect(task.status, task.error).toBe('COMPLETED');
    expect(task.usage.estimated_cost).toBe(0);
    fx.oai.script({ kind: 'text', text: 'priced', usage: { prompt_tokens: 1000, completion_tokens: 100 } });
    const second = await fx.server.call('POST', '/api/v1/tasks', { query: 'again', mode: 'simple', session_id: first.body.session_id });
    expect((await waitForTask(fx.server, second.body.task_id)).status).toBe('COMPLETED');
    const { rows } = await fx.tdb.db.query<{ cost_usd: number }>('SELECT cost_usd FROM sessions WHERE id = $1', [first.body.session_id]);
    expect(rows[0]!.cost_usd).toBeCloseTo(0.0035, 10);
    const session = await fx.server.call('GET', `/api/v1/sessions/${first.body.session_id}`);
    expect(session.body.cost_usd).toBeCloseTo(0.0035, 10);
  });
});

describe('a session account never holds a non-finite cost', () => {
  it('agentSessionAddUsage ignores NaN/Infinity; a row poisoned earlier heals and shows its tasks again', async () => {
    fx.oai.script({ kind: 'text', text: 'ok', usage: { prompt_tokens: 1000, completion_tokens: 100 } });
    const { body } = await fx.server.call('POST', '/api/v1/tasks', { query: 'hi', mode: 'simple' });
    expect((await waitForTask(fx.server, body.task_id)).status).toBe('COMPLETED');
    const sessionId = body.session_id as string;
    const read = async () => (await fx.tdb.db.query<{ tenant_id: string; cost_usd: number; tokens_used: string }>(
      'SELECT tenant_id, cost_usd, tokens_used::text FROM sessions WHERE id = $1', [sessionId])).rows[0]!;
    const { tenant_id: tenantId } = await read();
    for (const bad of [NaN, Infinity, -Infinity]) {
      await agentSessionAddUsage(fx.tdb.db, { tenantId, sessionId, tokens: bad, costUsd: bad });
    }
    expect(await read()).toMatchObject({ cost_usd: 0.0035, tokens_used: '1100' });

    await fx.tdb.db.query(`UPDATE sessions SET cost_usd = 'NaN' WHERE id = $1`, [sessionId]);
    expect((await fx.server.call('GET', `/api/v1/sessions/${sessionId}`)).body.cost_usd).toBe(0.0035);
    await agentSessionAddUsage(fx.tdb.db, { tenantId, sessionId, tokens: 10, costUsd: 0.001 });
    expect((await read()).cost_usd).toBe(0.001);
    expect((await fx.server.call('GET', `/api/v1/sessions/${sessionId}`)).body.cost_usd).toBe(0.0035);
  });
});

describe('cost of a call the provider answers under another name', () => {
  it('a gpt-4o request answered as gpt-4o-2024-08-06 costs gpt-4o prices, on the task and on the session', async () => {
    fx.oai.script(reportingModel('gpt-4o-2024-08-06', 'dated', { prompt_tokens: 1200, completion_tokens: 300 }));
    const { body } = await fx.server.call('POST', '/api/v1/tasks', { query: 'hi', mode: 'simple' });
    const task = await waitForTask(fx.server, body.task_id);
    expect(task.status, task.error).toBe('COMPLETED');
    expect(fx.oai.requests[0]!.body.model).toBe('gpt-4o');
    const cost = (1200 * 2.5 + 300 * 10) / 1e6;
    expect(task.usage).toEqual({ input_tokens: 1200, output_tokens: 300, total_tokens: 1500, estimated_cost: cost });
    // model_used and model_breakdown name the model that answered
    expect(task.model_used).toBe('gpt-4o-2024-08-06');
    expect(task.metadata.model_breakdown).toEqual({
      'gpt-4o-2024-08-06': { provider: 'openai', executions: 1, input_tokens: 1200, output_tokens: 300, total_tokens: 1500, cost_usd: cost, percentage: 100 },
    });
    const session = await fx.server.call('GET', `/api/v1/sessions/${body.session_id}`);
    expect(session.body).toMatchObject({ tokens_used: 1500, cost_usd: cost });
    const { rows } = await fx.tdb.db.query<{ cost_usd: number }>('SELECT cost_usd FROM sessions WHERE id = $1', [body.session_id]);
    expect(rows[0]!.cost_usd).toBe(cost);
  });
});

describe('context.token_budget at submit', () => {
  it('is an integer from 0 to 2147483647, else 400 naming context.token_budget; nothing is queued', async () => {
    for (const bad of [3_000_000_000, 2_147_483_648, -1, 1.5, '200', true, { n: 1 }]) {
      const res = await fx.server.call('POST', '/api/v1/tasks', { query: 'hi', mode: 'simple', context: { token_budget: bad } });
      expect(res.status, `${JSON.stringify(bad)}: ${res.text}`).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { path: 'context.token_budget' } });
      expect(res.body.error.message).toContain('2147483647');
    }
    const edge = await fx.server.call('POST', '/api/v1/tasks', { query: 'hi', mode: 'simple', context: { token_budget: 2_147_483_647 } });
    expect(edge.status, edge.text).toBe(200);
    expect((await waitForTask(fx.server, edge.body.task_id)).status).toBe('COMPLETED');
    const session = await fx.server.call('GET', `/api/v1/sessions/${edge.body.session_id}`);
    expect(session.body.token_budget).toBe(2_147_483_647);
    const absent = await fx.server.call('POST', '/api/v1/tasks', { query: 'hi', mode: 'simple', context: { token_budget: null } });
    expect(absent.status, absent.text).toBe(200);
    expect((await waitForTask(fx.server, absent.body.task_id)).status).toBe('COMPLETED');
  });
});

describe('session cost in the views', () => {
  it('is rounded to 1e-8 USD like task costs (0.1 + 0.2 shows 0.3)', async () => {
    fx.oai.script({ kind: 'text', text: 'a', usage: { prompt_tokens: 40_000, completion_tokens: 0 } });
    const first = await fx.server.call('POST', '/api/v1/tasks', { query: 'one', mode: 'simple' });
    expect((await waitForTask(fx.server, first.body.task_id)).usage.estimated_cost).toBe(0.1);
    fx.oai.script({ kind: 'text', text: 'b', usage: { prompt_tokens: 80_000, completion_tokens: 0 } });
    const second = await fx.server.call('POST', '/api/v1/tasks', { query: 'two', mode: 'simple', session_id: first.body.session_id });
    expect((await waitForTask(fx.server, second.body.task_id)).usage.estimated_cost).toBe(0.2);
    const sid = first.body.session_id as string;
    expect((await fx.server.call('GET', `/api/v1/sessions/${sid}`)).body.cost_usd).toBe(0.3);
    const list = await fx.server.call('GET', '/api/v1/sessions?limit=100');
    expect(list.body.sessions.find((s: { session_id: string }) => s.session_id === sid)).toMatchObject({ cost_usd: 0.3, total_cost_usd: 0.3 });
  });
});

describe('rate limits of /v1/chat/completions', () => {
  let rdb: TestDb;
  let limited: TestServer;
  beforeAll(async () => {
    rdb = await openTestDb();
    // 1 token a minute: no refill within the test, so counts are exact
    limited = await startTestServer(rdb.db, { TASKGATE_LLM_CONFIG: llmFile(fx.oai.baseUrl), TASKGATE_RATE_LIMIT_PER_MIN: '1', TASKGATE_RATE_LIMIT_BURST: '10' });
  }, 60_000);
  afterAll(async () => {
    await limited?.close();
    await rdb?.close();
  });

  it('a chat call takes one token, like a submit; the inner 429 reaches the client with its headers', async () => {
    const { key } = await newTenant(rdb.db);
    const remaining = (res: { headers: Headers }) => Number(res.headers.get('x-ratelimit-remaining'));
    const first = await limited.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} }, { key });
    expect(first.status, first.text).toBe(200);
    expect(remaining(first)).toBe(9);
    const chat = await limited.call('POST', '/v1/chat/completions', { model: 'taskgate', messages: [{ role: 'user', content: 'hi' }] }, { key });
    expect(chat.status, chat.text).toBe(200);
    expect(remaining(chat)).toBe(8);
    const next = await limited.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} }, { key });
    expect(remaining(next)).toBe(7);
    for (let i = 0; i < 7; i++) expect((await limited.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} }, { key })).status).toBe(200);
    const refused = await limited.call('POST', '/v1/chat/completions', { model: 'taskgate', messages: [{ role: 'user', content: 'hi' }] }, { key });
    expect(refused.status, refused.text).toBe(429);
    expect(refused.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
  });

  it("a client at its limit that disconnects still cancels its task (the cancel is the server's, not a request of its budget)", async () => {
    const { key } = await newTenant(rdb.db, ['admin']);
    fx.oai.script({ kind: 'text', text: 'a b c d', pauseAfter: 1, resume: new Promise<void>(() => undefined) });
    const ctl = new AbortController();
    const res = await fetch(`${limited.url}/v1/chat/completions`, {
      method: 'POST', signal: ctl.signal, headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify({ model: 'taskgate', messages: [{ role: 'user', content: 'long' }], stream: true }),
    });
    expect(res.status).toBe(200);
    const taskId = res.headers.get('x-workflow-id')!;
    const reader = res.body!.getReader();
    for (let text = ''; !text.includes('"content"'); ) text += new TextDecoder().decode((await reader.read()).value);
    // spend the rest of the write budget (the chat's submit took one of the 10)
    for (let i = 0; i < 9; i++) expect((await limited.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} }, { key })).status).toBe(200);
    expect((await limited.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} }, { key })).status).toBe(429);
    ctl.abort();
    // read from the database: polling over HTTP would spend this key's read budget
    const status = async () => (await rdb.db.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [taskId])).rows[0]?.status;
    for (let i = 0; (await status()) === 'RUNNING' && i < 500; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await status()).toBe('CANCELLED');
  });
});

describe('session history read', () => {
  it('reads each earlier turn cut to what the history budget could use, in SQL', async () => {
    const long = 'x'.repeat(100_000);
    fx.oai.script({ kind: 'text', text: long, chunks: [long] });
    const first = await fx.server.call('POST', '/api/v1/tasks', { query: 'write a lot', mode: 'simple' });
    expect((await waitForTask(fx.server, first.body.task_id)).status).toBe('COMPLETED');
    const sessionId = first.body.session_id as string;
    const { rows } = await fx.tdb.db.query<{ tenant_id: string }>('SELECT tenant_id FROM sessions WHERE id = $1', [sessionId]);
    const turns = await agentSessionTurns(fx.tdb.db, { tenantId: rows[0]!.tenant_id, sessionId, beforeTaskId: 'task_none', maxChars: 1_001 });
    expect(turns.map((t) => [t.query, t.result.length])).toEqual([['write a lot', 1_001]]);
    // a turn over the budget is dropped from the prompt as before (8,000 tokens = 32,000 chars)
    fx.oai.script({ kind: 'text', text: 'short' });
    const second = await fx.server.call('POST', '/api/v1/tasks', { query: 'and now?', mode: 'simple', session_id: sessionId });
    expect((await waitForTask(fx.server, second.body.task_id)).status).toBe('COMPLETED');
    expect(fx.oai.requests[1]!.body.messages.slice(1)).toEqual([{ role: 'user', content: 'and now?' }]);
  });
});

describe('session token budget across concurrent tasks', () => {
  it('five parallel tasks on a 200-token session: one call is made, the others fail with the budget error', async () => {
    const query = 'please spend tokens '.repeat(10);
    const est = estimateTokens([{ role: 'system', content: AGENT_SYSTEM }, { role: 'user', content: query }]);
    // one call's estimate fits the budget, two do not
    expect(est).toBeGreaterThan(100);
    expect(est).toBeLessThanOrEqual(200);
    fx.oai.otherwise(() => ({ kind: 'text', text: 'spent', usage: { prompt_tokens: 140, completion_tokens: 10 } }));
    const sid = `sess-race-${Date.now()}`;
    const submits = await Promise.all(
      Array.from({ length: 5 }, () => fx.server.call('POST', '/api/v1/tasks', { query, mode: 'simple', session_id: sid, context: { token_budget: 200 } })),
    );
    for (const s of submits) expect(s.status, s.text).toBe(200);
    const tasks = await Promise.all(submits.map((s) => waitForTask(fx.server, s.body.task_id)));
    const completed = tasks.filter((t) => t.status === 'COMPLETED');
    const failed = tasks.filter((t) => t.status === 'FAILED');
    expect(completed).toHaveLength(1);
    expect(failed).toHaveLength(4);
    for (const t of failed) expect(t.error).toMatch(/^session token budget exceeded: \d+ of 200 tokens used/);
    expect(fx.oai.requests).toHaveLength(1);
    // the reservation was settled to the call's real usage, and the refused ones left nothing behind
    const { rows } = await fx.tdb.db.query<{ tokens_used: string }>('SELECT tokens_used::text FROM sessions WHERE id = $1', [sid]);
    expect(rows[0]!.tokens_used).toBe('150');
    expect((await fx.server.call('GET', `/api/v1/sessions/${sid}`)).body).toMatchObject({ tokens_used: 150, token_budget: 200 });
  });

  it('a call that fails gives its reservation back', async () => {
    fx.oai.otherwise(() => ({ kind: 'error', status: 400, message: 'bad request' }));
    const { body } = await fx.server.call('POST', '/api/v1/tasks', { query: 'fail', mode: 'simple', context: { token_budget: 1000 } });
    const task = await waitForTask(fx.server, body.task_id);
    expect(task.status).toBe('FAILED');
    const { rows } = await fx.tdb.db.query<{ tokens_used: string }>('SELECT tokens_used::text FROM sessions WHERE id = $1', [body.session_id]);
    expect(rows[0]!.tokens_used).toBe('0');
  });
});
