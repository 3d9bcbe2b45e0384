// OpenAI-compatible surface: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions
// (JSON and SSE chunks). Each chat call is an agent task — visible, cancellable, accounted — and
// errors use OpenAI's {error: {message, type, code}} shape so any OpenAI client library works.
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ApiError, clientErrorCode, type ErrorCode } from '../../contract/errors.js';
import { hijackedHeaders } from '../hardening.js';
import { SseSink } from '../stream-sinks.js';
import { ChatStreamWriter } from '../chat-stream.js';
import { ErrorResponse, errorResponses, ID_REGEX, type SubmitTaskBody } from '../../contract/tasks.js';
import type { TaskEvent } from '../../contract/events.js';
import type { Principal } from '../../auth/scopes.js';
import type { StreamSlots } from './stream.js';
import type { CredentialCloseReason } from '../stream-credentials.js';
import { DEFAULT_STREAM_STALL_MS } from '../../config/index.js';
import { MODEL_TIERS, ModelRouteError, knownModels, llmNotConfiguredMessage, priceFor, resolveModel, tokenBudgetProblem, type LlmConfig, type ModelTier } from '../../config/llm.js';

/** The model id that means "the default tier"; `taskgate-<tier>` picks a tier. */
export const TASKGATE_MODEL = 'taskgate';
/** Comment frames keep idle streams open through proxies. */
export const CHAT_KEEPALIVE_MS = 15_000;

export interface FollowedEvent {
  event: TaskEvent;
  /** Live-only (LLM_PARTIAL). */
  ephemeral: boolean;
}

export interface ChatTaskView {
  status: string;
  result: string | null;
  error: string | null;
  usage: { input_tokens: number; output_tokens: number; total_tokens: number; estimated_cost: number } | null;
  model_used: string | null;
}

export interface OpenAiRouteDeps {
  llm: LlmConfig | undefined;
  /**
   * Submits an agent task exactly as POST /api/v1/tasks does (validation, sessions, limits: the
   * chat route itself is not rate limited, so a call takes one token, the submit's). `headers`:
   * the submit's rate-limit headers, passed on to the client.
   */
  submitAgentTask(principal: Principal, body: SubmitTaskBody, req: FastifyRequest): Promise<{ taskId: string; sessionId: string | null; headers?: Record<string, string> }>;
  /** Replays the task's events from the first, then follows live ones, ending after STREAM_END. */
  followTask(principal: Principal, taskId: string, signal: AbortSignal): AsyncIterable<FollowedEvent>;
  getTask(principal: Principal, taskId: string): Promise<ChatTaskView | undefined>;
  cancelTask(principal: Principal, taskId: string, reason: string, req: FastifyRequest): Promise<void>;
  /** The per-principal stream cap a `stream: true` call takes a slot of (the stream routes' own); none: uncapped. */
  streamSlots?: StreamSlots;
  /**
   * Watches the call's credential while it waits for its task, as the stream routes watch theirs
   * (StreamCredentials.watch): `close` once it is revoked or expires. None: not watched.
   */
  watchCredentials?(p: Principal, requestStartMs: number, close: (reason: CredentialCloseReason) => void): () => void;
  /** Defaults to req.principal, set by the app's auth hook (routes declare their scope). */
  authenticate?: (req: FastifyRequest) => Promise<Principal>;
  /** Unix seconds reported as `created` of models. Default: when the plugin was built. */
  createdAt?: number;
  /**
   * On server close, how long calls still waiting for their tasks get to be answered before they
   * are ended (503, their tasks cancelled): TASKGATE_SHUTDOWN_GRACE_MS, the grace the worker gives
   * the running attempts such a call waits for. Default 0: ended at once.
   */
  shutdownGraceMs?: number;
  /** A streamed call's client that is behind and takes nothing for this long is let go, its task cancelled (TASKGATE_STREAM_STALL_MS, ms). Default: DEFAULT_STREAM_STALL_MS. */
  stallMs?: number;
}

interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const NullableString = Type.Union([Type.String(), Type.Null()]);
const OpenAiErrorSchema = Type.Object({ error: Type.Object({ message: Type.String(), type: Type.String(), param: NullableString, code: NullableString }) });
/** OpenAI's error body; only a server shutting down answers before the route, in the envelope. */
const openAiErrors = (method: 'GET' | 'POST', own: number[]) => ({
  ...errorResponses(method, 'scope', own, OpenAiErrorSchema),
  503: { ...Type.Union([OpenAiErrorSchema, ErrorResponse]), description: 'Unavailable: the server is shutting down or a dependency is down (with Retry-After)' },
});
const ModelSchema = Type.Object({ id: Type.String(), object: Type.Literal('model'), created: Type.Integer(), owned_by: Type.String() });
const ChatCompletionSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('chat.completion'),
  created: Type.Integer(),
  model: Type.String(),
  system_fingerprint: Type.Null(),
  choices: Type.Array(Type.Object({
    index: Type.Integer(),
    message: Type.Object({ role: Type.Literal('assistant'), content: Type.String(), refusal: Type.Null() }),
    logprobs: Type.Null(),
    finish_reason: Type.String(),
  })),
  usage: Type.Object({ prompt_tokens: Type.Integer(), completion_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});

export class OpenAiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null,
    readonly param: string | null = null,
    /** Sent with the answer by the plugin's error handler. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

/**
 * On the answers for a task that ended without one: OpenAI's Node and Python clients retry
 * 408/409/429/≥500 (twice by default) unless told not to, and a retry submits a new task — it ran
 * a failing task three times (36 upstream calls) and undid an operator's cancel.
 */
const NO_RETRY = { 'x-should-retry': 'false' };

const invalid = (message: string, param: string | null = null, code: string | null = null) => new OpenAiError(400, message, 'invalid_request_error', code, param);

function typeForStatus(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** OpenAI's error body, for answers made outside this plugin's scope (a wrong method, a malformed path: app.ts). */
export function openAiErrorBody(status: number, message: string, code: string | null, param: string | null = null): OpenAiErrorBody {
  return { error: { message, type: typeForStatus(status), param, code } };
}

const CODE_NAMES: Partial<Record<ErrorCode, string>> = { UNAUTHORIZED: 'invalid_api_key', FORBIDDEN: 'insufficient_scope', RATE_LIMITED: 'rate_limit_exceeded' };

function toOpenAiError(err: unknown): { status: number; body: OpenAiErrorBody; headers?: Record<string, string> } {
  if (err instanceof OpenAiError) return { status: err.status, body: { error: { message: err.message, type: err.type, param: err.param, code: err.code } }, headers: err.headers };
  if (err instanceof ApiError) {
    const code = CODE_NAMES[err.code] ?? err.code.toLowerCase();
    const message = err.status >= 500 ? 'The server had an error while processing your request' : err.message;
    return { status: err.status, body: { error: { message, type: typeForStatus(err.status), param: (err.details?.path as string) ?? null, code } }, headers: err.headers };
  }
  const fe = err as FastifyError & { validation?: { instancePath?: string; message?: string }[] };
  if (fe.validation) {
    const v = fe.validation[0];
    const param = v?.instancePath?.replace(/^\//, '').replace(/\//g, '.') || null;
    return { status: 400, body: { error: { message: `${param ?? 'body'} ${v?.message ?? 'is invalid'}`, type: 'invalid_request_error', param, code: null } } };
  }
  const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500;
  if (status >= 500) return { status, body: { error: { message: 'The server had an error while processing your request', type: typeForStatus(status), param: null, code: null } } };
  const code = clientErrorCode(status);
  return { status, body: { error: { message: fe.message, type: typeForStatus(status), param: null, code: CODE_NAMES[code] ?? code.toLowerCase() } } };
}

function textOf(content: unknown, index: number): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    return content
      .map((part: { type?: unknown; text?: unknown }, j) => {
        if (part?.type !== 'text') {
          throw invalid(`messages[${index}].content: only text parts are supported, got ${String(part?.type)}`, `messages[${index}].content`, 'unsupported_content');
        }
        if (typeof part.text !== 'string') throw invalid(`messages[${index}].content[${j}].text must be a string`, `messages[${index}].content[${j}].text`);
        return part.text;
      })
      .join('');
  }
  throw invalid(`messages[${index}].content must be a string or an array of text parts`, `messages[${index}].content`);
}

