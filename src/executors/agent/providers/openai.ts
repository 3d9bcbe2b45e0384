// OpenAI-compatible Chat Completions adapter (OpenAI, vLLM, Ollama, LM Studio, OpenRouter) on the
// official `openai` client, always streaming with usage. The SDK's own retries are off
// (maxRetries 0): retry, backoff, failover and stall detection live in llm-client.ts.
import type OpenAI from 'openai';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import type { ProviderConfig } from '../../../config/llm.js';
import { boundedFetch } from './bounded-fetch.js';
import { ProviderError, checkResponseSize, notProtocolError, tokenCount, wrongContentType, toProviderError, truncatedStreamError, type CallHooks, type ChatMessage, type LlmProvider, type LlmRequest, type LlmResponse, type ToolCall } from './types.js';

function toWire(messages: ChatMessage[]): ChatCompletionMessageParam[] {
  return messages.map((m): ChatCompletionMessageParam => {
    switch (m.role) {
      case 'tool':
        return { role: 'tool', tool_call_id: m.toolCallId, content: m.content };
      case 'assistant':
        return m.toolCalls?.length
          ? {
              role: 'assistant',
              content: m.content || null,
              tool_calls: m.toolCalls.map((tc) => ({ id: tc.id, type: 'function', function: { name: tc.name, arguments: tc.arguments } })),
            }
          : { role: 'assistant', content: m.content };
      default:
        return { role: m.role, content: m.content };
    }
  });
}

export class OpenAiProvider implements LlmProvider {
  readonly type = 'openai' as const;
  readonly name: string;
  readonly #apiKey: string;
  readonly #options: NonNullable<ConstructorParameters<typeof OpenAI>[0]>;
  #client: Promise<OpenAI> | undefined;

  constructor(config: ProviderConfig, timeoutMs: number) {
    this.name = config.name;
    this.#apiKey = config.apiKey;
    this.#options = { apiKey: config.apiKey, baseURL: config.baseUrl, maxRetries: 0, timeout: timeoutMs || undefined, logLevel: 'off' };
  }

  /** The SDK loads on the first call: a server that never calls this provider never loads it. */
  #sdk(): Promise<OpenAI> {
    return (this.#client ??= import('openai').then((m) => new m.default(this.#options)));
  }

  /** A client for one call: its fetch bounds what is read and feeds this call's stall detector. */
  async #clientFor(hooks: CallHooks): Promise<OpenAI> {
    return (await this.#sdk()).withOptions({ fetch: boundedFetch(this.name, hooks.onActivity) });
  }

  async complete(req: LlmRequest, hooks: CallHooks): Promise<LlmResponse> {
    const tools: ChatCompletionTool[] | undefined = req.tools?.length
      ? req.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }))
      : undefined;
    let text = '';
    let finishReason: string | undefined;
    let model = req.model;
    let chars = 0;
    const usage: LlmResponse['usage'] = {};
    // by the provider's `index`, whatever it sends: an array slot `__proto__` or `length` was
    // Array.prototype or a number, and an index of 1e9 a billion-long sparse array
    const calls = new Map<unknown, ToolCall>();
    let lastCall: unknown;
    try {
      const { data: stream, response } = await (await this.#clientFor(hooks)).chat.completions
        .create(
          { model: req.model, messages: toWire(req.messages), ...(tools ? { tools } : {}), stream: true, stream_options: { include_usage: true } },
          { signal: hooks.signal, ...(hooks.traceparent ? { headers: { traceparent: hooks.traceparent } } : {}) },
        )
        .withResponse();
      const type = response.headers.get('content-type') ?? '';
      if (!type.includes('text/event-stream')) {
        // a server that ignores `stream` answers one JSON completion
        if (!/json/i.test(type)) throw wrongContentType(this.name, response);
        // a body past MAX_JSON_BODY_BYTES fails with its own ProviderError, which must not read as a parse error
        const body = (await response.json().catch((err: unknown) => {
          if (err instanceof ProviderError) throw err;
          return undefined;
        })) as ChatCompletion | undefined;
        if (!Array.isArray(body?.choices)) throw notProtocolError(this.name, 'a JSON body that is no chat completion');
        return this.#fromJson(body, req.model, hooks);
      }
      for await (const chunk of stream as AsyncIterable<ChatCompletionChunk>) {
        if (chunk.model) model = chunk.model;
        if (chunk.usage) {
          usage.input_tokens = tokenCount(chunk.usage.prompt_tokens);
          usage.output_tokens = tokenCount(chunk.usage.completion_tokens);
        }
        const choice = chunk.choices?.[0];
        if (!choice) continue;
        if (choice.finish_reason) finishReason = choice.finish_reason;
        const delta = choice.delta;
        chars += (delta?.content?.length ?? 0) + (delta?.tool_calls ?? []).reduce((n, tc) => n + (tc.function?.arguments?.length ?? 0), 0);
        checkResponseSize(this.name, chars);
        if (delta?.content) {
          text += delta.content;
          hooks.onDelta?.(delta.content);
        }
        for (const tc of delta?.tool_calls ?? []) {
          // some OpenAI-compatible servers leave `index` out: a fragment with an id starts a call,
          // one without continues the last (under one undefined key, every call became one)
          const key: unknown = tc.index !== undefined && tc.index !== null ? tc.index : tc.id ? `id:${tc.id}` : lastCall;
          lastCall = key;
          let slot = calls.get(key);
          if (!slot) calls.set(key, (slot = { id: '', name: '', arguments: '' }));
          if (tc.id) slot.id = tc.id;
          if (tc.function?.name) slot.name += tc.function.name;
          if (tc.function?.arguments) slot.arguments += tc.function.arguments;
        }
      }
    } catch (err) {
      if (hooks.signal.aborted) throw hooks.signal.reason ?? err;
      throw toProviderError(this.name, err, this.#apiKey);
    }
    // the SDK stream ends quietly when aborted mid-iteration: a truncated answer is not an answer
    if (hooks.signal.aborted) throw hooks.signal.reason;
    // nor is a stream the server closed before a chunk with finish_reason (a dropped connection)
    if (finishReason === undefined) throw truncatedStreamError(this.name);
    const byIndex = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' ? a - b : 0);
    const toolCalls = [...calls.entries()].sort((a, b) => byIndex(a[0], b[0])).map(([, c], i) => ({ ...c, id: c.id || `call_${i}` }));
    return { text, toolCalls, usage, finishReason, model };
  }

  #fromJson(body: ChatCompletion, model: string, hooks: CallHooks): LlmResponse {
    const choice = body.choices?.[0];
    const text = choice?.message?.content ?? '';
    const toolCalls = (choice?.message?.tool_calls ?? []).flatMap((tc, i) =>
      tc.type === 'function' ? [{ id: tc.id || `call_${i}`, name: tc.function.name, arguments: tc.function.arguments ?? '' }] : [],
    );
    checkResponseSize(this.name, text.length + toolCalls.reduce((n, tc) => n + tc.arguments.length, 0));
    if (text) hooks.onDelta?.(text);
    return {
      text,
      toolCalls,
      usage: body.usage ? { input_tokens: tokenCount(body.usage.prompt_tokens), output_tokens: tokenCount(body.usage.completion_tokens) } : {},
      finishReason: choice?.finish_reason ?? 'stop',
      model: body.model || model,
    };
  }
}
