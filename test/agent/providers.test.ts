// Provider adapters and the resilient client against fake servers speaking the real wire protocols.
import { beforeEach, describe, expect, it } from 'vitest';
import { LlmClient } from '../../src/executors/agent/llm-client.js';
import { retryAfterMs } from '../../src/executors/http-client.js';
import { PermanentError, RetryAfterError } from '../../src/executors/types.js';
import { useFakeProviders } from '../helpers/fake-llm/providers.js';

const fake = useFakeProviders();

const signal = () => new AbortController().signal;
const sleeps: number[] = [];
const fakeSleep = async (ms: number) => {
  sleeps.push(ms);
};

describe('OpenAI adapter', () => {
  it('streams deltas, returns text and usage, sends model, messages and key', async () => {
    fake.oai.script({ kind: 'text', text: 'Hello there world', usage: { prompt_tokens: 21, completion_tokens: 3 } });
    const client = new LlmClient(fake.config);
    const deltas: string[] = [];
    const res = await client.call([{ provider: 'openai', model: 'gpt-4o-mini' }], {
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }],
      signal: signal(),
      onDelta: (d) => deltas.push(d),
    });
    expect(res.text).toBe('Hello there world');
    expect(deltas.join('')).toBe('Hello there world');
    expect(deltas.length).toBe(3);
    expect(res.usage).toEqual({ input_tokens: 21, output_tokens: 3 });
    expect(res.provider).toBe('openai');
    const got = fake.oai.requests[0]!;
    expect(got.body.model).toBe('gpt-4o-mini');
    expect(got.body.stream).toBe(true);
    expect(got.body.stream_options).toEqual({ include_usage: true });
    expect(got.body.messages).toEqual([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }]);
    expect(got.headers.authorization).toBe('Bearer sk-test');
  });

  it('assembles streamed tool calls and sends tool specs and tool results back', async () => {
    fake.oai.script({ kind: 'tool_calls', calls: [{ id: 'call_a', name: 'calculator', arguments: { expression: '2+2' } }, { name: 'current_time', arguments: {} }] });
    const client = new LlmClient(fake.config);
    const res = await client.call([{ provider: 'openai', model: 'm' }], {
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: '', toolCalls: [{ id: 'x1', name: 'calculator', arguments: '{"expression":"1"}' }] },
        { role: 'tool', toolCallId: 'x1', name: 'calculator', content: '1' },
      ],
      tools: [{ name: 'calculator', description: 'math', parameters: { type: 'object', properties: { expression: { type: 'string' } } } }],
      signal: signal(),
    });
    expect(res.toolCalls).toEqual([
      { id: 'call_a', name: 'calculator', arguments: '{"expression":"2+2"}' },
      { id: 'call_2', name: 'current_time', arguments: '{}' },
    ]);
    expect(res.finishReason).toBe('tool_calls');
    const body = fake.oai.requests[0]!.body;
    expect(body.tools[0]).toEqual({ type: 'function', function: { name: 'calculator', description: 'math', parameters: { type: 'object', properties: { expression: { type: 'string' } } } } });
    expect(body.messages[1]).toEqual({ role: 'assistant', content: null, tool_calls: [{ id: 'x1', type: 'function', function: { name: 'calculator', arguments: '{"expression":"1"}' } }] });
    expect(body.messages[2]).toEqual({ role: 'tool', tool_call_id: 'x1', content: '1' });
  });
  it('tells streamed tool calls apart without an index (some OpenAI-compatible servers leave it out): by id, fragments continuing the last', async () => {
    const frame = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const body =
      frame({ tool_calls: [{ id: 'a', type: 'function', function: { name: 'calculator', arguments: '{"expression":' } }, { id: 'b', type: 'function', function: { name: 'calculator', arguments: '{"expression":"2+2"}' } }] }) +
      frame({ tool_calls: [{ id: 'c', type: 'function', function: { name: 'current_time', arguments: '{' } }] }) +
      frame({ tool_calls: [{ function: { arguments: '}' } }] }) +
      frame({}, 'tool_calls') + 'data: [DONE]\n\n';
    fake.oai.script({ kind: 'raw', contentType: 'text/event-stream', body });
    const res = await new LlmClient(fake.config).call([{ provider: 'openai', model: 'gpt-4o-mini' }], { messages: [{ role: 'user', content: 'x' }], signal: signal() });
    expect(res.toolCalls).toEqual([
      { id: 'a', name: 'calculator', arguments: '{"expression":' },
      { id: 'b', name: 'calculator', arguments: '{"expression":"2+2"}' },
      { id: 'c', name: 'current_time', arguments: '{}' },
    ]);
  });

  it('accepts a JSON completion from a server that ignores stream: true', async () => {
    fake.oai.script({ kind: 'text', text: 'not streamed', ignoreStream: true, usage: { prompt_tokens: 9, completion_tokens: 2 } });
    const deltas: string[] = [];
    const res = await new LlmClient(fake.config).call([{ provider: 'openai', model: 'm' }], { messages: [{ role: 'user', content: 'q' }], signal: signal(), onDelta: (d) => deltas.push(d) });
    expect(res).toMatchObject({ text: 'not streamed', usage: { input_tokens: 9, output_tokens: 2 }, finishReason: 'stop' });
    expect(deltas).toEqual(['not streamed']);
  });
});

