// A provider that reports no usage (an OpenAI-compatible server ignoring stream_options.include_usage,
// an Anthropic stream without it) is counted at the runtime's estimates — the prompt's (tool
// definitions included) for input, the answer's characters / 4 for output — so a session's budget
// binds and the call is priced; a reported 0 stays 0. Real server, real worker, the fake providers speaking their protocols.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useAgentServer } from '../helpers/agent-server.js';
import { waitForTask } from '../helpers/server.js';
import { startFakeAnthropic, type FakeAnthropic, type RecordedRequest } from '../helpers/fake-llm/index.js';

let ant: FakeAnthropic | undefined;
beforeAll(async () => {
  ant = await startFakeAnthropic();
});
afterAll(async () => {
  await ant?.stop();
});

/** `local-model` on the fake OpenAI server, `claude-local` on the fake Anthropic one, both priced. */
function llmFile(oaiUrl: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'tg-usage-')), 'llm.json');
  writeFileSync(path, JSON.stringify({
    providers: [
      { name: 'openai', type: 'openai', base_url: oaiUrl, api_key: 'sk-upstream', models: ['local-model'] },
      { name: 'claude', type: 'anthropic', base_url: ant!.baseUrl, api_key: 'sk-ant-upstream', models: ['claude-local'] },
    ],
    tiers: { small: ['local-model'], medium: ['local-model'], large: ['local-model'] },
    prices: { 'local-model': { input: 1, output: 2 }, 'claude-local': { input: 1, output: 2 } },
  }));
  return path;
}

const fx = useAgentServer((baseUrl) => ({ TASKGATE_LLM_CONFIG: llmFile(baseUrl) }));

/** The characters of the messages' text (the system prompt's included) of the request the provider received. */
function promptChars(req: RecordedRequest): number {
  // OpenAI's messages carry strings; Anthropic's, blocks of text (its system prompt apart)
  const texts = (req.body.messages as { content: string | { text?: string }[] }[]).flatMap((m) => (typeof m.content === 'string' ? [m.content] : m.content.map((b) => b.text ?? '')));
  const system = typeof req.body.system === 'string' ? req.body.system : '';
  return system.length + texts.reduce((n, t) => n + t.length, 0);
}

/** The runtime's prompt estimate (4 characters ≈ 1 token) of a request that was sent no tools. */
function promptEstimate(req: RecordedRequest): number {
  return Math.ceil(promptChars(req) / 4);
}

async function llmOutputPayload(taskId: string): Promise<Record<string, any>> {
  const { rows } = await fx.tdb.db.query<{ payload: Record<string, any> }>(`SELECT payload FROM task_events WHERE task_id = $1 AND type = 'LLM_OUTPUT'`, [taskId]);
  expect(rows).toHaveLength(1);
  return rows[0]!.payload;
}

async function submit(body: Record<string, unknown>): Promise<any> {
  const res = await fx.server.call('POST', '/api/v1/tasks', { mode: 'simple', ...body });
  expect(res.status, res.text).toBe(200);
  return waitForTask(fx.server, res.body.task_id);
}