interface ChatBody {
  model?: unknown;
  messages?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: unknown } | null;
  n?: unknown;
  tools?: unknown;
  functions?: unknown;
  response_format?: unknown;
  mode?: unknown;
  research_strategy?: unknown;
}

/** Maps a chat model id to the agent's model fields; undefined when unknown. */
export function chatModelFields(llm: LlmConfig, model: string): Pick<SubmitTaskBody, 'model_tier' | 'model_override'> | undefined {
  if (model === TASKGATE_MODEL) return {};
  const tier = model.startsWith(`${TASKGATE_MODEL}-`) ? model.slice(TASKGATE_MODEL.length + 1) : undefined;
  if (tier && MODEL_TIERS.includes(tier as ModelTier)) return { model_tier: tier as ModelTier };
  if (knownModels(llm).some((r) => r.model === model) || priceFor(llm, model) !== undefined) return { model_override: model };
  return undefined;
}

export function listModels(llm: LlmConfig | undefined, created: number) {
  if (!llm) return [];
  const out = [TASKGATE_MODEL, ...MODEL_TIERS.map((t) => `${TASKGATE_MODEL}-${t}`)].map((id) => ({ id, object: 'model' as const, created, owned_by: 'taskgate' }));
  const seen = new Set(out.map((m) => m.id));
  for (const r of knownModels(llm)) {
    if (seen.has(r.model)) continue;
    seen.add(r.model);
    out.push({ id: r.model, object: 'model', created, owned_by: r.provider });
  }
  return out;
}

/**
 * Validates a chat request and turns it into the agent task body. A malformed request is a 400
 * whether or not an LLM is configured; a well-formed one without an LLM is 422 llm_not_configured.
 */
