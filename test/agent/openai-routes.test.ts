// The OpenAI-compatible routes, driven by the official `openai` client library, over a real
// listening Fastify server whose deps run the real agent executor against a fake provider.
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'node:http';
import { until } from '../helpers/server.js';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadLlmConfig, type LlmConfig } from '../../src/config/llm.js';
import { ApiError } from '../../src/contract/errors.js';
import type { SubmitTaskBody } from '../../src/contract/tasks.js';
import type { Principal } from '../../src/auth/scopes.js';
import { createAgentExecutor } from '../../src/executors/agent/index.js';
import { openaiRoutes, type FollowedEvent } from '../../src/api/routes/openai.js';
import { assertAgentTaskRunnable } from '../../src/api/chat-request.js';
import { ChatAnswer, type ChatTaskView } from '../../src/api/chat-answer.js';
import { MemoryTaskContext } from '../helpers/agent-context.js';
import { startFakeOpenAi, type FakeOpenAi } from '../helpers/fake-llm/index.js';

const principal: Principal = { kind: 'api_key', tenantId: 'ten_1', userId: 'user_1', subjectId: 'key_1', scopes: ['admin'], rateLimit: null };

/** A miniature engine: runs each submitted task with the agent executor in memory. */
class FakeEngine {
  readonly tasks = new Map<string, { body: SubmitTaskBody; ctx: MemoryTaskContext; view: ChatTaskView; events: FollowedEvent[]; wake: (() => void)[] }>();
  readonly cancelled: string[] = [];
  /** While set, a submit waits for it (a submit still in its transaction when the client leaves). */
  submitGate: Promise<void> | undefined;
  submitStarted: (() => void) | undefined;
  #n = 0;
  constructor(private readonly llm: LlmConfig) {}

  submit(body: SubmitTaskBody): { taskId: string; sessionId: string } {
    const taskId = `task_${++this.#n}`;
    const sessionId = body.session_id ?? `sess_${this.#n}`;
    assertAgentTaskRunnable(this.llm, { kind: 'agent', options: { model_tier: body.model_tier, model_override: body.model_override }, context: body.context ?? {} });
    const ctx = new MemoryTaskContext(taskId, principal.tenantId, principal.userId, sessionId);
    const t = { body, ctx, view: { status: 'RUNNING', result: null, error: null, usage: null, model_used: null } as ChatTaskView, events: [] as FollowedEvent[], wake: [] as (() => void)[] };
    this.tasks.set(taskId, t);
    let seq = 0;
    const push = (type: string, payload: Record<string, unknown> | null, message: string | null, ephemeral: boolean) => {
      t.events.push({ event: { workflow_id: taskId, type, payload, message, timestamp: new Date().toISOString(), seq: ephemeral ? 0 : ++seq }, ephemeral });
      t.wake.splice(0).forEach((w) => w());
    };
    ctx.onEvent((e) => push(e.type, e.payload ?? null, e.message ?? null, e.type === 'LLM_PARTIAL'));
    const spec = { id: taskId, kind: 'agent' as const, definition: undefined, query: body.query!, input: null, context: body.context ?? {}, options: { model_tier: body.model_tier, model_override: body.model_override }, mode: body.mode ?? 'simple', metadata: {} };
    void createAgentExecutor({ llm: this.llm })
      .run(spec, ctx)
      .then(
        (r) => Object.assign(t.view, { status: 'COMPLETED', result: r.result ?? null, usage: r.usage ?? null, model_used: r.model_used ?? null }),
        (err: Error) => Object.assign(t.view, { status: ctx.signal.aborted ? 'CANCELLED' : 'FAILED', error: err.message }),
      )
      .then(() => push('STREAM_END', null, null, false));
    return { taskId, sessionId };
  }

