// A fake OpenAI Chat Completions server (POST /v1/chat/completions): JSON and SSE streaming,
// tool calls, usage (including stream_options.include_usage), errors with Retry-After, stalls.
import type { ServerResponse } from 'node:http';
import { FakeServer, sendRaw, sse, type CustomStep, type RawStep, type RecordedRequest } from './server.js';

export interface FakeToolCall {
  id?: string;
  name: string;
  arguments: Record<string, unknown> | string;
}

/** Token counts as sent; strings and odd numbers let tests play a misbehaving provider. */
export interface FakeOpenAiUsage {
  prompt_tokens: number | string;
  completion_tokens: number | string;
}

export type OpenAiStep =
  | {
      kind: 'text';
      text: string;
      /** How the text is split into stream deltas; default: words. */
      chunks?: string[];
      usage?: FakeOpenAiUsage;
      /** No usage at all: a server that ignores stream_options.include_usage (and leaves it out of JSON). */
      noUsage?: boolean;
      /** Streaming only: after this many deltas, close the stream normally with no finish chunk and no [DONE]. */
      cutAfter?: number;
      /** Streaming only: after this many deltas, wait for `resume` before sending the rest. */
      pauseAfter?: number;
      resume?: Promise<void>;
      /** Streaming only: before sending delta i, wait for gates[i]. */
      gates?: Record<number, Promise<void>>;
      /** Streaming only: the deltas (from `pauseAfter` on, once resumed) and the finish chunk in one write, as a provider that bursts. */
      burst?: boolean;
      /** Answer one JSON completion even when the request asked for a stream. */
      ignoreStream?: boolean;
      /** The finish_reason sent; default 'stop' ('length': the provider stopped at its output limit). */
      finishReason?: string;
    }
  | { kind: 'tool_calls'; calls: FakeToolCall[]; text?: string; usage?: FakeOpenAiUsage }
  | { kind: 'error'; status: number; headers?: Record<string, string>; message?: string; type?: string; code?: string }
  /** Sends the headers and `chunks` deltas, then never another byte. */
  | { kind: 'stall'; chunks?: string[] }
  /** Drops the connection before any response. */
  | { kind: 'drop' }
  | RawStep
  | CustomStep;

const DEFAULT_USAGE = { prompt_tokens: 10, completion_tokens: 5 };

function words(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [text];
}

function chunk(req: RecordedRequest, delta: Record<string, unknown>, finish: string | null = null): string {
  return JSON.stringify({
    id: `chatcmpl-fake-${req.receivedAt.toFixed(0)}`,
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model: req.body?.model,
    system_fingerprint: null,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
}

function usageOf(u: FakeOpenAiUsage) {
  return { ...u, total_tokens: Number(u.prompt_tokens) + Number(u.completion_tokens) };
}

function toolCallsWire(calls: FakeToolCall[]) {
  return calls.map((c, i) => ({
    id: c.id ?? `call_${i + 1}`,
    type: 'function',
    function: { name: c.name, arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments) },
  }));
}

async function handle(req: RecordedRequest, res: ServerResponse, step: OpenAiStep): Promise<void> {
  if (step.kind === 'raw') return sendRaw(res, step);
  if (step.kind === 'custom') return step.send(res, req);
  if (step.kind === 'drop') {
    res.socket?.destroy();
    return;
  }
  if (step.kind === 'error') {
    res.writeHead(step.status, { 'content-type': 'application/json', ...step.headers });
    res.end(JSON.stringify({ error: { message: step.message ?? `fake error ${step.status}`, type: step.type ?? 'server_error', code: step.code ?? null, param: null } }));
    return;
  }
  const stream = req.body?.stream === true && !(step.kind === 'text' && step.ignoreStream);
  const includeUsage = req.body?.stream_options?.include_usage === true && !(step.kind === 'text' && step.noUsage);
  if (!stream) {
    if (step.kind === 'stall') return; // never answers
    const message =
      step.kind === 'text'
        ? { role: 'assistant', content: step.text, refusal: null }
        : { role: 'assistant', content: step.text ?? null, refusal: null, tool_calls: toolCallsWire(step.calls) };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id: 'chatcmpl-fake',
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: req.body?.model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: step.kind === 'text' ? (step.finishReason ?? 'stop') : 'tool_calls' }],
        ...(step.kind === 'text' && step.noUsage ? {} : { usage: usageOf(step.usage ?? DEFAULT_USAGE) }),
      }),
    );
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  sse(res, chunk(req, { role: 'assistant', content: '' }));
  if (step.kind === 'stall') {
    for (const c of step.chunks ?? []) sse(res, chunk(req, { content: c }));
    await req.closed;
    return;
  }
  if (step.kind === 'text') {
    const parts = step.chunks ?? words(step.text);
    const finish = chunk(req, {}, step.finishReason ?? 'stop');
    if (step.burst) {
      const from = step.pauseAfter ?? 0;
      for (const p of parts.slice(0, from)) sse(res, chunk(req, { content: p }));
      if (step.pauseAfter !== undefined) await Promise.race([step.resume, req.closed]);
      if (res.destroyed) return;
      res.write([...parts.slice(from).map((p) => chunk(req, { content: p })), finish].map((data) => `data: ${data}\n\n`).join(''));
    } else {
      for (let i = 0; i < parts.length; i++) {
        if (step.cutAfter !== undefined && i === step.cutAfter) return void res.end();
        if (step.pauseAfter !== undefined && i === step.pauseAfter) await Promise.race([step.resume, req.closed]);
        if (step.gates?.[i]) await Promise.race([step.gates[i], req.closed]);
        if (!sse(res, chunk(req, { content: parts[i] }))) return;
      }
      sse(res, finish);
    }
  } else {
    if (step.text) sse(res, chunk(req, { content: step.text }));
    const wire = toolCallsWire(step.calls);
    wire.forEach((tc, index) => {
      sse(res, chunk(req, { tool_calls: [{ index, id: tc.id, type: 'function', function: { name: tc.function.name, arguments: '' } }] }));
      const args = tc.function.arguments;
      const mid = Math.ceil(args.length / 2);
      for (const part of [args.slice(0, mid), args.slice(mid)]) {
        if (part) sse(res, chunk(req, { tool_calls: [{ index, function: { arguments: part } }] }));
      }
    });
    sse(res, chunk(req, {}, 'tool_calls'));
  }
  if (includeUsage) {
    const base = JSON.parse(chunk(req, {}));
    sse(res, JSON.stringify({ ...base, choices: [], usage: usageOf(step.usage ?? DEFAULT_USAGE) }));
  }
  sse(res, '[DONE]');
  res.end();
}

export type FakeOpenAi = FakeServer<OpenAiStep> & { baseUrl: string };

/** Starts a fake OpenAI server; its client base URL is `${url}/v1`. */
export async function startFakeOpenAi(): Promise<FakeOpenAi> {
  const server = new FakeServer<OpenAiStep>(
    handle,
    (method, path) => method === 'POST' && path === '/v1/chat/completions',
    () => ({ kind: 'text', text: 'ok' }),
  );
  await server.start();
  return Object.assign(server, { baseUrl: `${server.url}/v1` });
}