export function chatToTask(llm: LlmConfig | undefined, body: ChatBody, sessionHeader: string | undefined): { task: SubmitTaskBody; model: string; stream: boolean; includeUsage: boolean; lastIndex: number } {
  if (typeof body.model !== 'string' || !body.model) throw invalid('you must provide a model parameter', 'model');
  if (!Array.isArray(body.messages) || body.messages.length === 0) throw invalid('messages must be a non-empty array', 'messages');
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw invalid('only n = 1 is supported', 'n');
  if ((Array.isArray(body.tools) && body.tools.length) || (Array.isArray(body.functions) && body.functions.length)) {
    throw invalid('client-side tools are not supported: Taskgate agents run their own tools', 'tools', 'unsupported_parameter');
  }
  // structured-output helpers (openai .parse, AI SDK generateObject, LangChain withStructuredOutput)
  // would get the agent's prose and fail to parse it; the sampling parameters are taken and
  // ignored instead (the agent's configuration decides them), as they change no answer's shape
  const format = body.response_format as { type?: unknown } | null | undefined;
  if (format !== undefined && format !== null && format?.type !== 'text') {
    const type = typeof format === 'object' ? String(format.type) : typeof format;
    throw invalid(`response_format ${type} is not supported: Taskgate agents answer in text`, 'response_format', 'unsupported_parameter');
  }
  const messages = body.messages.map((m: { role?: unknown; content?: unknown }, i) => {
    if (typeof m?.role !== 'string') throw invalid(`messages[${i}].role is required`, `messages[${i}].role`);
    return { role: m.role, content: textOf(m.content, i) };
  });
  for (const name of ['mode', 'research_strategy'] as const) {
    // its values are the canonical submit's to check; a value that is not even a string is refused here, not dropped
    if (body[name] !== undefined && body[name] !== null && typeof body[name] !== 'string') throw invalid(`${name} must be a string`, name);
  }
  const last = messages[messages.length - 1]!;
  if (last.role !== 'user' || !last.content.trim()) throw invalid('the last message must be a non-empty user message', `messages[${messages.length - 1}]`);
  if (sessionHeader !== undefined && !new RegExp(ID_REGEX).test(sessionHeader)) throw invalid('X-Session-ID must match ' + ID_REGEX, 'X-Session-ID');
  if (!llm) throw new OpenAiError(422, llmNotConfiguredMessage, 'invalid_request_error', 'llm_not_configured');
  const fields = chatModelFields(llm, body.model);
  if (!fields) throw new OpenAiError(404, `The model '${body.model}' does not exist`, 'invalid_request_error', 'model_not_found', 'model');
  const earlier = messages.slice(0, -1).filter((m) => ['system', 'developer', 'user', 'assistant'].includes(m.role));
  // with a session the server remembers the turns; only instructions are taken from the request
  const history = sessionHeader ? earlier.filter((m) => m.role === 'system' || m.role === 'developer') : earlier;
  const task: SubmitTaskBody = {
    query: last.content,
    ...fields,
    ...(sessionHeader ? { session_id: sessionHeader } : {}),
    context: { ...(history.length ? { history } : {}), source: 'openai' },
    ...(typeof body.mode === 'string' ? { mode: body.mode as SubmitTaskBody['mode'] } : {}),
    ...(typeof body.research_strategy === 'string' ? { research_strategy: body.research_strategy as SubmitTaskBody['research_strategy'] } : {}),
    metadata: { source: 'openai', tags: ['openai'] },
  };
  const stream = body.stream === true;
  return { task, model: body.model, stream, includeUsage: stream && body.stream_options?.include_usage === true, lastIndex: messages.length - 1 };
}

/**
 * The submit's refusals of fields the chat route made up, named by the field the client sent: the
 * earlier messages become `context.history` (capped at TASKGATE_MAX_OBJECT_BYTES, 64 KiB by
 * default) and the last one `query` (10,000 characters) — a client told about `context` has no
 * such field to fix.
 */
function inTermsOfMessages(err: unknown, lastIndex: number): unknown {
  if (!(err instanceof ApiError) || err.code !== 'VALIDATION_ERROR') return err;
  const path = err.details?.path;
  if (path === 'context' || (typeof path === 'string' && path.startsWith('context.history'))) {
    const bytes = /(\d+) bytes/.exec(err.message)?.[1];
    const limit = bytes ? ` (at most ${bytes} bytes)` : '';
    return invalid(
      `messages: the conversation before the last message is too large${limit}; send fewer or shorter messages, or an X-Session-ID header so the server keeps the turns`,
      'messages', 'context_length_exceeded',
    );
  }
  if (path === 'query') {
    const param = `messages[${lastIndex}].content`;
    return invalid(err.message.replace(/^query\b/, param), param);
  }
  return err;
}

function usageOf(v: ChatTaskView) {
  const u = v.usage ?? { input_tokens: 0, output_tokens: 0, total_tokens: 0 };
  return { prompt_tokens: u.input_tokens, completion_tokens: u.output_tokens, total_tokens: u.total_tokens };
}

/**
 * The choice's finish_reason: the provider's, from the task's last LLM_OUTPUT event (the answer's
 * call), when OpenAI's clients know it — `length` tells them the text was cut at the output limit
 * (Anthropic's `max_tokens`); anything else (`tool_calls`, `end_turn`, none) is `stop`.
 */
