// Anthropic Messages adapter on the official `@anthropic-ai/sdk`, always streaming. System
// messages become the `system` field, tool results become user turns of tool_result blocks, and
// consecutive same-role turns are merged (the API wants user/assistant alternation).
import type Anthropic from '@anthropic-ai/sdk';
import type { MessageParam, RawMessageStreamEvent, Tool } from '@anthropic-ai/sdk/resources/messages';
import type { ProviderConfig } from '../../../config/llm.js';
import { boundedFetch } from './bounded-fetch.js';
import { checkResponseSize, tokenCount, wrongContentType, toProviderError, truncatedStreamError, type CallHooks, type ChatMessage, type LlmProvider, type LlmRequest, type LlmResponse, type ToolCall } from './types.js';

type Block = Exclude<MessageParam['content'], string>[number];

function parseArgs(raw: string): Record<string, unknown> {
  try {
    const v = JSON.parse(raw || '{}');
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : { value: v };
  } catch {
    return { _raw: raw };
  }
}

export function toAnthropicWire(messages: ChatMessage[]): { system: string | undefined; messages: MessageParam[] } {
  const system = messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n\n') || undefined;
  const out: { role: 'user' | 'assistant'; content: Block[] }[] = [];
  for (const m of messages) {
    if (m.role === 'system') continue;
    let role: 'user' | 'assistant';
    let blocks: Block[];
    if (m.role === 'tool') {
      role = 'user';
      blocks = [{ type: 'tool_result', tool_use_id: m.toolCallId, content: m.content }];
    } else if (m.role === 'assistant') {
      role = 'assistant';
      blocks = [
        ...(m.content ? [{ type: 'text' as const, text: m.content }] : []),
        ...(m.toolCalls ?? []).map((tc) => ({ type: 'tool_use' as const, id: tc.id, name: tc.name, input: parseArgs(tc.arguments) })),
      ];
    } else {
      role = 'user';
      blocks = [{ type: 'text', text: m.content }];
    }
    if (blocks.length === 0) continue;
    const last = out[out.length - 1];
    if (last && last.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  }
  return { system, messages: out };
}

export class AnthropicProvider implements LlmProvider {
  readonly type = 'anthropic' as const;
  readonly name: string;
  readonly #apiKey: string;
  readonly #options: NonNullable<ConstructorParameters<typeof Anthropic>[0]>;
  #client: Promise<Anthropic> | undefined;

  constructor(config: ProviderConfig, timeoutMs: number) {
    this.name = config.name;
    this.#apiKey = config.apiKey;
    this.#options = { apiKey: config.apiKey, baseURL: config.baseUrl, maxRetries: 0, timeout: timeoutMs || undefined, logLevel: 'off' };
  }

  /** The SDK loads on the first call: a server that never calls this provider never loads it. */
  #sdk(): Promise<Anthropic> {
    return (this.#client ??= import('@anthropic-ai/sdk').then((m) => new m.default(this.#options)));
  }

  /** A client for one call: its fetch bounds what is read and feeds this call's stall detector. */
  async #clientFor(hooks: CallHooks): Promise<Anthropic> {
    return (await this.#sdk()).withOptions({ fetch: boundedFetch(this.name, hooks.onActivity) });
  }

  async complete(req: LlmRequest, hooks: CallHooks): Promise<LlmResponse> {
    const { system, messages } = toAnthropicWire(req.messages);
    const tools: Tool[] | undefined = req.tools?.length
      ? req.tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.parameters as Tool['input_schema'] }))
      : undefined;
    let text = '';
    let finishReason = 'end_turn';
    let model = req.model;
    let stopped = false;
    let chars = 0;
    const usage: LlmResponse['usage'] = {};
    const blocks = new Map<number, ToolCall>();
    try {
      const { data: stream, response } = await (await this.#clientFor(hooks)).messages
        .create(
          { model: req.model, max_tokens: req.maxOutputTokens, messages, ...(system ? { system } : {}), ...(tools ? { tools } : {}), stream: true },
          { signal: hooks.signal, ...(hooks.traceparent ? { headers: { traceparent: hooks.traceparent } } : {}) },
        )
        .withResponse();
      const type = response.headers.get('content-type') ?? '';
      if (!type.includes('text/event-stream')) throw wrongContentType(this.name, response);
      for await (const ev of stream as AsyncIterable<RawMessageStreamEvent>) {
        switch (ev.type) {
          case 'message_start':
            model = ev.message.model || model;
            if (ev.message.usage) {
              usage.input_tokens = tokenCount(ev.message.usage.input_tokens);
              usage.output_tokens = tokenCount(ev.message.usage.output_tokens);
            }
            break;
          case 'content_block_start':
            if (ev.content_block.type === 'tool_use') blocks.set(ev.index, { id: ev.content_block.id, name: ev.content_block.name, arguments: '' });
            break;
          case 'content_block_delta':
            if (ev.delta.type === 'text_delta' || ev.delta.type === 'input_json_delta') {
              chars += ev.delta.type === 'text_delta' ? ev.delta.text.length : ev.delta.partial_json.length;
              checkResponseSize(this.name, chars);
            }
            if (ev.delta.type === 'text_delta') {
              text += ev.delta.text;
              hooks.onDelta?.(ev.delta.text);
            } else if (ev.delta.type === 'input_json_delta') {
              const b = blocks.get(ev.index);
              if (b) b.arguments += ev.delta.partial_json;
            }
            break;
          case 'message_delta':
            if (ev.delta.stop_reason) finishReason = ev.delta.stop_reason;
            if (ev.usage?.output_tokens !== undefined && ev.usage.output_tokens !== null) usage.output_tokens = tokenCount(ev.usage.output_tokens);
            if (ev.usage?.input_tokens !== undefined && ev.usage.input_tokens !== null) usage.input_tokens = tokenCount(ev.usage.input_tokens);
            break;
          case 'message_stop':
            stopped = true;
            break;
          default:
            break;
        }
      }
    } catch (err) {
      if (hooks.signal.aborted) throw hooks.signal.reason ?? err;
      throw toProviderError(this.name, err, this.#apiKey);
    }
    // the SDK stream ends quietly when aborted mid-iteration: a truncated answer is not an answer
    if (hooks.signal.aborted) throw hooks.signal.reason;
    // nor is a stream the server closed before message_stop (a dropped connection)
    if (!stopped) throw truncatedStreamError(this.name);
    const toolCalls = [...blocks.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => ({ ...c, arguments: c.arguments || '{}' }));
    return { text, toolCalls, usage, finishReason: finishReason === 'tool_use' ? 'tool_calls' : finishReason, model };
  }
}
