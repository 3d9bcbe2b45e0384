// The agent executor end to end against a fake OpenAI server: modes, tools, events, usage and
// cost, replay without paying twice, session memory, token budget, cancellation.
import { beforeAll, describe, expect, it } from 'vitest';
import { type LlmConfig } from '../../src/config/llm.js';
import { createAgentExecutor, type AgentExecutorDeps } from '../../src/executors/agent/index.js';
import { LlmClient } from '../../src/executors/agent/llm-client.js';
import { PermanentError, RetryAfterError, type TaskSpec } from '../../src/executors/types.js';
import { MemoryTaskContext } from '../helpers/agent-context.js';
import { type OpenAiStep } from '../helpers/fake-llm/index.js';
import { useFakeProviders } from '../helpers/fake-llm/providers.js';

const fake = useFakeProviders();
let llm: LlmConfig;

beforeAll(() => {
  llm = {
    ...fake.config,
    // one provider per tier unless a test asks for failover
    tiers: {
      small: [{ provider: 'openai', model: 'gpt-4o-mini' }],
      medium: [{ provider: 'openai', model: 'gpt-4o' }],
      large: [{ provider: 'openai', model: 'gpt-4.1' }],
    },
    maxRetries: 0,
  };
});

function spec(query: string, over: Partial<TaskSpec> = {}): TaskSpec {
  return { id: 'task_test', kind: 'agent', definition: undefined, query, input: null, context: {}, options: {}, mode: null, metadata: {}, ...over };
}

function executor(over: Partial<AgentExecutorDeps> = {}, config: LlmConfig = llm) {
  return createAgentExecutor({ llm: config, now: () => new Date('2030-01-02T03:04:05Z'), client: new LlmClient(config, { sleep: async () => {} }), ...over });
}

/** Routes replies by the request's system prompt (parallel agents arrive in any order). */
function bySystem(routes: [RegExp, (body: any) => OpenAiStep][]): (req: { body: any }) => OpenAiStep {
  return (req) => {
    const sys = String(req.body.messages.find((m: any) => m.role === 'system')?.content ?? '');
    const hit = routes.find(([re]) => re.test(sys));
    return hit ? hit[1](req.body) : { kind: 'text', text: 'unrouted' };
  };
}