function finishReasonOf(payload: Record<string, unknown> | null | undefined): string {
  const reason = payload?.finish_reason;
  if (reason === 'length' || reason === 'max_tokens') return 'length';
  return reason === 'content_filter' ? 'content_filter' : 'stop';
}

/**
 * What a chat stream sends of an agent's answer deltas, so that what the client adds up is the
 * task's `result` — or, when it cannot be, the stream says so instead of ending on other text.
 * The answer is the text of the task's last answer call; the client's text (`sent`) only ever
 * grows, so a call's text is sent as far as it extends `sent`:
 * - a call that may end in tool calls (`with_tools`) is held: text a model writes before calling
 *   a tool is not the answer. It is offered when its LLM_OUTPUT shows no tool calls;
 * - a retried call (`attempt`) or task (`task_attempt`, WORKFLOW_STARTED) starts its text over:
 *   nothing is sent until it passes what the client has, and nothing at all if it differs.
 * Replayed calls send no deltas; `finish` sends the rest of the result in one piece.
 */
export class ChatAnswer {
  /** The text the client has, or is queued for it (ChatStreamWriter). */
  sent = '';
  #texts = new Map<string, string>();
  #latest = new Map<string, string>();
  /** The call (key) whose text `sent` is: its next delta is what the client lacks. */
  #sentKey: string | undefined;

  /** The content to send for a followed event ('' for none). */
  push(event: TaskEvent): string {
    const p = event.payload ?? {};
    if (event.type === 'WORKFLOW_STARTED') {
      this.#texts.clear();
      this.#latest.clear();
      this.#sentKey = undefined;
      return '';
    }
    if (event.type === 'LLM_OUTPUT') {
      const key = typeof p.call_id === 'string' ? this.#latest.get(p.call_id) : undefined;
      const toolCalls = Array.isArray(p.tool_calls) ? p.tool_calls.length : 0;
      return key !== undefined && toolCalls === 0 ? this.#offer(key, this.#texts.get(key) ?? '') : '';
    }
    if (event.type !== 'LLM_PARTIAL' || p.answer !== true) return '';
    const delta = typeof p.delta === 'string' ? p.delta : event.message ?? '';
    const callId = String(p.call_id ?? '');
    const key = `${String(p.task_attempt ?? '')}|${callId}|${String(p.attempt ?? '')}`;
    const text = (this.#texts.get(key) ?? '') + delta;
    this.#texts.set(key, text);
    this.#latest.set(callId, key);
    if (p.with_tools === true) return '';
    // the call the client follows: no comparison of the whole text per delta (O(answer) each: an
    // answer of 38,000 deltas of 100 characters blocked the event loop for minutes, past the lease)
    if (key === this.#sentKey) {
      this.sent = text;
      return delta;
    }
    return this.#offer(key, text);
  }

  /** The rest of `result` to send, or undefined when the client was sent text that is not its start. */
  finish(result: string): string | undefined {
    if (!result.startsWith(this.sent)) return undefined;
    const rest = result.slice(this.sent.length);
    this.sent = result;
    this.#sentKey = undefined;
    return rest;
  }

  #offer(key: string, text: string): string {
    if (text.length <= this.sent.length || !text.startsWith(this.sent)) return '';
    const rest = text.slice(this.sent.length);
    this.sent = text;
    this.#sentKey = key;
    return rest;
  }
}

/**
 * The answer for a task that ended without one. A cancel is a 400, a status no client retries (the
 * Vercel AI SDK ignores x-should-retry and retries 409 and ≥500 — a cancel is the one outcome it
 * must not undo).
 */
function failureOf(v: ChatTaskView | undefined): OpenAiError {
  if (!v) return new OpenAiError(500, 'the task disappeared', 'server_error', 'task_lost');
  if (v.status === 'TIMEOUT') return new OpenAiError(504, v.error ?? 'the task timed out', 'server_error', 'timeout', null, NO_RETRY);
  if (v.status === 'CANCELLED') return new OpenAiError(400, 'the task was cancelled', 'invalid_request_error', 'task_cancelled', null, NO_RETRY);
  return new OpenAiError(500, v.error ?? 'the task failed', 'server_error', 'task_failed', null, NO_RETRY);
}