describe('Anthropic adapter', () => {
  it('streams text with usage and maps system, tools and tool results to the Messages API', async () => {
    fake.ant.script({ kind: 'text', text: 'Bonjour à tous', usage: { input_tokens: 40, output_tokens: 4 } });
    const client = new LlmClient(fake.config);
    const deltas: string[] = [];
    const res = await client.call([{ provider: 'anthropic', model: 'claude-x' }], {
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'thinking', toolCalls: [{ id: 't1', name: 'calculator', arguments: '{"expression":"1+1"}' }] },
        { role: 'tool', toolCallId: 't1', name: 'calculator', content: '2' },
      ],
      tools: [{ name: 'calculator', description: 'math', parameters: { type: 'object', properties: {} } }],
      signal: signal(),
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      onDelta: (d) => deltas.push(d),
    });
    expect(res.text).toBe('Bonjour à tous');
    expect(fake.ant.requests[0]!.headers.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(deltas.join('')).toBe('Bonjour à tous');
    expect(res.usage).toEqual({ input_tokens: 40, output_tokens: 4 });
    const got = fake.ant.requests[0]!;
    // SDK 1.x sends the key as a bearer token; older ones used x-api-key
    expect(got.headers['x-api-key'] ?? got.headers.authorization).toMatch(/ak-test$/);
    expect(got.body.system).toBe('sys');
    expect(got.body.max_tokens).toBe(fake.config.maxOutputTokens);
    expect(got.body.tools).toEqual([{ name: 'calculator', description: 'math', input_schema: { type: 'object', properties: {} } }]);
    expect(got.body.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'q' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'thinking' }, { type: 'tool_use', id: 't1', name: 'calculator', input: { expression: '1+1' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: '2' }] },
    ]);
  });

  it('assembles tool_use blocks from input_json_delta events', async () => {
    fake.ant.script({ kind: 'tool_calls', text: 'let me compute', calls: [{ id: 'toolu_9', name: 'calculator', arguments: { expression: '6*7' } }] });
    const res = await new LlmClient(fake.config).call([{ provider: 'anthropic', model: 'claude-x' }], { messages: [{ role: 'user', content: 'q' }], signal: signal() });
    expect(res.text).toBe('let me compute');
    expect(res.toolCalls).toEqual([{ id: 'toolu_9', name: 'calculator', arguments: '{"expression":"6*7"}' }]);
    expect(res.finishReason).toBe('tool_calls');
  });
});