describe('a provider that reports no usage', () => {
  const answer = 'an answer of forty-four characters, counted';

  it('OpenAI-compatible, ignoring include_usage: the call counts the prompt estimate and the answer characters / 4', async () => {
    fx.oai.script({ kind: 'text', text: answer, noUsage: true });
    const task = await submit({ query: 'how many tokens?', model_override: 'local-model' });
    expect(task.status).toBe('COMPLETED');
    const input = promptEstimate(fx.oai.requests[0]!);
    const output = Math.ceil(answer.length / 4);
    expect(input).toBeGreaterThan(0);
    expect(task.usage).toMatchObject({ input_tokens: input, output_tokens: output, total_tokens: input + output });
    expect(task.usage.estimated_cost).toBeCloseTo((input * 1 + output * 2) / 1e6, 8);
    expect(await llmOutputPayload(task.task_id)).toMatchObject({ usage: { input_tokens: input, output_tokens: output }, usage_estimated: true });
  });

  it('Anthropic, with no usage in message_start nor message_delta: the same estimates', async () => {
    ant!.script({ kind: 'text', text: answer, noUsage: true });
    const task = await submit({ query: 'and from claude?', model_override: 'claude-local' });
    expect(task.status).toBe('COMPLETED');
    const input = promptEstimate(ant!.requests[0]!);
    const output = Math.ceil(answer.length / 4);
    expect(task.usage).toMatchObject({ input_tokens: input, output_tokens: output, total_tokens: input + output });
    expect(await llmOutputPayload(task.task_id)).toMatchObject({ usage_estimated: true });
  });

  it('counts the tool definitions sent with the call in the input estimate, as their JSON', async () => {
    const query = 'what is six times seven?';
    fx.oai.script({ kind: 'text', text: answer, noUsage: true }, { kind: 'text', text: answer, noUsage: true });
    // simple: no tools; standard: the built-in tools, and an answer that calls none
    const bare = await submit({ query, model_override: 'local-model' });
    const tooled = await submit({ query, mode: 'standard', model_override: 'local-model' });
    expect([bare.status, tooled.status]).toEqual(['COMPLETED', 'COMPLETED']);
    const [plain, withTools] = fx.oai.requests;
    expect(plain!.body.tools).toBeUndefined();
    const defs = (withTools!.body.tools as { function: unknown }[]).map((t) => t.function);
    expect(defs.length).toBeGreaterThan(0);
    expect(bare.usage.input_tokens).toBe(promptEstimate(plain!));
    // the definitions as OpenAI's wire carries them ({name, description, parameters}), 4 characters ≈ 1 token
    expect(tooled.usage.input_tokens).toBe(Math.ceil((promptChars(withTools!) + JSON.stringify(defs).length) / 4));
    expect(tooled.usage.input_tokens).toBeGreaterThan(promptEstimate(withTools!));
    expect(tooled.usage.input_tokens).toBeGreaterThan(bare.usage.input_tokens);
    expect(await llmOutputPayload(tooled.task_id)).toMatchObject({ usage: { input_tokens: tooled.usage.input_tokens }, usage_estimated: true });
  });

  it('a reported 0 is taken as reported, not estimated', async () => {
    fx.oai.script({ kind: 'text', text: answer, usage: { prompt_tokens: 0, completion_tokens: 0 } });
    const task = await submit({ query: 'free of charge', model_override: 'local-model' });
    expect(task.usage).toMatchObject({ input_tokens: 0, output_tokens: 0, total_tokens: 0 });
    expect(await llmOutputPayload(task.task_id)).not.toHaveProperty('usage_estimated');
  });

  it("counts against the session's tokens_used, so its token_budget binds", async () => {
    fx.oai.otherwise(() => ({ kind: 'text', text: answer, noUsage: true }));
    const session = `sess_no_usage_${Date.now()}`;
    const first = await submit({ query: 'turn 0', model_override: 'local-model', session_id: session });
    expect(first.status).toBe('COMPLETED');
    // room for any one call's prompt, not for three calls: counted 0, the calls never used any of it
    const budget = promptEstimate(fx.oai.requests[0]!) * 3;
    const statuses: string[] = [first.status];
    let last: any;
    for (let i = 1; i < 6 && statuses.at(-1) === 'COMPLETED'; i++) {
      last = await submit({ query: `turn ${i}`, model_override: 'local-model', session_id: session, context: { token_budget: budget } });
      statuses.push(last.status);
    }
    expect(statuses.at(-1)).toBe('FAILED');
    expect(last.error).toMatch(/session token budget exceeded/);
    const s = await fx.server.call('GET', `/api/v1/sessions/${session}`);
    expect(s.body.tokens_used).toBeGreaterThan(first.usage.total_tokens);
  });
});