export function openaiRoutes(deps: OpenAiRouteDeps) {
  const created = deps.createdAt ?? Math.floor(Date.now() / 1000);
  const stallMs = deps.stallMs ?? DEFAULT_STREAM_STALL_MS;
  const principalOf = (req: FastifyRequest) => (deps.authenticate ? deps.authenticate(req) : Promise.resolve(req.principal));

  return async function plugin(app: FastifyInstance): Promise<void> {
    // The calls waiting for their tasks. A server's close waits for the requests in flight, and
    // such a request waits for a task — which may run on this process's worker (stopped along
    // with the server), or anywhere for as long as its timeout: the close hung. Calls still open
    // after the grace end as a client gone would (their tasks cancelled: a client's retry is a
    // new task), answered 503 with a retry hint — the stream routes close theirs the same way.
    const open = new Set<(err: OpenAiError) => Promise<unknown>>();
    app.addHook('preClose', async () => {
      const until = Date.now() + (deps.shutdownGraceMs ?? 0);
      while (open.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(50, until - Date.now())));
      const shuttingDown = new OpenAiError(503, 'The server is shutting down: the call was ended and its task cancelled; retry it', 'server_error', 'server_shutting_down', null, { 'retry-after': '1' });
      await Promise.all([...open].map((end) => end(shuttingDown)));
    });

    // the response schemas document OpenAI's bodies; the bodies are sent as built, untouched by a schema serializer
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    app.setErrorHandler((err, req, reply) => {
      const { status, body, headers } = toOpenAiError(err);
      if (status >= 500) req.log.error({ err }, 'openai route failed');
      if (headers) reply.headers(headers);
      return reply.code(status).send(body);
    });

    app.get('/v1/models', {
      config: { scope: 'tasks:read' },
      schema: {
        tags: ['openai'], summary: 'List models (OpenAI-compatible)',
        response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(ModelSchema) }), ...openAiErrors('GET', []) },
      },
    }, async (req) => {
      await principalOf(req);
      return { object: 'list', data: listModels(deps.llm, created) };
    });

    app.get<{ Params: { id: string } }>('/v1/models/:id', {
      config: { scope: 'tasks:read' },
      schema: { tags: ['openai'], summary: 'Get a model (OpenAI-compatible)', response: { 200: ModelSchema, ...openAiErrors('GET', [404]) } },
    }, async (req) => {
      await principalOf(req);
      const model = listModels(deps.llm, created).find((m) => m.id === req.params.id);
      if (!model) throw new OpenAiError(404, `The model '${req.params.id}' does not exist`, 'invalid_request_error', 'model_not_found', 'model');
      return model;
    });

    app.post<{ Body: ChatBody }>('/v1/chat/completions', {
      // limited once, by the submit it makes (whose 429 and headers are passed on)
      config: { scope: 'tasks:execute', rateLimit: false },
      schema: {
        tags: ['openai'], summary: 'Chat completion as an agent task (OpenAI-compatible, stream or not)', body: { type: 'object' },
        response: {
          200: {
            description: 'The completion; with `stream: true`, `chat.completion.chunk` frames as Server-Sent Events ending with `data: [DONE]`',
            content: { 'application/json': { schema: ChatCompletionSchema }, 'text/event-stream': { schema: Type.String() } },
          },
          // 404: an unknown model; 400 task_cancelled: the task was cancelled; 504: it timed out
          ...openAiErrors('POST', [404, 504]),
        },
      },
    }, async (req, reply) => {
      const principal = await principalOf(req);
      const header = req.headers['x-session-id'];
      const chat = chatToTask(deps.llm, req.body ?? {}, typeof header === 'string' ? header : undefined);
      // a stream holds a connection as an SSE client does: it counts against the same per-principal
      // cap (stream.ts StreamSlots), taken before the submit so a refused call leaves no task behind
      const release = chat.stream ? deps.streamSlots?.take(principal) : undefined;
      const { taskId, sessionId, headers: limits } = await deps.submitAgentTask(principal, chat.task, req).catch((err: unknown) => {
        release?.();
        throw inTermsOfMessages(err, chat.lastIndex);
      });
      const id = `chatcmpl-${taskId}`;
      const headers: Record<string, string> = { ...limits, 'x-workflow-id': taskId, ...(sessionId ? { 'x-session-id': sessionId } : {}) };

      // a client that goes away cancels its task
      const gone = new AbortController();
      let finished = false;
      // so does a credential revoked or expired while the call waits: the call ends as the stream
      // routes end theirs (a stream does not go on serving a key no request may use any more); and
      // a server closing (above)
      let lost: OpenAiError | undefined;
      const end = async (err: OpenAiError, reason: string) => {
        if (lost) return;
        lost = err;
        const cancelling = finished ? undefined : deps.cancelTask(principal, taskId, reason, req).catch(() => undefined);
        finished = true;
        gone.abort();
        await cancelling;
      };
      const endForShutdown = (err: OpenAiError) => end(err, 'server shutting down');
      open.add(endForShutdown);
      const unwatch = deps.watchCredentials?.(principal, Date.now() - reply.elapsedTime, (reason) => {
        void end(new OpenAiError(401, `The credential of this call ${reason === 'revoked' ? 'was revoked' : 'expired'}: the call is ended and its task cancelled`, 'authentication_error', 'invalid_api_key'), `credential ${reason}`);
      });
      let sink: SseSink | undefined;
      const onClose = () => {
        open.delete(endForShutdown);
        unwatch?.();
        release?.();
        gone.abort();
        const unread = sink?.closeReason === 'stalled';
        if (unread) req.log.info({ workflow_id: taskId, stall_ms: stallMs }, 'chat stream client dropped: it stopped reading');
        if (!finished) void deps.cancelTask(principal, taskId, unread ? 'client stopped reading' : 'client disconnected', req).catch(() => undefined);
      };
      // a client gone while its task was being submitted closed before anything listened
      if (reply.raw.closed || req.raw.socket?.destroyed) onClose();
      else reply.raw.once('close', onClose);

      if (!chat.stream) {
        let finishReason = 'stop';
        // nothing is written until the task ends, which may take longer than the connection's idle
        // timeout (TASKGATE_REQUEST_TIMEOUT_MS): cut there, the call cancelled its task
        const socket = req.raw.socket;
        const idleMs = socket.timeout;
        socket.setTimeout(0);
        try {
          for await (const { event } of deps.followTask(principal, taskId, gone.signal)) {
            if (event.type === 'LLM_OUTPUT') finishReason = finishReasonOf(event.payload);
          }
        } finally {
          if (idleMs) socket.setTimeout(idleMs);
        }
        if (lost) throw lost;
        const view = await deps.getTask(principal, taskId);
        finished = true;
        if (view?.status !== 'COMPLETED') throw failureOf(view);
        reply.headers(headers);
        return {
          id, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: chat.model, system_fingerprint: null,
          choices: [{ index: 0, message: { role: 'assistant', content: view.result ?? '', refusal: null }, logprobs: null, finish_reason: finishReason }],
          usage: usageOf(view),
        };
      }

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { ...hijackedHeaders(reply), 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', ...headers });
      const ts = Math.floor(Date.now() / 1000);
      const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: ts, model: chat.model, system_fingerprint: null, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
      // the chat stream never leaves a live fan-out: how far it is behind (`overflowing`) is not asked
      const out = new SseSink(res, Infinity);
      sink = out; // onClose reads why it closed
      const send = (text: string): void => void out.frame(text);
      // a client that stopped reading is let go as a client gone, its task cancelled: as the stream
      // routes drop theirs, and by their rule (keepUp), so one that reads, however slowly, never is
      const writer = new ChatStreamWriter(out, (content) => chunk({ content }), stallMs);
      send(chunk({ role: 'assistant', content: '' }));
      // behind, a keep-alive would only wait behind what the client has not read
      const keepalive = setInterval(() => {
        if (!out.congested) send(': keep-alive\n\n');
      }, CHAT_KEEPALIVE_MS);
      const answer = new ChatAnswer();
      let finishReason = 'stop';
      try {
        for await (const { event } of deps.followTask(principal, taskId, gone.signal)) {
          if (event.type === 'LLM_OUTPUT') finishReason = finishReasonOf(event.payload);
          writer.push(answer.push(event));
        }
        if (lost) {
          send(`data: ${JSON.stringify(toOpenAiError(lost).body)}\n\n`);
          return;
        }
        if (gone.signal.aborted) return;
        const view = await deps.getTask(principal, taskId);
        finished = true;
        // answers that were not streamed (held for tool calls, verified, replayed) arrive in one piece
        const rest = view?.status === 'COMPLETED' ? answer.finish(view.result ?? '') : undefined;
        if (rest) writer.push(rest);
        // the last frames follow the whole answer; a client let go meanwhile gets none
        if (!(await writer.flushed())) return;
        if (view?.status !== 'COMPLETED') {
          send(`data: ${JSON.stringify(toOpenAiError(failureOf(view)).body)}\n\n`);
        } else if (rest === undefined) {
          const message = `the answer changed after part of it was streamed (a model call was retried and answered differently); task ${taskId} holds the whole answer: GET /api/v1/tasks/${taskId}`;
          send(`data: ${JSON.stringify(openAiErrorBody(502, message, 'stream_diverged'))}\n\n`);
        } else {
          send(chunk({}, finishReason));
          if (chat.includeUsage) {
            send(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: ts, model: chat.model, system_fingerprint: null, choices: [], usage: usageOf(view) })}\n\n`);
          }
        }
        send('data: [DONE]\n\n');
      } catch (err) {
        req.log.error({ err }, 'chat stream failed');
        send(`data: ${JSON.stringify(toOpenAiError(err).body)}\n\n`);
      } finally {
        clearInterval(keepalive);
        finished = true;
        release?.();
        out.end();
      }
    });
  };
}

/**
 * The submit-time check for tasks an agent runs (free-text tasks and `agent` definitions):
 * 400 for a context.token_budget no session can hold, 422 LLM_NOT_CONFIGURED without a provider,
 * 400 for an unknown model_override/provider_override. Shared by POST /api/v1/tasks and the chat route.
 */
export function assertAgentTaskRunnable(llm: LlmConfig | undefined, task: { kind: string; options: Record<string, unknown>; context: Record<string, unknown> }, definitionKind?: string): void {
  const runsAgent = task.kind === 'agent' ? task.context?.disable_ai !== true : definitionKind === 'agent';
  if (!runsAgent) return;
  const budgetProblem = tokenBudgetProblem(task.context?.token_budget);
  if (budgetProblem) throw new ApiError('VALIDATION_ERROR', budgetProblem, { path: 'context.token_budget', reason: 'invalid value' });
  if (!llm) throw new ApiError('LLM_NOT_CONFIGURED', llmNotConfiguredMessage);
  const o = task.options ?? {};
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  try {
    resolveModel(llm, { model_tier: str(o.model_tier), model_override: str(o.model_override), provider_override: str(o.provider_override) });
  } catch (err) {
    if (!(err instanceof ModelRouteError)) throw err;
    const path = err.code === 'UNKNOWN_MODEL' ? 'model_override' : 'provider_override';
    throw new ApiError('VALIDATION_ERROR', err.message, { path, reason: err.code === 'UNKNOWN_MODEL' ? 'unknown model' : 'unknown provider' });
  }
}
