// Agent tasks end to end: a real Taskgate server (startServer, real PGlite, real worker) with the
// fake OpenAI server configured as its provider, driven over HTTP like a client would.
import OpenAI from 'openai';
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { openTestDb } from '../helpers/db.js';
import { startTestServer, until, waitForTask, type TestServer, ADMIN_KEY } from '../helpers/server.js';
import { tenantDefinitionsUpsert } from '../../src/storage/queries/definitions.js';
import { useAgentServer } from '../helpers/agent-server.js';

const openaiEnv = (baseUrl: string) => ({ OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: baseUrl });
const fx = useAgentServer(openaiEnv);

async function submit(body: Record<string, unknown>, srv: TestServer = fx.server) {
  const res = await srv.call('POST', '/api/v1/tasks', body);
  expect(res.status, res.text).toBe(200);
  return res.body as { task_id: string; session_id: string };
}

async function events(taskId: string): Promise<any[]> {
  const res = await fx.server.call('GET', `/api/v1/tasks/${taskId}/events?limit=200`);
  return res.body.events;
}

describe('agent tasks over HTTP', () => {
  it('completes a query with the provider answer, usage, cost, model and events', async () => {
    fx.oai.script({ kind: 'text', text: 'The answer is 42.', usage: { prompt_tokens: 1200, completion_tokens: 300 } });
    const { task_id, session_id } = await submit({ query: 'What is the answer?', mode: 'simple' });
    const task = await waitForTask(fx.server, task_id);
    expect(task.status).toBe('COMPLETED');
    expect(task.result).toBe('The answer is 42.');
    // gpt-4o (medium tier default): 1200 × $2.50/M + 300 × $10/M
    expect(task.usage).toEqual({ input_tokens: 1200, output_tokens: 300, total_tokens: 1500, estimated_cost: 0.006 });
    expect(task.model_used).toBe('gpt-4o');
    expect(task.provider).toBe('openai');
    expect(task.metadata.model_breakdown['gpt-4o']).toMatchObject({ executions: 1, total_tokens: 1500, cost_usd: 0.006, percentage: 100 });
    expect(task.metadata).toMatchObject({ mode: 'simple', mode_source: 'request' });
    expect(fx.oai.requests[0]!.body.model).toBe('gpt-4o');
    expect(fx.oai.requests[0]!.headers.authorization).toBe('Bearer sk-upstream');

    const types = (await events(task_id)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['WORKFLOW_STARTED', 'AGENT_STARTED', 'LLM_PROMPT', 'LLM_OUTPUT', 'AGENT_COMPLETED', 'WORKFLOW_COMPLETED', 'STREAM_END']));
    expect(types).not.toContain('LLM_PARTIAL');
    expect(types.indexOf('LLM_OUTPUT')).toBeLessThan(types.indexOf('WORKFLOW_COMPLETED'));
    const out = (await events(task_id)).find((e) => e.type === 'LLM_OUTPUT');
    expect(out.payload.usage).toEqual({ input_tokens: 1200, output_tokens: 300, total_tokens: 1500, estimated_cost: 0.006 });

    const list = await fx.server.call('GET', `/api/v1/tasks?session_id=${session_id}`);
    expect(list.body.tasks[0].total_token_usage).toEqual({ total_tokens: 1500, cost_usd: 0.006, prompt_tokens: 1200, completion_tokens: 300 });
    const { rows } = await fx.tdb.db.query<{ tokens_used: string; cost_usd: number }>('SELECT tokens_used::text, cost_usd FROM sessions WHERE id = $1', [session_id]);
    expect(rows[0]).toEqual({ tokens_used: '1500', cost_usd: 0.006 });
  });

  it('an answer in a ```json fence is parsed into output and response alike; prose has neither', async () => {
    fx.oai.script({ kind: 'text', text: '```json\n{"a": 1, "b": [2]}\n```' }, { kind: 'text', text: 'just words' });
    const fenced = await waitForTask(fx.server, (await submit({ query: 'json please', mode: 'simple' })).task_id);
    expect([fenced.output, fenced.response]).toEqual([{ a: 1, b: [2] }, { a: 1, b: [2] }]);
    const prose = await waitForTask(fx.server, (await submit({ query: 'words please', mode: 'simple' })).task_id);
    expect([prose.result, prose.output, prose.response]).toEqual(['just words', null, null]);
  });

  it('streams token deltas live over SSE as thread.message.delta, before the call has finished', async () => {
    let open!: () => void;
    let finish!: () => void;
    const gates = { 0: new Promise<void>((r) => (open = r)), 3: new Promise<void>((r) => (finish = r)) };
    fx.oai.script({ kind: 'text', text: 'alpha beta gamma delta', gates });
    const { task_id } = await submit({ query: 'stream me', mode: 'simple' });
    const res = await fetch(`${fx.server.url}/api/v1/stream/sse?workflow_id=${task_id}`, { headers: { 'x-api-key': ADMIN_KEY } });
    expect(res.status).toBe(200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    const next = async (): Promise<{ event: string; data: string }> => {
      for (;;) {
        const end = buf.indexOf('\n\n');
        if (end >= 0) {
          const raw = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const event = /^event: (.*)$/m.exec(raw)?.[1];
          const data = /^data: (.*)$/m.exec(raw)?.[1];
          if (event && data !== undefined) return { event, data };
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buf += value;
      }
    };
    const frames: { event: string; data: string }[] = [];
    const until = async (pred: (f: { event: string; data: string }) => boolean) => {
      for (;;) {
        const f = await next();
        frames.push(f);
        if (pred(f)) return f;
      }
    };
    await until((f) => f.event === 'LLM_PROMPT');
    open(); // the provider now sends three deltas and holds the fourth
    const first = await until((f) => f.event === 'thread.message.delta');
    // the provider has not finished its answer, yet a delta is already at the client
    expect(['alpha ', 'beta ', 'gamma ']).toContain(JSON.parse(first.data).delta);
    expect(JSON.parse(first.data)).toMatchObject({ workflow_id: task_id, type: 'LLM_PARTIAL' });
    finish();
    await until((f) => f.event === 'done');
    await reader.cancel();
    const names = frames.map((f) => f.event);
    expect(names.indexOf('thread.message.completed')).toBeGreaterThan(names.lastIndexOf('thread.message.delta'));
    expect(JSON.parse(frames.find((f) => f.event === 'thread.message.completed')!.data).response).toBe('alpha beta gamma delta');
    expect(frames.at(-1)).toEqual({ event: 'done', data: '[DONE]' });
  });

  it('routes tier and override to the model the provider sees, and rejects unknown ones with 400', async () => {
    // the top-level field wins over context's, and the stored context shows what the task ran with
    const a = await submit({ query: 'q', mode: 'simple', model_tier: 'small', context: { mode: 'complex', model_tier: 'large', topic: 't' } });
    const b = await submit({ query: 'q', mode: 'simple', model_override: 'gpt-4.1' });
    const ta = await waitForTask(fx.server, a.task_id);
    await waitForTask(fx.server, b.task_id);
    expect(fx.oai.requests.map((r) => r.body.model).sort()).toEqual(['gpt-4.1', 'gpt-4o-mini']);
    expect(ta.context).toEqual({ mode: 'simple', model_tier: 'small', topic: 't' });
    expect(ta.mode).toBe('simple');
    const bad = await fx.server.call('POST', '/api/v1/tasks', { query: 'q', model_override: 'gpt-99' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { path: 'model_override' } });
    const badProvider = await fx.server.call('POST', '/api/v1/tasks', { query: 'q', provider_override: 'gemini' });
    expect(badProvider.status).toBe(400);
    expect(badProvider.body.error.message).toContain('gemini');
  });

  it('a second task in the same session sends the first turn as history', async () => {
    fx.oai.script({ kind: 'text', text: 'Nice to meet you, Ada.' });
    const first = await submit({ query: 'My name is Ada.', mode: 'simple' });
    await waitForTask(fx.server, first.task_id);
    fx.oai.script({ kind: 'text', text: 'Your name is Ada.' });
    const second = await submit({ query: 'What is my name?', mode: 'simple', session_id: first.session_id });
    const task = await waitForTask(fx.server, second.task_id);
    expect(task.result).toBe('Your name is Ada.');
    expect(fx.oai.requests[1]!.body.messages.slice(1)).toEqual([
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Nice to meet you, Ada.' },
      { role: 'user', content: 'What is my name?' },
    ]);
  });

  it('enforces a session token budget: BUDGET_THRESHOLD at 80 %, then a clear failure', async () => {
    fx.oai.script({ kind: 'text', text: 'ok', usage: { prompt_tokens: 80, completion_tokens: 5 } });
    const first = await submit({ query: 'spend', mode: 'simple', context: { token_budget: 100 } });
    expect((await waitForTask(fx.server, first.task_id)).status).toBe('COMPLETED');
    const threshold = (await events(first.task_id)).find((e) => e.type === 'BUDGET_THRESHOLD');
    expect(threshold.payload).toEqual({ tokens_used: 85, token_budget: 100, percent: 85 });
    const session = await fx.server.call('GET', `/api/v1/sessions/${first.session_id}`);
    expect(session.body).toMatchObject({ token_budget: 100, tokens_used: 85 });
    const second = await submit({ query: 'spend more', mode: 'simple', session_id: first.session_id });
    const failed = await waitForTask(fx.server, second.task_id);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(/^session token budget exceeded: 85 of 100 tokens used/);
    expect(fx.oai.requests).toHaveLength(1);
  });

  it('a task that fails after paying for calls reports what it spent (the call that crossed the budget)', async () => {
    fx.oai.script({ kind: 'text', text: 'too long', usage: { prompt_tokens: 150, completion_tokens: 10 } });
    const { task_id } = await submit({ query: 'spend it all', mode: 'simple', context: { token_budget: 100 } });
    const failed = await waitForTask(fx.server, task_id);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(/budget exceeded/);
    expect(failed.usage).toMatchObject({ input_tokens: 150, output_tokens: 10, total_tokens: 160 });
  });

  it('runs a tool round trip and a run_task child task', async () => {
    fx.oai.script(
      { kind: 'tool_calls', calls: [{ id: 'c1', name: 'calculator', arguments: { expression: '19.99 * 3' } }] },
      { kind: 'tool_calls', calls: [{ id: 'c2', name: 'run_task', arguments: { task_definition_id: 'calculate-order-total', input: { orderId: 'o-1', items: [{ id: 'a', quantity: 3, price: 19.99 }], taxRate: 0.1 } } }] },
      { kind: 'text', text: 'Total with tax: 65.97' },
    );
    const { task_id } = await submit({ query: 'Price 3 items at 19.99 with 10% tax', mode: 'standard' });
    const task = await waitForTask(fx.server, task_id);
    expect(task.status).toBe('COMPLETED');
    expect(task.result).toBe('Total with tax: 65.97');
    expect(fx.oai.requests[1]!.body.messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'c1', content: '59.97' });
    expect(JSON.parse(fx.oai.requests[2]!.body.messages.at(-1).content)).toEqual({ subtotal: 59.97, tax: 6, total: 65.97 });
    const children = await fx.server.call('GET', `/api/v1/tasks?workflow_instance_id=${task_id}`);
    expect(children.body.tasks).toHaveLength(1);
    expect(children.body.tasks[0]).toMatchObject({ task_definition_id: 'calculate-order-total', status: 'COMPLETED' });
    const types = (await events(task_id)).map((e) => e.type);
    expect(types.filter((t) => t === 'TOOL_INVOKED')).toHaveLength(2);
    expect(types.filter((t) => t === 'TOOL_OBSERVATION')).toHaveLength(2);
  });

  it('run_task finds a definition another process created a moment ago (this one has not heard of it)', async () => {
    const me = (await fx.server.call('GET', '/api/v1/auth/me')).body;
    await tenantDefinitionsUpsert(fx.tdb.db, { tenantId: me.tenant_id, id: 'late.ask', definition: { kind: 'approval', name: 'late ask' }, maxPerTenant: 10 });
    expect(fx.server.registry.get(me.tenant_id, 'late.ask')).toBeUndefined();
    fx.oai.script(
      { kind: 'tool_calls', calls: [{ id: 'l1', name: 'run_task', arguments: { task_definition_id: 'late.ask', input: { message: 'ok?' } } }] },
      { kind: 'text', text: 'asked' },
    );
    const { task_id } = await submit({ query: 'ask the late one', mode: 'standard' });
    let child: any;
    await until(async () => (child = (await fx.server.call('GET', `/api/v1/tasks?workflow_instance_id=${task_id}`)).body.tasks[0]) !== undefined, 'the child task', 20_000);
    expect(child).toMatchObject({ task_definition_id: 'late.ask' });
    let approval: any;
    const pending = async () => (await fx.server.call('GET', '/api/v1/approvals?status=pending&limit=100')).body.approvals.find((a: any) => a.workflow_id === child.task_id);
    await until(async () => (approval = await pending()) !== undefined, "the child's approval", 20_000);
    expect((await fx.server.call('POST', '/api/v1/approvals/decision', { workflow_id: child.task_id, approval_id: approval.approval_id, approved: true })).status).toBe(200);
    const task = await waitForTask(fx.server, task_id);
    expect({ status: task.status, result: task.result }).toEqual({ status: 'COMPLETED', result: 'asked' });
  });

  it("passes the submitting request's traceparent to the provider and to http_fetch", async () => {
    const seen: (string | undefined)[] = [];
    const upstream = createServer((req, res) => {
      seen.push(req.headers.traceparent as string | undefined);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('fetched');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(upstream.address() as { port: number }).port}/page`;
    // its own database: the main server's worker (no allow-list) must not take this task
    const ownDb = await openTestDb();
    const traced = await startTestServer(ownDb.db, { ...openaiEnv(fx.oai.baseUrl), TASKGATE_HTTP_ALLOW_LIST: '127.0.0.0/8' });
    try {
      fx.oai.script(
        { kind: 'tool_calls', calls: [{ id: 'f1', name: 'http_fetch', arguments: { url } }] },
        { kind: 'text', text: 'The page says fetched.' },
      );
      const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const res = await traced.call('POST', '/api/v1/tasks', { query: 'What does the page say?', mode: 'standard' }, { headers: { traceparent: tp } });
      expect(res.status, res.text).toBe(200);
      const task = await waitForTask(traced, res.body.task_id);
      expect(task.status, JSON.stringify(task)).toBe('COMPLETED');
      expect(fx.oai.requests.map((r) => r.headers.traceparent)).toEqual([tp, tp]);
      expect(seen).toEqual([tp]);
    } finally {
      await traced.close();
      await ownDb.close();
      upstream.close();
    }
  });

  it('retries a 429 after its Retry-After', async () => {
    fx.oai.script({ kind: 'error', status: 429, headers: { 'retry-after': '1' }, type: 'rate_limit_error' }, { kind: 'text', text: 'after the wait' });
    const { task_id } = await submit({ query: 'q', mode: 'simple' });
    const task = await waitForTask(fx.server, task_id);
    expect(task.result).toBe('after the wait');
    expect(task.attempts).toBe(1);
    expect(fx.oai.requests).toHaveLength(2);
    const retry = (await events(task_id)).find((e) => e.type === 'RETRYING');
    expect(retry.payload).toMatchObject({ delayMs: 1000, delay_ms: 1000, provider: 'openai', call_id: 'lead/llm-1' });
  });

  it('a task waiting for its retry shows what its attempt spent, and keeps it when cancelled (the session was charged)', async () => {
    fx.oai.script(
      { kind: 'tool_calls', calls: [{ name: 'calculator', arguments: { expression: '6*7' } }], usage: { prompt_tokens: 20, completion_tokens: 10 } },
      { kind: 'error', status: 429, headers: { 'retry-after': '600' }, type: 'rate_limit_error' },
    );
    const { task_id, session_id } = await submit({ query: 'compute, then wait for the provider', mode: 'standard' });
    const waiting = await waitForTask(fx.server, task_id, (t) => t.status === 'QUEUED' && t.attempts === 1);
    expect(waiting.usage).toMatchObject({ input_tokens: 20, output_tokens: 10, total_tokens: 30 });
    expect((await fx.server.call('POST', `/api/v1/tasks/${task_id}/cancel`, {})).status).toBe(202);
    const task = await waitForTask(fx.server, task_id);
    expect([task.status, task.usage?.total_tokens]).toEqual(['CANCELLED', 30]);
    const { rows } = await fx.tdb.db.query<{ tokens_used: string }>('SELECT tokens_used::text FROM sessions WHERE id = $1', [session_id]);
    expect(rows[0]!.tokens_used).toBe('30');
  });

  it('cancelling mid-stream closes the upstream connection and ends CANCELLED', async () => {
    fx.oai.script({ kind: 'text', text: 'a b c d', pauseAfter: 1, resume: new Promise<void>(() => undefined) });
    const { task_id } = await submit({ query: 'long', mode: 'simple' });
    await fx.oai.waitForRequests(1);
    const res = await fx.server.call('POST', `/api/v1/tasks/${task_id}/cancel`, { reason: 'enough' });
    expect(res.status).toBe(202);
    await fx.oai.requests[0]!.closed;
    const task = await waitForTask(fx.server, task_id);
    expect(task.status).toBe('CANCELLED');
  });

  it('runs the email_draft template from its args', async () => {
    fx.oai.script({ kind: 'text', text: 'Subject: Launch\n\nHi Bob, we ship Monday.' });
    const { task_id } = await submit({ task_definition_id: 'email_draft', args: { recipient: 'bob@example.com', subject: 'Launch', content: 'We ship Monday.', tone: 'friendly' } });
    const task = await waitForTask(fx.server, task_id);
    expect(task.status).toBe('COMPLETED');
    expect(task.result).toContain('we ship Monday');
    expect(task.output).toBeNull();
    expect(fx.oai.requests[0]!.body.model).toBe('gpt-4o-mini');
    expect(fx.oai.requests[0]!.body.messages.at(-1).content).toContain('Tone: friendly');
    const bad = await fx.server.call('POST', '/api/v1/tasks', { task_definition_id: 'email_draft', args: { recipient: 'not an email', subject: 'x', content: 'y' } });
    expect(bad.status).toBe(422);
  });

  it('OpenAI client: /v1/models and /v1/chat/completions, stream and not', async () => {
    const client = new OpenAI({ apiKey: ADMIN_KEY, baseURL: `${fx.server.url}/v1`, maxRetries: 0 });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(['taskgate', 'taskgate-small', 'gpt-4o']));

    fx.oai.script({ kind: 'text', text: 'Plain answer.', usage: { prompt_tokens: 11, completion_tokens: 2 } });
    const { data, response } = await client.chat.completions.create({ model: 'taskgate-small', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(data.choices[0]!.message.content).toBe('Plain answer.');
    expect(data.usage).toEqual({ prompt_tokens: 11, completion_tokens: 2, total_tokens: 13 });
    const taskId = response.headers.get('x-workflow-id')!;
    const task = await fx.server.call('GET', `/api/v1/tasks/${taskId}`);
    expect(task.body).toMatchObject({ status: 'COMPLETED', result: 'Plain answer.', model_used: 'gpt-4o-mini' });

    fx.oai.script({ kind: 'text', text: 'streamed words here', usage: { prompt_tokens: 5, completion_tokens: 3 } });
    const { data: stream, response: streamed } = await client.chat.completions.create(
      { model: 'taskgate', messages: [{ role: 'user', content: 'again' }], stream: true, stream_options: { include_usage: true } },
      { headers: { 'X-Session-ID': response.headers.get('x-session-id')! } },
    ).withResponse();
    // written past Fastify's hooks, the stream still carries every security header
    expect(streamed.headers.get('content-security-policy')).toMatch(/^default-src 'none'/);
    expect(streamed.headers.get('x-frame-options')).toBe('DENY');
    expect(streamed.headers.get('x-content-type-options')).toBe('nosniff');
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('streamed words here');
    expect(chunks.filter((c) => (c.choices[0]?.delta?.content ?? '') !== '').length).toBeGreaterThan(1);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
    // the session continued: the first chat turn was sent as history
    expect(fx.oai.requests[1]!.body.messages.slice(1, 3)).toEqual([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'Plain answer.' }]);
  });
});

describe('durability across a restart', () => {
  it('a restarted server replays finished LLM calls instead of paying for them again', async () => {
    let release!: () => void;
    fx.oai.script(
      { kind: 'tool_calls', calls: [{ name: 'calculator', arguments: { expression: '6*7' } }], usage: { prompt_tokens: 10, completion_tokens: 2 } },
      { kind: 'text', text: 'never finished', pauseAfter: 1, resume: new Promise<void>((r) => (release = r)) },
    );
    const { task_id } = await submit({ query: 'compute', mode: 'standard' });
    await fx.oai.waitForRequests(2);
    await fx.server.close(); // shutdown: the running attempt is aborted and released
    release();
    fx.oai.script({ kind: 'text', text: '42', usage: { prompt_tokens: 20, completion_tokens: 1 } });
    await fx.restartServer();
    const task = await waitForTask(fx.server, task_id);
    expect(task.status).toBe('COMPLETED');
    expect(task.result).toBe('42');
    expect(fx.oai.requests).toHaveLength(3); // call 1 (tool call) was not repeated
    expect(task.usage).toMatchObject({ input_tokens: 30, output_tokens: 3 });
    const { rows } = await fx.tdb.db.query<{ name: string; runs: number }>('SELECT name, runs FROM task_steps WHERE task_id = $1 ORDER BY name', [task_id]);
    expect(rows).toEqual(expect.arrayContaining([{ name: 'lead/llm-1', runs: 1 }, { name: 'lead/tool-1-1', runs: 1 }, { name: 'lead/llm-2', runs: 2 }]));
  }, 30_000);
});

describe('without a provider', () => {
  it('answers 422 LLM_NOT_CONFIGURED at submit for agent tasks and LLM templates', async () => {
    const bare = await startTestServer(fx.tdb.db, {}, { flags: { role: 'api' } });
    try {
      const res = await bare.call('POST', '/api/v1/tasks', { query: 'hello' });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('LLM_NOT_CONFIGURED');
      expect(res.body.error.message).toContain('OPENAI_API_KEY');
      const tmpl = await bare.call('POST', '/api/v1/tasks', { task_definition_id: 'email_draft', args: { recipient: 'a@b.co', subject: 's', content: 'c' } });
      expect(tmpl.status).toBe(422);
      expect(tmpl.body.error.code).toBe('LLM_NOT_CONFIGURED');
      const ok = await bare.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} });
      expect(ok.status).toBe(200);
      const chat = await bare.call('POST', '/v1/chat/completions', { model: 'taskgate', messages: [{ role: 'user', content: 'x' }] });
      expect(chat.status).toBe(422);
      expect(chat.body.error.code).toBe('llm_not_configured');
      // a malformed request is a 400 first, as with a provider configured
      const bad = await bare.call('POST', '/v1/chat/completions', { model: 'gpt-4o' });
      expect(bad.status, bad.text).toBe(400);
      expect(bad.body.error).toMatchObject({ type: 'invalid_request_error', param: 'messages' });
    } finally {
      await bare.close();
    }
  }, 30_000);
});
