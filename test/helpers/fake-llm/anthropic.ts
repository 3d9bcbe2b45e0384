// A fake Anthropic Messages server (POST /v1/messages): JSON and the named-event stream
// (message_start, content_block_*, message_delta, message_stop), tool_use blocks, usage, errors.
import type { ServerResponse } from 'node:http';
import { FakeServer, sendRaw, sse, type CustomStep, type RawStep, type RecordedRequest } from './server.js';
import type { FakeToolCall } from './openai.js';

/** Token counts as sent; strings and odd numbers let tests play a misbehaving provider. */
export interface FakeAnthropicUsage {
  input_tokens: number | string;
  output_tokens: number | string;
}

export type AnthropicStep =
  | {
      kind: 'text';
      text: string;
      chunks?: string[];
      usage?: FakeAnthropicUsage;
      /** Streaming only: no usage in message_start nor message_delta (a proxy that drops it). */
      noUsage?: boolean;
      /** Streaming only: after this many text deltas, close the stream normally (no message_delta, no message_stop). */
      cutAfter?: number;
    }
  | { kind: 'tool_calls'; calls: FakeToolCall[]; text?: string; usage?: FakeAnthropicUsage }
  | { kind: 'error'; status: number; headers?: Record<string, string>; type?: string; message?: string }
  | { kind: 'stall' }
  | RawStep
  | CustomStep;

const DEFAULT_USAGE = { input_tokens: 12, output_tokens: 6 };

function content(step: Extract<AnthropicStep, { kind: 'text' | 'tool_calls' }>) {
  if (step.kind === 'text') return [{ type: 'text', text: step.text }];
  return [
    ...(step.text ? [{ type: 'text', text: step.text }] : []),
    ...step.calls.map((c, i) => ({
      type: 'tool_use',
      id: c.id ?? `toolu_${i + 1}`,
      name: c.name,
      input: typeof c.arguments === 'string' ? JSON.parse(c.arguments) : c.arguments,
    })),
  ];
}

function ev(res: ServerResponse, type: string, data: Record<string, unknown>): void {
  sse(res, JSON.stringify({ type, ...data }), type);
}

async function handle(req: RecordedRequest, res: ServerResponse, step: AnthropicStep): Promise<void> {
  if (step.kind === 'raw') return sendRaw(res, step);
  if (step.kind === 'custom') return step.send(res, req);
  if (step.kind === 'error') {
    res.writeHead(step.status, { 'content-type': 'application/json', ...step.headers });
    res.end(JSON.stringify({ type: 'error', error: { type: step.type ?? 'api_error', message: step.message ?? `fake error ${step.status}` } }));
    return;
  }
  const model = req.body?.model;
  if (step.kind === 'stall') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    ev(res, 'message_start', { message: { id: 'msg_fake', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } } });
    await req.closed;
    return;
  }
  const usage = step.usage ?? DEFAULT_USAGE;
  const blocks = content(step);
  const stopReason = step.kind === 'text' ? 'end_turn' : 'tool_use';
  if (req.body?.stream !== true) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'msg_fake', type: 'message', role: 'assistant', model, content: blocks, stop_reason: stopReason, stop_sequence: null, usage }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const noUsage = step.kind === 'text' && step.noUsage === true;
  ev(res, 'message_start', {
    message: { id: 'msg_fake', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, ...(noUsage ? {} : { usage: { input_tokens: usage.input_tokens, output_tokens: 1 } }) },
  });
  ev(res, 'ping', {});
  const cutAfter = step.kind === 'text' ? step.cutAfter : undefined;
  let sent = 0;
  for (const [index, b] of blocks.entries()) {
    if (b.type === 'text') {
      ev(res, 'content_block_start', { index, content_block: { type: 'text', text: '' } });
      const parts = step.kind === 'text' && step.chunks ? step.chunks : (b as { text: string }).text.match(/\S+\s*|\s+/g) ?? [];
      for (const t of parts) {
        if (cutAfter !== undefined && sent++ === cutAfter) return void res.end();
        ev(res, 'content_block_delta', { index, delta: { type: 'text_delta', text: t } });
      }
    } else {
      const tu = b as { id: string; name: string; input: unknown };
      ev(res, 'content_block_start', { index, content_block: { type: 'tool_use', id: tu.id, name: tu.name, input: {} } });
      const json = JSON.stringify(tu.input);
      const mid = Math.ceil(json.length / 2);
      for (const part of [json.slice(0, mid), json.slice(mid)]) if (part) ev(res, 'content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: part } });
    }
    ev(res, 'content_block_stop', { index });
  }
  ev(res, 'message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, ...(noUsage ? {} : { usage: { output_tokens: usage.output_tokens } }) });
  ev(res, 'message_stop', {});
  res.end();
}

export type FakeAnthropic = FakeServer<AnthropicStep> & { baseUrl: string };

/** Starts a fake Anthropic server; its client base URL is the server root (the SDK adds /v1). */
export async function startFakeAnthropic(): Promise<FakeAnthropic> {
  const server = new FakeServer<AnthropicStep>(
    handle,
    (method, path) => method === 'POST' && path === '/v1/messages',
    () => ({ kind: 'text', text: 'ok' }),
  );
  await server.start();
  return Object.assign(server, { baseUrl: server.url });
}