describe('simple mode', () => {
  it('answers with the provider text, usage, cost, model, provider and the event sequence', async () => {
    fake.oai.script({ kind: 'text', text: 'Paris is the capital.', usage: { prompt_tokens: 1000, completion_tokens: 200 } });
    const ctx = new MemoryTaskContext();
    const res = await executor().run(spec('Capital of France?', { mode: 'simple' }), ctx);
    expect(res.result).toBe('Paris is the capital.');
    expect(res.output).toBeNull();
    // gpt-4o: $2.50 in / $10 out per million
    expect(res.usage).toEqual({ input_tokens: 1000, output_tokens: 200, total_tokens: 1200, estimated_cost: 0.0045 });
    expect(res.model_used).toBe('gpt-4o');
    expect(res.provider).toBe('openai');
    expect(res.metadata).toMatchObject({ mode: 'simple', mode_source: 'request', model_tier: 'medium', llm_calls: 1, tool_calls: 0 });
    expect((res.metadata as any).model_breakdown).toEqual({
      'gpt-4o': { provider: 'openai', executions: 1, input_tokens: 1000, output_tokens: 200, total_tokens: 1200, cost_usd: 0.0045, percentage: 100 },
    });
    expect(ctx.types()).toEqual(['AGENT_STARTED', 'AGENT_THINKING', 'LLM_PROMPT', 'LLM_OUTPUT', 'AGENT_COMPLETED']);
    const partial = ctx.events.filter((e) => e.type === 'LLM_PARTIAL');
    expect(partial.map((e) => e.payload!.delta).join('')).toBe('Paris is the capital.');
    expect(partial[0]!.payload).toMatchObject({ answer: true, call_id: 'lead/llm-1' });
    const out = ctx.events.find((e) => e.type === 'LLM_OUTPUT')!;
    expect(out.payload!.usage).toEqual({ input_tokens: 1000, output_tokens: 200, total_tokens: 1200, estimated_cost: 0.0045 });
    const body = fake.oai.requests[0]!.body;
    expect(body.model).toBe('gpt-4o');
    expect(body.tools).toBeUndefined();
    expect(body.messages.at(-1)).toEqual({ role: 'user', content: 'Capital of France?' });
  });

  it('puts a JSON answer in output', async () => {
    fake.oai.script({ kind: 'text', text: '```json\n{"city": "Paris"}\n```' });
    const res = await executor().run(spec('json please', { mode: 'simple' }), new MemoryTaskContext());
    expect(res.output).toEqual({ city: 'Paris' });
  });

  it('routes by tier and by override: the provider sees the chosen model', async () => {
    await executor().run(spec('q', { mode: 'simple', options: { model_tier: 'small' } }), new MemoryTaskContext());
    await executor().run(spec('q', { mode: 'simple', options: { model_override: 'gpt-4.1' } }), new MemoryTaskContext());
    await executor().run(spec('q', { mode: 'simple', context: { model_tier: 'large' } }), new MemoryTaskContext());
    expect(fake.oai.requests.map((r) => r.body.model)).toEqual(['gpt-4o-mini', 'gpt-4.1', 'gpt-4.1']);
    const res = await executor().run(spec('q', { mode: 'simple', options: { provider_override: 'anthropic' } }), new MemoryTaskContext());
    expect(fake.ant.requests[0]!.body.model).toBe('claude-sonnet-4-6');
    expect(res.provider).toBe('anthropic');
    expect(res.usage).toMatchObject({ input_tokens: 12, output_tokens: 6 });
  });

  it('fails permanently for unknown models and when no provider is configured', async () => {
    await expect(executor().run(spec('q', { options: { model_override: 'nope-1' } }), new MemoryTaskContext())).rejects.toThrow(/unknown model_override nope-1/);
    const err = await createAgentExecutor({ llm: undefined }).run(spec('q'), new MemoryTaskContext()).catch((e) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toMatch(/OPENAI_API_KEY/);
  });
});

describe('standard mode and tools', () => {
  it('runs a calculator round trip and sends the observation back to the model', async () => {
    fake.oai.script(
      { kind: 'tool_calls', calls: [{ id: 'call_1', name: 'calculator', arguments: { expression: '(17*23)/4' } }], usage: { prompt_tokens: 100, completion_tokens: 10 } },
      { kind: 'text', text: 'It is 97.75.', usage: { prompt_tokens: 150, completion_tokens: 5 } },
    );
    const ctx = new MemoryTaskContext();
    const res = await executor().run(spec('What is 17*23/4?', { mode: 'standard' }), ctx);
    expect(res.result).toBe('It is 97.75.');
    expect(res.usage).toMatchObject({ input_tokens: 250, output_tokens: 15, total_tokens: 265 });
    expect(res.metadata).toMatchObject({ llm_calls: 2, tool_calls: 1, iterations: 2 });
    const first = fake.oai.requests[0]!.body;
    expect(first.tools.map((t: any) => t.function.name)).toEqual(['calculator', 'current_time']);
    const second = fake.oai.requests[1]!.body;
    expect(second.messages.at(-2)).toMatchObject({ role: 'assistant', tool_calls: [{ id: 'call_1', function: { name: 'calculator' } }] });
    expect(second.messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'call_1', content: '97.75' });
    expect(ctx.types()).toEqual([
      'AGENT_STARTED', 'AGENT_THINKING', 'LLM_PROMPT', 'LLM_OUTPUT', 'TOOL_INVOKED', 'TOOL_OBSERVATION',
      'AGENT_THINKING', 'LLM_PROMPT', 'LLM_OUTPUT', 'AGENT_COMPLETED',
    ]);
    expect(ctx.events.find((e) => e.type === 'TOOL_INVOKED')!.payload).toMatchObject({ tool: 'calculator', args: { expression: '(17*23)/4' } });
  });

  it('shows tool errors and unknown tools to the model instead of failing', async () => {
    fake.oai.script(
      { kind: 'tool_calls', calls: [{ name: 'calculator', arguments: { expression: '2+' } }, { name: 'teleport', arguments: {} }, { name: 'current_time', arguments: '{bad' }] },
      { kind: 'text', text: 'done' },
    );
    await executor().run(spec('q', { mode: 'standard' }), new MemoryTaskContext());
    const tools = fake.oai.requests[1]!.body.messages.filter((m: any) => m.role === 'tool').map((m: any) => m.content);
    expect(tools[0]).toMatch(/^error: unexpected end/);
    expect(tools[1]).toMatch(/^error: unknown tool teleport/);
    expect(tools[2]).toMatch(/^error: tool arguments are not valid JSON/);
  });

  it('current_time uses the injected clock', async () => {
    fake.oai.script({ kind: 'tool_calls', calls: [{ name: 'current_time', arguments: { timezone: 'Europe/Paris' } }] }, { kind: 'text', text: 'ok' });
    await executor().run(spec('what time is it', { mode: 'standard' }), new MemoryTaskContext());
    const obs = JSON.parse(fake.oai.requests[1]!.body.messages.at(-1).content);
    expect(obs).toMatchObject({ utc: '2030-01-02T03:04:05.000Z', timezone: 'Europe/Paris', unix: 1893553445 });
  });

  it('run_task submits a child definition task of the same tenant and returns its output', async () => {
    const calls: unknown[][] = [];
    const runChildTask = async (...args: unknown[]) => {
      calls.push(args.slice(0, 4).concat([(args[5] as any).idempotencyKey]));
      return { total: 108 };
    };
    fake.oai.script(
      { kind: 'tool_calls', calls: [{ name: 'run_task', arguments: { task_definition_id: 'calculate-order-total', input: { items: [{ price: 50, quantity: 2 }] } } }] },
      { kind: 'text', text: 'Total is 108.' },
    );
    const res = await executor({ runChildTask, listDefinitions: async () => [{ id: 'calculate-order-total', description: 'sums an order' }] }).run(
      spec('total my order', { mode: 'standard' }),
      new MemoryTaskContext('task_p', 'ten_a', 'user_a'),
    );
    expect(res.result).toBe('Total is 108.');
    expect(calls).toEqual([['ten_a', 'user_a', 'calculate-order-total', { items: [{ price: 50, quantity: 2 }] }, 'task_p:lead/tool-1-1']]);
    expect(fake.oai.requests[1]!.body.messages.at(-1).content).toBe('{"total":108}');
    expect(fake.oai.requests[0]!.body.tools.find((t: any) => t.function.name === 'run_task').function.description).toContain('calculate-order-total (sums an order)');
  });

  it('http_fetch goes through the SSRF guard: loopback is refused unless allow-listed', async () => {
    const target = `${fake.oai.url}/some/page`;
    const script = () =>
      fake.oai.script({ kind: 'tool_calls', calls: [{ name: 'http_fetch', arguments: { url: target } }] }, { kind: 'text', text: 'seen' });
    const http = { timeoutMs: 5_000, maxResponseBytes: 100_000 };
    script();
    await executor({ http: { ...http, allowList: [] } }).run(spec('fetch it', { mode: 'standard' }), new MemoryTaskContext());
    expect(fake.oai.requests[1]!.body.messages.at(-1).content).toMatch(/^error: fetch failed: refusing to call 127\.0\.0\.1/);
    fake.oai.reset();
    script();
    await executor({ http: { ...http, allowList: ['127.0.0.1'] } }).run(spec('fetch it', { mode: 'standard' }), new MemoryTaskContext());
    const obs = JSON.parse(fake.oai.requests[1]!.body.messages.at(-1).content);
    expect(obs).toMatchObject({ status: 404, content_type: 'application/json' });
    expect(obs.body).toContain('no such route');
  });

  it('stops after max_iterations with a final call without tools', async () => {
    fake.oai.otherwise((req) => (req.body.tools ? { kind: 'tool_calls', calls: [{ name: 'calculator', arguments: { expression: '1+1' } }] } : { kind: 'text', text: 'final' }));
    const res = await executor().run(spec('loop', { mode: 'standard', options: { max_iterations: 2 } }), new MemoryTaskContext());
    expect(res.result).toBe('final');
    expect(fake.oai.requests).toHaveLength(3);
    expect(fake.oai.requests[2]!.body.tools).toBeUndefined();
  });
});

