// OpenAI-compatible surface: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions
// (JSON and SSE chunks). Each chat call is an agent task — visible, cancellable, accounted — and
// errors use OpenAI's {error: {message, type, code}} shape so any OpenAI client library works.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { hijackedHeaders } from '../hardening.js';
import { SseSink } from '../stream-sinks.js';
import { ChatStreamWriter } from '../chat-stream.js';
import { ErrorResponse, errorResponses, type SubmitTaskBody } from '../../contract/tasks.js';
import type { TaskEvent } from '../../contract/events.js';
import type { Principal } from '../../auth/scopes.js';
import type { StreamSlots } from './stream.js';
import type { CredentialCloseReason } from '../stream-credentials.js';
import type { Metrics } from '../metrics.js';
import { DEFAULT_STREAM_STALL_MS } from '../../config/index.js';
import type { LlmConfig } from '../../config/llm.js';
import { OpenAiError, openAiErrorBody, toOpenAiError } from '../openai-errors.js';
import { chatToTask, inTermsOfMessages, listModels, type ChatBody } from '../chat-request.js';
import { ChatAnswer, failureOf, finishReasonOf, usageOf, type ChatTaskView } from '../chat-answer.js';

/** Comment frames keep idle streams open through proxies. */
export const CHAT_KEEPALIVE_MS = 15_000;

export interface FollowedEvent {
  event: TaskEvent;
  /** Live-only (LLM_PARTIAL). */
  ephemeral: boolean;
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
  /** Counts streamed calls as the stream routes count theirs (open, and closed by why, transport `chat`). None: not counted. */
  metrics?: Pick<Metrics, 'streamClients' | 'streamsClosed'>;
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
      // with include_usage, OpenAI's every chunk but the last (choices [], the usage) says `usage: null`;
      // without it the field is absent
      const noUsage = chat.includeUsage ? { usage: null } : {};
      const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: ts, model: chat.model, system_fingerprint: null, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...noUsage })}\n\n`;
      // the chat stream never leaves a live fan-out: how far it is behind (`overflowing`) is not asked
      const out = new SseSink(res, Infinity);
      sink = out; // onClose reads why it closed
      // the sink closes once, whichever way the stream ends (finished, failed, client gone, let go)
      deps.metrics?.streamClients.inc();
      out.onClose(() => {
        deps.metrics?.streamClients.dec();
        deps.metrics?.streamsClosed.inc({ transport: 'chat', reason: out.closeReason ?? 'client' });
      });
      /** The closeReason the stream ends with unless the client went first: a task's end, whatever its outcome, is `done`. */
      let endReason = 'done';
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
          endReason = lost.status === 503 ? 'shutdown' : 'unauthorized';
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
        endReason = 'aborted';
        send(`data: ${JSON.stringify(toOpenAiError(err).body)}\n\n`);
      } finally {
        clearInterval(keepalive);
        finished = true;
        release?.();
        out.end(endReason);
      }
    });
  };
}