describe('resilience', () => {
  beforeEach(() => {
    sleeps.length = 0;
  });

  it('retries a 429 after its Retry-After and a 500 after backoff', async () => {
    fake.oai.script(
      { kind: 'error', status: 429, headers: { 'retry-after': '3' }, type: 'rate_limit_error' },
      { kind: 'error', status: 500 },
      { kind: 'text', text: 'finally' },
    );
    const retries: number[] = [];
    const client = new LlmClient({ ...fake.config, retryBaseMs: 100 }, { sleep: fakeSleep, random: () => 0.5 });
    const res = await client.call([{ provider: 'openai', model: 'm' }], { messages: [{ role: 'user', content: 'q' }], signal: signal(), onRetry: (i) => retries.push(i.delayMs) });
    expect(res.text).toBe('finally');
    expect(res.attempts).toBe(3);
    expect(sleeps).toEqual([3000, 200]);
    expect(retries).toEqual([3000, 200]);
    expect(fake.oai.requests).toHaveLength(3);
  });

  it('waits for real when Retry-After is short (retry-after-ms)', async () => {
    fake.oai.script({ kind: 'error', status: 429, headers: { 'retry-after-ms': '5' } }, { kind: 'text', text: 'ok now' });
    const res = await new LlmClient(fake.config).call([{ provider: 'openai', model: 'm' }], { messages: [{ role: 'user', content: 'q' }], signal: signal() });
    expect(res.text).toBe('ok now');
    expect(fake.oai.requests).toHaveLength(2);
  });

  it('fails over to the next candidate when a provider keeps failing', async () => {
    fake.oai.otherwise(() => ({ kind: 'error', status: 503 }));
    fake.ant.script({ kind: 'text', text: 'from claude' });
    const failovers: string[] = [];
    const client = new LlmClient({ ...fake.config, maxRetries: 1 }, { sleep: fakeSleep });
    const res = await client.call(
      [{ provider: 'openai', model: 'gpt-4o' }, { provider: 'anthropic', model: 'claude-sonnet-4-6' }],
      { messages: [{ role: 'user', content: 'q' }], signal: signal(), onFailover: (from, to) => failovers.push(`${from.provider}->${to.provider}`) },
    );
    expect(res.text).toBe('from claude');
    expect(res.provider).toBe('anthropic');
    expect(fake.oai.requests).toHaveLength(2);
    expect(failovers).toEqual(['openai->anthropic']);
  });

  it('does not retry a 400 on the same provider and fails permanently when none is left', async () => {
    fake.oai.script({ kind: 'error', status: 400, type: 'invalid_request_error', message: 'bad things' });
    const err = await new LlmClient(fake.config, { sleep: fakeSleep }).call([{ provider: 'openai', model: 'm' }], { messages: [{ role: 'user', content: 'q' }], signal: signal() }).catch((e) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(String(err.message)).toContain('bad things');
    expect(fake.oai.requests).toHaveLength(1);
  });

  it('turns exhausted retryable failures into RetryAfterError for the engine', async () => {
    fake.oai.otherwise(() => ({ kind: 'error', status: 429, headers: { 'retry-after': '7' } }));
    const err = await new LlmClient({ ...fake.config, maxRetries: 1 }, { sleep: fakeSleep }).call([{ provider: 'openai', model: 'm' }], { messages: [{ role: 'user', content: 'q' }], signal: signal() }).catch((e) => e);
    expect(err).toBeInstanceOf(RetryAfterError);
    expect(err.delayMs).toBe(7000);
  });

  it('hands a Retry-After beyond the in-process cap to the engine instead of waiting', async () => {
    fake.oai.script({ kind: 'error', status: 429, headers: { 'retry-after': '600' } });
    const err = await new LlmClient(fake.config, { sleep: fakeSleep }).call([{ provider: 'openai', model: 'm' }], { messages: [{ role: 'user', content: 'q' }], signal: signal() }).catch((e) => e);
    expect(err).toBeInstanceOf(RetryAfterError);
    expect(err.delayMs).toBe(600_000);
    expect(sleeps).toEqual([]);
  });

  it('detects a stalled stream and retries it', async () => {
    fake.oai.script({ kind: 'stall', chunks: ['partial '] }, { kind: 'text', text: 'complete answer' });
    const deltas: string[] = [];
    const client = new LlmClient({ ...fake.config, streamIdleTimeoutMs: 150 }, { sleep: fakeSleep });
    const res = await client.call([{ provider: 'openai', model: 'm' }], { messages: [{ role: 'user', content: 'q' }], signal: signal(), onDelta: (d) => deltas.push(d) });
    expect(res.text).toBe('complete answer');
    await fake.oai.requests[0]!.closed; // the stalled connection was closed by us
    expect(deltas[0]).toBe('partial ');
  });

  it('retries a dropped connection', async () => {
    fake.oai.script({ kind: 'drop' }, { kind: 'text', text: 'second time' });
    const res = await new LlmClient(fake.config, { sleep: fakeSleep }).call([{ provider: 'openai', model: 'm' }], { messages: [{ role: 'user', content: 'q' }], signal: signal() });
    expect(res.text).toBe('second time');
  });

  it('aborting the task signal closes the upstream connection mid-stream', async () => {
    let release!: () => void;
    fake.oai.script({ kind: 'text', text: 'one two three four', pauseAfter: 1, resume: new Promise<void>((r) => (release = r)) });
    const ctl = new AbortController();
    const p = new LlmClient(fake.config).call([{ provider: 'openai', model: 'm' }], {
      messages: [{ role: 'user', content: 'q' }],
      signal: ctl.signal,
      onDelta: () => ctl.abort(new Error('cancelled by user')),
    });
    await expect(p).rejects.toThrow('cancelled by user');
    await fake.oai.requests[0]!.closed;
    release();
    expect(fake.oai.requests).toHaveLength(1);
  });

  it('parses Retry-After forms', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }))).toBe(250);
    expect(retryAfterMs(new Headers({ 'retry-after': new Date(10_000).toUTCString() }), 4_000)).toBe(6000);
    expect(retryAfterMs(new Headers({}))).toBeUndefined();
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
  });
});