describe('durability', () => {
  it('a retried attempt replays finished LLM and tool steps instead of paying again', async () => {
    fake.oai.script(
      { kind: 'tool_calls', calls: [{ name: 'calculator', arguments: { expression: '6*7' } }], usage: { prompt_tokens: 10, completion_tokens: 1 } },
      { kind: 'error', status: 503 },
    );
    const ctx1 = new MemoryTaskContext();
    const err = await executor().run(spec('q', { mode: 'standard' }), ctx1).catch((e) => e);
    expect(err).toBeInstanceOf(RetryAfterError);
    expect(fake.oai.requests).toHaveLength(2);

    fake.oai.script({ kind: 'text', text: '42', usage: { prompt_tokens: 20, completion_tokens: 2 } });
    const ctx2 = ctx1.nextAttempt();
    const res = await executor().run(spec('q', { mode: 'standard' }), ctx2);
    expect(res.result).toBe('42');
    expect(fake.oai.requests).toHaveLength(3); // the first call was not repeated
    expect(res.usage).toMatchObject({ input_tokens: 30, output_tokens: 3 });
    expect(ctx2.steps.get('lead/llm-1')!.runs).toBe(1);
    expect(ctx2.steps.get('lead/tool-1-1')!.runs).toBe(1);
    expect(ctx2.steps.get('lead/llm-2')!.runs).toBe(2);
  });

  it('cancelling aborts the in-flight request and closes the upstream connection', async () => {
    let release!: () => void;
    fake.oai.script({ kind: 'text', text: 'a b c d e f', pauseAfter: 2, resume: new Promise<void>((r) => (release = r)) });
    const ctx = new MemoryTaskContext();
    const p = executor().run(spec('long', { mode: 'simple' }), ctx);
    await ctx.waitForEvent('LLM_PARTIAL');
    ctx.controller.abort(new Error('cancelled'));
    await expect(p).rejects.toThrow('cancelled');
    await fake.oai.requests[0]!.closed;
    release();
    expect(ctx.types()).not.toContain('LLM_OUTPUT');
  });
});