  async *follow(taskId: string, signal: AbortSignal): AsyncIterable<FollowedEvent> {
    const t = this.tasks.get(taskId)!;
    let i = 0;
    for (;;) {
      while (i < t.events.length) {
        const e = t.events[i++]!;
        yield e;
        if (e.event.type === 'STREAM_END') return;
      }
      if (signal.aborted) return;
      await new Promise<void>((r) => {
        t.wake.push(r);
        signal.addEventListener('abort', () => r(), { once: true });
      });
    }
  }
}

let oai: FakeOpenAi;
let llm: LlmConfig;
let app: FastifyInstance;
let engine: FakeEngine;
let base: string;
let client: OpenAI;

beforeAll(async () => {
  oai = await startFakeOpenAi();
  llm = { ...loadLlmConfig({ OPENAI_API_KEY: 'sk-up', OPENAI_BASE_URL: oai.baseUrl })!, maxRetries: 0 };
  engine = new FakeEngine(llm);
  app = Fastify({ forceCloseConnections: true });
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (req) => {
    if (req.headers.authorization !== 'Bearer sk-good') throw new ApiError('UNAUTHORIZED', 'Invalid, expired or revoked credentials', undefined, { 'www-authenticate': 'Bearer' });
    req.principal = principal;
  });
  await app.register(
    openaiRoutes({
      llm,
      createdAt: 1_700_000_000,
      submitAgentTask: async (_p, body) => {
        engine.submitStarted?.();
        await engine.submitGate;
        return engine.submit(body);
      },
      followTask: (_p, id, signal) => engine.follow(id, signal),
      getTask: async (_p, id) => engine.tasks.get(id)?.view,
      cancelTask: async (_p, id) => {
        engine.cancelled.push(id);
        engine.tasks.get(id)?.ctx.controller.abort(new Error('cancelled'));
      },
    }),
  );
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  client = new OpenAI({ apiKey: 'sk-good', baseURL: `${base}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await app.close();
  await oai.stop();
});
beforeEach(() => oai.reset());

describe('models', () => {
  it('lists tier aliases and configured models', async () => {
    const page = await client.models.list();
    const ids = page.data.map((m) => m.id);
    expect(ids.slice(0, 4)).toEqual(['taskgate', 'taskgate-small', 'taskgate-medium', 'taskgate-large']);
    expect(ids).toEqual(expect.arrayContaining(['gpt-4o-mini', 'gpt-4o', 'gpt-4.1']));
    expect(page.data.find((m) => m.id === 'gpt-4o')).toEqual({ id: 'gpt-4o', object: 'model', created: 1_700_000_000, owned_by: 'openai' });
  });

  it('retrieves one, and 404s unknown ones in OpenAI shape', async () => {
    expect((await client.models.retrieve('taskgate-large')).owned_by).toBe('taskgate');
    const err = await client.models.retrieve('gpt-99').catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.code).toBe('model_not_found');
  });

  it('answers 401 in OpenAI shape with the auth header', async () => {
    const res = await fetch(`${base}/v1/models`, { headers: { authorization: 'Bearer wrong' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await res.json()).toEqual({ error: { message: 'Invalid, expired or revoked credentials', type: 'authentication_error', param: null, code: 'invalid_api_key' } });
    const err = await new OpenAI({ apiKey: 'nope', baseURL: `${base}/v1`, maxRetries: 0 }).models.list().catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

describe('chat completions', () => {
  it('answers non-streaming with the provider text and usage; the tier picks the model', async () => {
    oai.script({ kind: 'text', text: 'Hi from the fake.', usage: { prompt_tokens: 30, completion_tokens: 4 } });
    const { data, response } = await client.chat.completions
      .create({ model: 'taskgate-small', messages: [{ role: 'system', content: 'Be nice.' }, { role: 'user', content: 'Hello' }] })
      .withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.model).toBe('taskgate-small');
    expect(data.choices[0]!.message).toMatchObject({ role: 'assistant', content: 'Hi from the fake.' });
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(data.usage).toEqual({ prompt_tokens: 30, completion_tokens: 4, total_tokens: 34 });
    const taskId = response.headers.get('x-workflow-id')!;
    expect(data.id).toBe(`chatcmpl-${taskId}`);
    expect(response.headers.get('x-session-id')).toMatch(/^sess_/);
    const up = oai.requests[0]!.body;
    expect(up.model).toBe('gpt-4o-mini');
    expect(up.messages[0].content).toContain('Be nice.');
    expect(up.messages.at(-1)).toEqual({ role: 'user', content: 'Hello' });
  });

  it('streams chunks: role first, content deltas, usage when asked, then [DONE]', async () => {
    oai.script({ kind: 'text', text: 'one two three', usage: { prompt_tokens: 7, completion_tokens: 3 } });
    const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'count' }], stream: true, stream_options: { include_usage: true } });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('one two three');
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'gpt-4o')).toBe(true);
    const stop = chunks.find((c) => c.choices[0]?.finish_reason === 'stop');
    expect(stop).toBeDefined();
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    expect(oai.requests[0]!.body.model).toBe('gpt-4o');
  });

  it("says usage: null on every chunk but the last with include_usage, as OpenAI does; no usage field without it", async () => {
    /** Every chunk of a raw streamed call, parsed: nothing between the frames and this test. */
    const streamed = async (includeUsage: boolean): Promise<Record<string, unknown>[]> => {
      oai.script({ kind: 'text', text: 'one two three', usage: { prompt_tokens: 7, completion_tokens: 3 } });
      const res = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST', headers: { authorization: 'Bearer sk-good', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'count' }], stream: true, stream_options: { include_usage: includeUsage } }),
      });
      expect(res.status).toBe(200);
      const data = (await res.text()).split('\n\n').filter((f) => f.startsWith('data: ')).map((f) => f.slice('data: '.length));
      expect(data.at(-1)).toBe('[DONE]');
      return data.slice(0, -1).map((d) => JSON.parse(d) as Record<string, unknown>);
    };
    const withUsage = await streamed(true);
    const last = withUsage.at(-1)!;
    expect([last.choices, last.usage]).toEqual([[], { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 }]);
    const rest = withUsage.slice(0, -1);
    // the role chunk, at least one content chunk, the finish chunk
    expect(rest.length).toBeGreaterThanOrEqual(3);
    for (const c of rest) expect(c).toHaveProperty('usage', null);

    const without = await streamed(false);
    expect(without.at(-1)!.choices).toEqual([expect.objectContaining({ finish_reason: 'stop' })]);
    for (const c of without) expect(c).not.toHaveProperty('usage');
  });

  it('streams the answer only: text a model writes before calling a tool is not sent, the answer call comes whole', async () => {
    oai.script(
      { kind: 'tool_calls', text: 'Let me compute that. ', calls: [{ name: 'calculator', arguments: { expression: '6*7' } }] },
      { kind: 'text', text: 'The answer is 42.' },
    );
    const stream = await client.chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: 'six times seven' }], stream: true, mode: 'standard' } as never);
    let content = '';
    for await (const c of stream as unknown as AsyncIterable<OpenAI.ChatCompletionChunk>) content += c.choices[0]?.delta?.content ?? '';
    expect(content).toBe('The answer is 42.');
    expect(oai.requests).toHaveLength(2);
  });

  it("passes on the provider's finish_reason length (its output limit), streaming or not; others are stop", async () => {
    oai.script({ kind: 'text', text: 'cut short', finishReason: 'length' });
    const data = await client.chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: 'long answer' }] });
    expect([data.choices[0]!.message.content, data.choices[0]!.finish_reason]).toEqual(['cut short', 'length']);

    oai.script({ kind: 'text', text: 'cut short', finishReason: 'length' });
    const stream = await client.chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: 'long answer' }], stream: true });
    const finishes: (string | null)[] = [];
    for await (const c of stream) if (c.choices[0]?.finish_reason) finishes.push(c.choices[0].finish_reason);
    expect(finishes).toEqual(['length']);

    // a value OpenAI's clients do not know is not passed on
    oai.script({ kind: 'text', text: 'odd', finishReason: 'eos_token' });
    const odd = await client.chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: 'odd' }] });
    expect(odd.choices[0]!.finish_reason).toBe('stop');
  });

  it('writes the raw SSE wire format', async () => {
    oai.script({ kind: 'text', text: 'raw' });
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-good', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'taskgate', messages: [{ role: 'user', content: 'x' }], stream: true }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    const frames = text.split('\n\n').filter(Boolean);
    expect(frames.every((f) => f.startsWith('data: '))).toBe(true);
    expect(JSON.parse(frames[0]!.slice(6)).choices[0].delta.role).toBe('assistant');
    expect(frames.at(-1)).toBe('data: [DONE]');
    expect(text).not.toContain('"usage"');
  });

  it('X-Session-ID continues a session and keeps only instructions from the request', async () => {
    oai.script({ kind: 'text', text: 'ok' });
    const { response } = await client.chat.completions
      .create(
        { model: 'taskgate', messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'old' }, { role: 'assistant', content: 'older' }, { role: 'user', content: 'new' }] },
        { headers: { 'X-Session-ID': 'sess_abc' } },
      )
      .withResponse();
    expect(response.headers.get('x-session-id')).toBe('sess_abc');
    const body = engine.tasks.get(response.headers.get('x-workflow-id')!)!.body;
    expect(body.session_id).toBe('sess_abc');
    expect(body.context).toEqual({ history: [{ role: 'system', content: 'S' }], source: 'openai' });
    oai.script({ kind: 'text', text: 'ok' });
    const { response: r2 } = await client.chat.completions
      .create({ model: 'taskgate', messages: [{ role: 'user', content: 'old' }, { role: 'assistant', content: 'older' }, { role: 'user', content: [{ type: 'text', text: 'new' }] }] })
      .withResponse();
    expect(engine.tasks.get(r2.headers.get('x-workflow-id')!)!.body.context).toEqual({ history: [{ role: 'user', content: 'old' }, { role: 'assistant', content: 'older' }], source: 'openai' });
    expect(oai.requests[1]!.body.messages.slice(1)).toEqual([{ role: 'user', content: 'old' }, { role: 'assistant', content: 'older' }, { role: 'user', content: 'new' }]);
  });

  it('rejects bad requests in OpenAI shape', async () => {
    const cases: [Record<string, unknown>, number, string | null][] = [
      [{ model: 'gpt-99', messages: [{ role: 'user', content: 'x' }] }, 404, 'model_not_found'],
      [{ messages: [{ role: 'user', content: 'x' }] }, 400, null],
      [{ model: 'taskgate', messages: [] }, 400, null],
      [{ model: 'taskgate', messages: [{ role: 'assistant', content: 'x' }] }, 400, null],
      [{ model: 'taskgate', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] }, 400, 'unsupported_parameter'],
      [{ model: 'taskgate', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 400, 'unsupported_content'],
      [{ model: 'taskgate', messages: [{ role: 'user', content: 'x' }], n: 2 }, 400, null],
      [{ model: 'taskgate', messages: [{ role: 'user', content: [{ type: 'text' }] }] }, 400, null],
      [{ model: 'taskgate', messages: [{ role: 'user', content: 'x' }], research_strategy: 5 }, 400, null],
      [{ model: 'taskgate', messages: [{ role: 'user', content: 'x' }], mode: ['simple'] }, 400, null],
    ];
    for (const [body, status, code] of cases) {
      const res = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer sk-good', 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status, JSON.stringify(body)).toBe(status);
      const json = (await res.json()) as { error: { type: string; code: string | null } };
      expect(json.error.type).toBe('invalid_request_error');
      expect(json.error.code).toBe(code);
      expect(JSON.stringify(json)).not.toContain('got text');
    }
    const bad = await client.chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'X-Session-ID': 'bad id!' } }).catch((e) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('refuses response_format other than text (structured-output helpers would get prose), submitting nothing; sampling parameters are taken', async () => {
    const before = engine.tasks.size;
    const formats = [{ type: 'json_object' }, { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string' } } } } }] as const;
    for (const response_format of formats) {
      const err = await client.chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: 'json please' }], response_format }).catch((e) => e);
      expect(err, response_format.type).toBeInstanceOf(OpenAI.BadRequestError);
      expect([err.type, err.code, err.param]).toEqual(['invalid_request_error', 'unsupported_parameter', 'response_format']);
      expect(err.message).toContain(response_format.type);
    }
    expect(engine.tasks.size).toBe(before);
    oai.script({ kind: 'text', text: 'plain' });
    const ok = await client.chat.completions.create({
      model: 'taskgate', messages: [{ role: 'user', content: 'text please' }], response_format: { type: 'text' },
      max_tokens: 5, max_completion_tokens: 5, temperature: 0.2, top_p: 0.9, stop: ['\n'], seed: 1,
    });
    expect(ok.choices[0]!.message.content).toBe('plain');
  });

  it('reports a failed task as a server error, streaming or not', async () => {
    oai.script({ kind: 'error', status: 400, message: 'context too long' });
    const err = await client.chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err.code).toBe('task_failed');
    expect(err.message).toContain('context too long');
    oai.script({ kind: 'error', status: 400, message: 'context too long' });
    const stream = await client.chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: 'x' }], stream: true });
    const failed = await (async () => {
      for await (const _ of stream) void _;
    })().catch((e) => e);
    expect(String(failed?.message ?? failed)).toContain('context too long');
  });

  it('a client that disconnects mid-stream cancels its task and the upstream call', async () => {
    oai.script({ kind: 'text', text: 'a b c d', pauseAfter: 1, resume: new Promise<void>(() => undefined) });
    const ctl = new AbortController();
    const stream = await client.chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: 'long' }], stream: true }, { signal: ctl.signal });
    for await (const c of stream) {
      if (c.choices[0]?.delta?.content) {
        ctl.abort();
        break;
      }
    }
    await oai.waitForRequests(1);
    await oai.requests[0]!.closed;
    expect(engine.cancelled.length).toBe(1);
  });

  it('a client that disconnects while its call is still being submitted cancels the task all the same', async () => {
    for (const stream of [false, true]) {
      oai.script({ kind: 'text', text: 'never read', pauseAfter: 0, resume: new Promise<void>(() => undefined) });
      let open!: () => void;
      engine.submitGate = new Promise<void>((r) => (open = r));
      const started = new Promise<void>((r) => (engine.submitStarted = r));
      const before = engine.cancelled.length;
      const req = request(`${base}/v1/chat/completions`, { method: 'POST', headers: { authorization: 'Bearer sk-good', 'content-type': 'application/json' } });
      req.on('error', () => undefined);
      req.end(JSON.stringify({ model: 'taskgate', messages: [{ role: 'user', content: 'bye' }], stream }));
      await started;
      req.destroy();
      await new Promise((r) => setTimeout(r, 100)); // the server has seen the connection close
      engine.submitGate = undefined;
      engine.submitStarted = undefined;
      open();
      await until(() => engine.cancelled.length === before + 1, `the task's cancel (stream ${stream})`);
    }
  });
});

