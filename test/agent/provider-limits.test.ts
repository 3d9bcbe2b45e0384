// What the provider clients read from a provider is bounded in bytes, and every byte received
// counts as life: huge error bodies, endless event-stream lines, oversized JSON answers and SSE
// comment keep-alives, against the fake servers speaking the real protocols.
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { LlmClient } from '../../src/executors/agent/llm-client.js';
import { MAX_ERROR_BODY_BYTES, MAX_JSON_BODY_BYTES, MAX_SSE_LINE_BYTES } from '../../src/executors/agent/providers/bounded-fetch.js';
import { MAX_PROVIDER_MESSAGE_CHARS } from '../../src/executors/agent/providers/types.js';
import { PermanentError, RetryAfterError } from '../../src/executors/types.js';
import { pour, type CustomStep } from '../helpers/fake-llm/server.js';
import { useFakeProviders } from '../helpers/fake-llm/providers.js';

const OPENAI_KEY = 'sk-SECRETKEY123456';
const fake = useFakeProviders({ openai: OPENAI_KEY });

const MiB = 1024 * 1024;
const noSleep = async () => {};
const ask = { messages: [{ role: 'user' as const, content: 'q' }] };
const tiers = { openai: [{ provider: 'openai', model: 'm' }], anthropic: [{ provider: 'anthropic', model: 'claude' }] };
const fakes = () => ({ openai: fake.oai, anthropic: fake.ant });

/** The error a call to `tier` ends with (a call that succeeds fails the test). */
function callError(tier: keyof typeof tiers, config: Partial<typeof fake.config> = {}, onRetry?: (error: string) => void): Promise<Error> {
  return new LlmClient({ ...fake.config, ...config }, { sleep: noSleep }).call(tiers[tier], { ...ask, signal: new AbortController().signal, onRetry: (r) => onRetry?.(r.error) }).then(
    (res) => new Error(`the call succeeded with ${res.text.length} characters`),
    (e: unknown) => e as Error,
  );
}

/** A custom step that records how many bytes of its body it managed to write. */
function pouring(send: (res: ServerResponse) => Promise<number>): CustomStep & { written: Promise<number> } {
  let done!: (n: number) => void;
  const written = new Promise<number>((resolve) => (done = resolve));
  return { kind: 'custom', send: async (res) => done(await send(res)), written };
}

const sseHead = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
const openAiChunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

describe(`an error body is read up to MAX_ERROR_BODY_BYTES (${MAX_ERROR_BODY_BYTES})`, () => {
  const total = 32 * MiB;
  for (const tier of ['openai', 'anthropic'] as const) {
    it(`${tier}: a 32 MiB error body fails the call with its status and a cut message, and the connection is closed early`, async () => {
      const step = pouring(async (res) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.write('{"error":{"message":"');
        const n = await pour(res, 'a'.repeat(64 * 1024), total);
        if (!res.destroyed) res.end('"}}');
        return n;
      });
      fakes()[tier].script(step);
      const err = await callError(tier, { maxRetries: 0 });
      expect(err).toBeInstanceOf(RetryAfterError);
      expect(err.message).toContain(`${tier}: HTTP 500: `);
      expect(err.message).toMatch(/a…$/);
      expect(err.message.length).toBeLessThan(MAX_PROVIDER_MESSAGE_CHARS + 200);
      await fakes()[tier].requests[0]!.closed;
      expect(await step.written).toBeLessThan(total);
    });
  }
});

describe(`an event-stream line is at most MAX_SSE_LINE_BYTES (${MAX_SSE_LINE_BYTES})`, () => {
  // Without the cap the SDK buffered the line until the stall detector fired, then retried it.
  const slow = { streamIdleTimeoutMs: 3_000 };
  const endlessLine = (head: string) =>
    pouring(async (res) => {
      sseHead(res);
      res.write(head);
      const n = await pour(res, 'a'.repeat(64 * 1024), 2 * MiB);
      if (!res.destroyed) await new Promise((resolve) => res.once('close', resolve));
      return n;
    });

  it('OpenAI: a 2 MiB data line fails the call permanently, once, and closes the connection', async () => {
    fake.oai.otherwise(() => endlessLine('data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"'));
    const retries: string[] = [];
    const err = await callError('openai', slow, (e) => retries.push(e));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toContain(`openai: an event-stream line exceeds the limit of ${MAX_SSE_LINE_BYTES} bytes`);
    expect(retries).toEqual([]);
    expect(fake.oai.requests.length).toBe(1);
    await fake.oai.requests[0]!.closed;
  });

  it('Anthropic: the same', async () => {
    fake.ant.otherwise(() => endlessLine('event: message_start\ndata: {"type":"message_start","message":{"id":"'));
    const err = await callError('anthropic', slow);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toContain(`anthropic: an event-stream line exceeds the limit of ${MAX_SSE_LINE_BYTES} bytes`);
    expect(fake.ant.requests.length).toBe(1);
    await fake.ant.requests[0]!.closed;
  });

  it('a delta just under the cap in one line is accepted', async () => {
    const text = 'b'.repeat(MAX_SSE_LINE_BYTES - 1024);
    fake.oai.script({ kind: 'text', text, chunks: [text] });
    const res = await new LlmClient(fake.config, { sleep: noSleep }).call(tiers.openai, { ...ask, signal: new AbortController().signal });
    expect(res.text).toBe(text);
  });
});

describe(`a JSON answer is at most MAX_JSON_BODY_BYTES (${MAX_JSON_BODY_BYTES})`, () => {
  it('OpenAI: a larger JSON completion fails the call permanently, once, naming the limit, and closes the connection', async () => {
    const step = pouring(async (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"');
      const n = await pour(res, 'a'.repeat(MiB), MAX_JSON_BODY_BYTES + MiB);
      if (!res.destroyed) res.end('"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}');
      return n;
    });
    fake.oai.script(step, { kind: 'text', text: 'never asked' });
    const err = await callError('openai');
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toContain(`openai: response body exceeds the limit of ${MAX_JSON_BODY_BYTES} bytes`);
    expect(fake.oai.requests.length).toBe(1);
    await fake.oai.requests[0]!.closed;
  });
});

describe('every byte received counts as activity for the stall detector', () => {
  it('OpenAI: SSE comments every 100 ms for 3 s keep a stream with a 1 s idle timeout alive', async () => {
    fake.oai.otherwise(() => ({
      kind: 'custom',
      send: async (res) => {
        sseHead(res);
        for (let i = 0; i < 30 && !res.destroyed; i++) {
          res.write(': keepalive\n\n');
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        res.write(openAiChunk({ role: 'assistant', content: 'thought it over' }));
        res.write(openAiChunk({}, 'stop'));
        res.end('data: [DONE]\n\n');
      },
    }));
    const retries: string[] = [];
    const res = await new LlmClient({ ...fake.config, streamIdleTimeoutMs: 1_000 }, { sleep: noSleep }).call(tiers.openai, {
      ...ask,
      signal: new AbortController().signal,
      onRetry: (r) => retries.push(r.error),
    });
    expect(res.text).toBe('thought it over');
    expect(retries).toEqual([]);
    expect(fake.oai.requests.length).toBe(1);
  });
});