describe('session memory and budget', () => {
  const turns = [
    { task_id: 't1', query: 'old question '.repeat(40), result: 'old answer '.repeat(40) },
    { task_id: 't2', query: 'My name is Ada.', result: 'Nice to meet you, Ada.' },
  ];

  it('sends earlier turns as conversation, oldest dropped first to fit the budget', async () => {
    const seen: unknown[] = [];
    const loadSessionHistory = async (...args: unknown[]) => {
      seen.push(args);
      return { turns, tokens_used: 0, token_budget: null };
    };
    const ctx = new MemoryTaskContext('task_3', 'ten', 'usr', 'sess_1');
    const res = await executor({ loadSessionHistory }, { ...llm, historyBudgetTokens: 50 }).run(spec('What is my name?', { mode: 'simple' }), ctx);
    expect(seen).toEqual([['ten', 'sess_1', 'task_3']]);
    expect(fake.oai.requests[0]!.body.messages.slice(1)).toEqual([
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Nice to meet you, Ada.' },
      { role: 'user', content: 'What is my name?' },
    ]);
    expect(res.metadata).toMatchObject({ history_turns: 1 });
  });

  it('emits BUDGET_THRESHOLD at 80 % and fails a task that exceeds the session budget', async () => {
    const loadSessionHistory = async () => ({ turns: [], tokens_used: 700, token_budget: 1000 });
    fake.oai.script({ kind: 'text', text: 'ok', usage: { prompt_tokens: 100, completion_tokens: 50 } });
    const ctx = new MemoryTaskContext('t', 'ten', 'u', 's');
    await executor({ loadSessionHistory }).run(spec('q', { mode: 'simple' }), ctx);
    const ev = ctx.events.find((e) => e.type === 'BUDGET_THRESHOLD')!;
    expect(ev.payload).toMatchObject({ tokens_used: 850, token_budget: 1000, percent: 85 });

    fake.oai.script({ kind: 'tool_calls', calls: [{ name: 'calculator', arguments: { expression: '1' } }], usage: { prompt_tokens: 300, completion_tokens: 50 } });
    const err = await executor({ loadSessionHistory }).run(spec('q', { mode: 'standard' }), new MemoryTaskContext('t2', 'ten', 'u', 's')).catch((e) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toMatch(/session token budget exceeded: 1050 of 1000 tokens used/);
    expect(fake.oai.requests).toHaveLength(2);
  });

  it('context.token_budget becomes the session budget', async () => {
    const sessions = new Map<string, number>();
    const deps = {
      setSessionBudget: async (_t: string, s: string, b: number) => void sessions.set(s, b),
      loadSessionHistory: async (_t: string, s: string) => ({ turns: [], tokens_used: 95, token_budget: sessions.get(s) ?? null }),
    };
    const err = await executor(deps).run(spec('q', { mode: 'simple', context: { token_budget: 100 } }), new MemoryTaskContext('t', 'ten', 'u', 's9')).catch((e) => e);
    expect(sessions.get('s9')).toBe(100);
    expect(err.message).toMatch(/budget exceeded: 95 of 100 tokens used, the next LLM call needs about \d+ more/);
    expect(fake.oai.requests).toHaveLength(0);
  });

  it('a queued task whose context.token_budget no session can hold fails once, without a database error', async () => {
    const set: number[] = [];
    const deps = { setSessionBudget: async (_t: string, _s: string, b: number) => void set.push(b) };
    for (const bad of [3_000_000_000, -5, '200']) {
      const err = await executor(deps).run(spec('q', { mode: 'simple', context: { token_budget: bad } }), new MemoryTaskContext('t', 'ten', 'u', 's')).catch((e) => e);
      expect(err).toBeInstanceOf(PermanentError);
      expect(err.message).toContain('context.token_budget must be an integer from 0 to 2147483647');
    }
    expect(set).toEqual([]);
    expect(fake.oai.requests).toHaveLength(0);
  });

  it('refuses to start a call when the budget is already spent', async () => {
    const loadSessionHistory = async () => ({ turns: [], tokens_used: 1000, token_budget: 1000 });
    const err = await executor({ loadSessionHistory }).run(spec('q', { mode: 'simple' }), new MemoryTaskContext('t', 'ten', 'u', 's')).catch((e) => e);
    expect(err.message).toMatch(/budget exceeded/);
    expect(fake.oai.requests).toHaveLength(0);
  });
});

describe('complex, supervisor and verification', () => {
  it('complex: plans, runs sub-agents in parallel, synthesises', async () => {
    fake.oai.otherwise(
      bySystem([
        [/planner/, () => ({ kind: 'text', text: '{"subtasks": [{"id": "1", "task": "facts about A"}, {"id": "2", "task": "facts about B"}]}' })],
        [/focused research agent/, (b) => ({ kind: 'text', text: b.messages.at(-1).content.includes('about A') ? 'A is big' : 'B is small' })],
        [/synthesis agent/, () => ({ kind: 'text', text: 'A is big; B is small.' })],
      ]),
    );
    const ctx = new MemoryTaskContext();
    const res = await executor().run(spec('Compare A and B', { mode: 'complex', options: { max_concurrent_agents: 2 } }), ctx);
    expect(res.result).toBe('A is big; B is small.');
    expect(fake.oai.requests).toHaveLength(4);
    const synth = fake.oai.requests.find((r) => /synthesis/.test(r.body.messages[0].content))!.body;
    expect(synth.messages.at(-1).content).toContain('A is big');
    expect(synth.messages.at(-1).content).toContain('B is small');
    expect(res.metadata).toMatchObject({ mode: 'complex', llm_calls: 4, subtasks: [{ id: 'sub-1', task: 'facts about A' }, { id: 'sub-2', task: 'facts about B' }] });
    const started = ctx.events.filter((e) => e.type === 'AGENT_STARTED').map((e) => e.agent_id);
    expect(started.sort()).toEqual(['planner', 'sub-1', 'sub-2', 'synthesizer']);
    const answerDeltas = ctx.events.filter((e) => e.type === 'LLM_PARTIAL' && e.payload!.answer).map((e) => e.agent_id);
    expect(new Set(answerDeltas)).toEqual(new Set(['synthesizer']));
  });

  it('complex: a plan that is not JSON falls back to one subtask', async () => {
    fake.oai.otherwise(bySystem([[/planner/, () => ({ kind: 'text', text: 'sorry, no' })], [/research agent/, () => ({ kind: 'text', text: 'sub' })], [/synthesis/, () => ({ kind: 'text', text: 'final' })]]));
    const res = await executor().run(spec('x', { mode: 'complex' }), new MemoryTaskContext());
    expect(res.metadata).toMatchObject({ subtasks: [{ id: 'sub-1', task: 'x' }] });
  });

  it('supervisor: the lead delegates through tool calls and decides when it is done', async () => {
    fake.oai.otherwise((req) => {
      const b = req.body;
      if (/lead agent supervising/.test(b.messages[0].content)) {
        return b.messages.some((m: any) => m.role === 'tool')
          ? { kind: 'text', text: `Summary: ${b.messages.filter((m: any) => m.role === 'tool').map((m: any) => m.content).join(' + ')}` }
          : { kind: 'tool_calls', calls: [{ id: 'd1', name: 'delegate_task', arguments: { task: 'find X' } }, { id: 'd2', name: 'delegate_task', arguments: { task: 'find Y' } }] };
      }
      return { kind: 'text', text: b.messages.at(-1).content.includes('find X') ? 'X=1' : 'Y=2' };
    });
    const ctx = new MemoryTaskContext();
    const res = await executor().run(spec('X and Y?', { mode: 'supervisor' }), ctx);
    expect(res.result).toBe('Summary: X=1 + Y=2');
    expect(res.metadata).toMatchObject({ mode: 'supervisor', llm_calls: 4, workers: [{ id: 'worker-1-1', task: 'find X' }, { id: 'worker-1-2', task: 'find Y' }] });
    expect([...ctx.steps.keys()]).toEqual(expect.arrayContaining(['lead/llm-1', 'worker-1-1/llm-1', 'worker-1-2/llm-1', 'lead/llm-2']));
  });

  it('verification: a rejected draft is revised with the reviewer feedback', async () => {
    fake.oai.otherwise(
      bySystem([
        [/meticulous reviewer/, () => ({ kind: 'text', text: '{"approved": false, "feedback": "mention the year"}' })],
        [/.*/, (b) => ({ kind: 'text', text: b.messages.at(-1).content.includes('mention the year') ? 'Revised, 1889.' : 'Draft.' })],
      ]),
    );
    const ctx = new MemoryTaskContext();
    const res = await executor().run(spec('When was the Eiffel tower built?', { mode: 'simple', options: { enable_verification: true } }), ctx);
    expect(res.result).toBe('Revised, 1889.');
    expect(res.metadata).toMatchObject({ verification: { approved: false, feedback: 'mention the year', revised: true }, llm_calls: 3 });
    const answerDeltas = ctx.events.filter((e) => e.type === 'LLM_PARTIAL' && e.payload!.answer).map((e) => e.payload!.delta).join('');
    expect(answerDeltas).toBe('Revised, 1889.');
  });

  it('research_strategy presets set tier and verification; auto mode is recorded', async () => {
    fake.oai.otherwise(bySystem([[/reviewer/, () => ({ kind: 'text', text: '{"approved": true}' })], [/.*/, () => ({ kind: 'text', text: 'fine' })]]));
    const res = await executor().run(spec('hello there', { options: { research_strategy: 'academic' } }), new MemoryTaskContext());
    expect(res.metadata).toMatchObject({ mode: 'complex', mode_source: 'auto', research_strategy: 'academic', model_tier: 'large', verification: { approved: true, revised: false } });
    expect(fake.oai.requests[0]!.body.model).toBe('gpt-4.1');
  });
});

describe('templates and definitions', () => {
  it('context.disable_ai with context.template runs that definition instead of an LLM', async () => {
    const runChildTask = async (_t: string, _u: string, def: string, input: unknown) => ({ def, input });
    const res = await executor({ runChildTask }).run(spec('hi', { context: { disable_ai: true, template: 'noop', template_input: { a: 1 } } }), new MemoryTaskContext());
    expect(res.output).toEqual({ def: 'noop', input: { a: 1 } });
    expect(fake.oai.requests).toHaveLength(0);
  });

  it('a declarative agent definition renders its prompt from the input', async () => {
    const definition = {
      id: 'greet', name: 'greet', description: '', version: '1', kind: 'agent', input_schema: {}, output_schema: {},
      config: { prompt: 'Greet {{name}}{{#title}} ({{title}}){{/title}} in a {{tone|warm}} tone.', mode: 'simple', model_tier: 'small' },
    };
    fake.oai.script({ kind: 'text', text: 'Hello Ada!' });
    const res = await executor().run(spec('', { kind: 'definition', definition, input: { name: 'Ada' } }), new MemoryTaskContext());
    expect(res.result).toBe('Hello Ada!');
    expect(fake.oai.requests[0]!.body.messages.at(-1).content).toBe('Greet Ada in a warm tone.');
    expect(fake.oai.requests[0]!.body.model).toBe('gpt-4o-mini');
  });
});