describe('submit-time checks', () => {
  it('422 LLM_NOT_CONFIGURED without a provider; 400 for unknown overrides; definitions only when agent', () => {
    const t = { kind: 'agent', options: {}, context: {} };
    expect(() => assertAgentTaskRunnable(undefined, t)).toThrow(expect.objectContaining({ code: 'LLM_NOT_CONFIGURED', status: 422 }));
    expect(() => assertAgentTaskRunnable(undefined, { ...t, context: { disable_ai: true } })).not.toThrow();
    expect(() => assertAgentTaskRunnable(undefined, { ...t, kind: 'definition' }, 'function')).not.toThrow();
    expect(() => assertAgentTaskRunnable(undefined, { ...t, kind: 'definition' }, 'agent')).toThrow(/No LLM provider/);
    expect(() => assertAgentTaskRunnable(llm, { ...t, options: { model_override: 'zzz' } })).toThrow(expect.objectContaining({ code: 'VALIDATION_ERROR', details: { path: 'model_override', reason: 'unknown model' } }));
    expect(() => assertAgentTaskRunnable(llm, { ...t, options: { provider_override: 'zzz' } })).toThrow(expect.objectContaining({ status: 400 }));
    expect(() => assertAgentTaskRunnable(llm, { ...t, options: { model_override: 'gpt-4o' } })).not.toThrow();
  });
});

describe('ChatAnswer: what a chat stream sends of the answer deltas', () => {
  const partial = (delta: string, p: Record<string, unknown> = {}) =>
    ({ workflow_id: 't', type: 'LLM_PARTIAL', message: delta, payload: { call_id: 'lead/llm-1', delta, answer: true, attempt: 1, task_attempt: 1, with_tools: false, ...p }, timestamp: '', seq: 0 });
  const output = (callId: string, toolCalls: unknown[]) => ({ workflow_id: 't', type: 'LLM_OUTPUT', message: '', payload: { call_id: callId, tool_calls: toolCalls }, timestamp: '', seq: 3 });
  const sendAll = (a: ChatAnswer, events: ReturnType<typeof partial>[]) => events.map((e) => a.push(e)).join('');

  it('a live answer call is sent as it comes; finish sends what was not streamed', () => {
    const a = new ChatAnswer();
    expect(sendAll(a, [partial('Hel'), partial('lo'), partial('x', { answer: false })])).toBe('Hello');
    expect(a.finish('Hello world')).toBe(' world');
  });

  it('a retried call sends nothing until it passes what the client has, then only the rest', () => {
    const a = new ChatAnswer();
    expect(sendAll(a, [partial('whole '), partial('ans')])).toBe('whole ans');
    expect(sendAll(a, [partial('whole ', { attempt: 2 }), partial('answer', { attempt: 2 })])).toBe('wer');
    expect(a.finish('whole answer')).toBe('');
  });

  it('a retry (of the call or of the task) that answers differently sends nothing more, and finish says the stream cannot end right', () => {
    const a = new ChatAnswer();
    expect(sendAll(a, [partial('trunc')])).toBe('trunc');
    expect(sendAll(a, [partial('whole answer', { attempt: 2 })])).toBe('');
    expect(a.finish('whole answer')).toBeUndefined();
    const b = new ChatAnswer();
    expect(sendAll(b, [partial('before ')])).toBe('before ');
    b.push({ ...output('x', []), type: 'WORKFLOW_STARTED' });
    expect(sendAll(b, [partial('after', { task_attempt: 2 })])).toBe('');
    expect(b.finish('after')).toBeUndefined();
  });

  it('a call that may call tools is held until its LLM_OUTPUT shows none', () => {
    const a = new ChatAnswer();
    expect(sendAll(a, [partial('Let me compute. ', { with_tools: true })])).toBe('');
    expect(a.push(output('lead/llm-1', [{ name: 'calculator' }]))).toBe('');
    expect(sendAll(a, [partial('It is ', { call_id: 'lead/llm-2', with_tools: true }), partial('42.', { call_id: 'lead/llm-2', with_tools: true })])).toBe('');
    expect(a.push(output('lead/llm-2', []))).toBe('It is 42.');
    expect(a.finish('It is 42.')).toBe('');
  });
});
