// GET /api/v1/stream/sse and /api/v1/stream/ws: a task's events, replayed from the persisted log
// (paced by the client's socket) and then live from the EventHub. Live writes never wait: a client
// that overflows its bounded buffer leaves the live fan-out, and one that stops reading is dropped
// (it resumes with Last-Event-ID), so a slow client never slows the engine or the other clients.
// docs/streaming.md is the protocol.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import websocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import { Type, type Static } from 'typebox';
import { ApiError } from '../../contract/errors.js';
import { hijackedHeaders } from '../hardening.js';
import { FINAL_EVENT_TYPES, sseEventName, type TaskEvent } from '../../contract/events.js';
import { errorResponses, ID_REGEX } from '../../contract/tasks.js';
import { isTerminal } from '../../domain/lifecycle.js';
import { toWireEvent, type EventHub } from '../../events/hub.js';
import type { Db } from '../../storage/db.js';
import { eventsReplayPage, type ReplayRow } from '../../storage/queries/events.js';
import { tasksGet } from '../../storage/queries/tasks.js';
import type { Metrics } from '../metrics.js';
import { principalKey } from '../../auth/connection-limiter.js';
import type { Principal } from '../../auth/scopes.js';
import { envelope } from '../errors.js';
import { SseSink, WsSink, keepUp, type StreamSink } from '../stream-sinks.js';
import type { StreamCredentials, CredentialCloseReason } from '../stream-credentials.js';

/** Reconnect delay suggested to SSE clients when the server shuts down. */
export const SHUTDOWN_RETRY_MS = 1_000;
/** Events read from the log per replay query. */
const REPLAY_PAGE = 200;

export interface StreamDeps {
  db: Db;
  hub: EventHub;
  metrics: Metrics;
  /** Per-principal cap (src/auth/connection-limiter.ts). */
  limiter: { acquire(key: string): (() => void) | undefined };
  /** The credentials of open streams (one per process, shared with the chat route's calls): a revoked or expired one closes its streams. */
  credentials: StreamCredentials;
}

/**
 * The per-principal stream cap, as the stream routes and the other routes that stream (POST
 * /v1/chat/completions with `stream: true`) take it: main.ts builds one over the process's limiter
 * for both, so one cap counts them all.
 */
export interface StreamSlots {
  /**
   * Takes a slot for one of the principal's streams and answers its release (safe to call twice);
   * at the cap, throws the 429 RATE_LIMITED (Retry-After: 1, `details.max_streams`) the stream routes answer.
   */
  take(principal: Pick<Principal, 'tenantId' | 'kind' | 'subjectId'>): () => void;
}

export function streamSlots(limiter: StreamDeps['limiter'], maxPerPrincipal: number): StreamSlots {
  return {
    take(principal) {
      const release = limiter.acquire(principalKey(principal));
      if (release) return release;
      throw new ApiError('RATE_LIMITED', `too many concurrent streams for this credential (at most ${maxPerPrincipal})`, { max_streams: maxPerPrincipal }, { 'retry-after': '1' });
    },
  };
}

/** Defaults and variables: src/config/index.ts (TASKGATE_STREAM_*). */
export interface StreamOptions {
  /** `: ping` comment (SSE) / ping frame (WebSocket) interval. */
  pingIntervalMs: number;
  /** A live client with more than this queued and unread is fed from the log instead. */
  maxBufferedBytes: number;
  /** A client that is behind and reads nothing for this long is dropped. */
  stallMs: number;
  /** Concurrent streams per principal (the limiter's cap, for the 429 message). */
  maxPerPrincipal: number;
}

const StreamQuery = Type.Object(
  {
    workflow_id: Type.String({ pattern: ID_REGEX, description: 'The task id' }),
    types: Type.Optional(Type.String({ maxLength: 4096, description: 'Comma-separated event types (or SSE names) to send' })),
    last_event_id: Type.Optional(Type.String({ maxLength: 32, description: 'Resume strictly after this seq' })),
    api_key: Type.Optional(Type.String({ description: 'Credential for clients that cannot send headers' })),
    token: Type.Optional(Type.String({ description: 'Same as api_key' })),
  },
  { additionalProperties: true },
);
type StreamQuery = Static<typeof StreamQuery>;

/** The resume point a reconnecting EventSource sends; the later of it and `last_event_id` wins. */
const StreamHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ description: 'Resume strictly after this seq (as last_event_id; the later of the two wins)' })),
});

interface StreamPlan {
  taskId: string;
  tenantId: string;
  afterSeq: number;
  /** Set when the task had already finished at connect: the stream ends at this seq. */
  finalSeq: number | undefined;
  types: ReadonlySet<string> | undefined;
  release: () => void;
  /** When the request arrived (ms): a credentials hint since then re-checks the key at once. */
  requestStartMs: number;
}

const MAX_SEQ = 2_147_483_647;

function parseSeq(raw: unknown, name: string): number {
  if (raw === undefined || raw === '') return 0;
  const s = typeof raw === 'string' ? raw.trim() : '';
  // seq is a 32-bit integer column: a larger position is no event's
  if (!/^\d{1,10}$/.test(s) || Number(s) > MAX_SEQ) {
    throw new ApiError('VALIDATION_ERROR', `${name} must be an event seq number (0 to ${MAX_SEQ})`, { path: name, reason: 'invalid value' });
  }
  return Number(s);
}

/**
 * One client's stream. Reading the log is paced by the client (wait for the socket to drain
 * before writing more); live delivery from the hub never waits. A client that falls more than
 * `maxBufferedBytes` behind while live leaves the live fan-out and is fed from the log again, as
 * fast as it reads; one that reads nothing for `stallMs` is dropped (it resumes with Last-Event-ID).
 */
class EventStream {
  readonly #plan: StreamPlan;
  readonly #sink: StreamSink;
  readonly #deps: StreamDeps;
  readonly #stallMs: number;
  /** Bytes of log a replay page holds at most: the client's buffer (TASKGATE_STREAM_BUFFER_BYTES). */
  readonly #pageBytes: number;
  #last: number;
  #unsubscribe: (() => void) | undefined;
  #leftLive: (() => void) | undefined;
  #closed = false;

  constructor(plan: StreamPlan, sink: StreamSink, deps: StreamDeps, stallMs: number, pageBytes: number) {
    this.#plan = plan;
    this.#sink = sink;
    this.#deps = deps;
    this.#stallMs = stallMs;
    this.#pageBytes = pageBytes;
    this.#last = plan.afterSeq;
    sink.onClose(() => this.#cleanup());
  }

  get sink(): StreamSink {
    return this.#sink;
  }

  async run(): Promise<void> {
    while (!this.#closed) {
      if (!(await this.#fromLog())) return;
      await this.#live();
    }
  }

  /** Waits until the client has taken what it was sent; false (and the client dropped) if it stalls. */
  async #drained(): Promise<boolean> {
    return (await keepUp(this.#sink, this.#stallMs)) && !this.#closed;
  }

  /** Sends what the log holds after the client's position; false once the stream is over. */
  async #fromLog(): Promise<boolean> {
    const { db } = this.#deps;
    const { taskId, tenantId, finalSeq } = this.#plan;
    for (;;) {
      if (!(await this.#drained())) return false;
      // a page of at most the client's buffer in bytes (the rest of it waits here while the client
      // is behind), each row let go once written
      const maxBytes = this.#pageBytes;
      const rows: (ReplayRow | undefined)[] = await eventsReplayPage(db, { tenantId, taskId, afterSeq: this.#last, limit: REPLAY_PAGE, maxBytes });
      const n = rows.length;
      // the log ends here unless the page was full, or cut at maxBytes
      const more = n === REPLAY_PAGE || (n > 0 && rows[n - 1]!.upto >= maxBytes);
      for (let i = 0; i < n; i++) {
        const row = rows[i]!;
        rows[i] = undefined;
        if (!this.#emit(toWireEvent(row))) return false;
        if (this.#sink.congested && !(await this.#drained())) return false;
      }
      if (this.#closed) return false;
      if (!more) break;
    }
    // an ended task writes nothing more: its log is complete, or (short of finalSeq) was deleted
    // meanwhile by retention — either way nothing is left to wait for
    if (finalSeq !== undefined) {
      this.#sink.finish();
      return false;
    }
    return true;
  }

  /** Live from the hub (which first reads anything written since the log was read) until the client overflows or goes. */
  #live(): Promise<void> {
    const { taskId, tenantId } = this.#plan;
    return new Promise<void>((resolve) => {
      this.#leftLive = resolve;
      this.#unsubscribe = this.#deps.hub.subscribe(taskId, tenantId, this.#last, {
        deliver: (e, ephemeral) => {
          if (this.#closed || !this.#leftLive) return;
          if (this.#sink.overflowing) return this.#leaveLive();
          if (!ephemeral) this.#emit(e);
          else if (this.#wanted(e)) this.#sink.event(e, true);
        },
        fail: () => this.#sink.abort(),
      });
      if (this.#closed) this.#leaveLive();
    });
  }

  #leaveLive(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    const resolve = this.#leftLive;
    this.#leftLive = undefined;
    resolve?.();
  }

  #wanted(e: TaskEvent): boolean {
    const t = this.#plan.types;
    return !t || t.has(e.type) || t.has(sseEventName(e.type));
  }

  /** Sends one persisted event (in seq order); false once the stream is over. */
  #emit(e: TaskEvent): boolean {
    if (this.#closed) return false;
    if (e.seq <= this.#last) return true;
    this.#last = e.seq;
    if (this.#wanted(e) && !this.#sink.event(e, false)) return false;
    const { finalSeq } = this.#plan;
    if (FINAL_EVENT_TYPES.has(e.type) || (finalSeq !== undefined && e.seq >= finalSeq)) {
      this.#sink.finish();
      return false;
    }
    return true;
  }

  #cleanup(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#leaveLive();
    this.#plan.release();
  }
}

/**
 * An error on an open WebSocket. A client that breaks the protocol (an unmasked frame, a reserved
 * opcode, a message over maxPayload: ws's WS_ERR_* codes) is the client's fault, not the server's:
 * one debug line without a stack — the plugin's default logged each at error level, so any client
 * could fill the error log. Anything else is still an error. Either way the socket is cut, as before.
 */
function socketError(this: FastifyInstance, err: Error & { code?: unknown }, socket: WebSocket, req: FastifyRequest): void {
  if (typeof err.code === 'string' && err.code.startsWith('WS_ERR_')) {
    req.log.debug({ code: err.code, reason: err.message }, 'websocket closed: the client broke the protocol');
  } else {
    req.log.error({ err }, 'websocket failed');
  }
  socket.terminate();
}

export function streamRoutes(deps: StreamDeps, opts: StreamOptions) {
  const { pingIntervalMs: pingMs, maxBufferedBytes: maxBytes, stallMs } = opts;
  const active = new Set<EventStream>();
  let pinger: NodeJS.Timeout | undefined;
  const credentials = deps.credentials;

  const closeMessages: Record<CredentialCloseReason, string> = {
    revoked: 'The credential of this stream was revoked: the stream is closed',
    expired: 'The credential of this stream expired: the stream is closed',
  };

  const slots = streamSlots(deps.limiter, opts.maxPerPrincipal);

  function track(stream: EventStream, req: FastifyRequest, plan: StreamPlan, transport: 'sse' | 'websocket'): void {
    const taskId = plan.taskId;
    active.add(stream);
    deps.metrics.streamClients.inc();
    // authorised once, at connect: closed when its credential is revoked or expires
    const unwatch = credentials.watch(req.principal, plan.requestStartMs, (reason) => {
      req.log.info({ workflow_id: taskId, subject: req.principal.subjectId, reason }, 'stream closed: its credential is no longer valid');
      stream.sink.unauthorized(envelope('UNAUTHORIZED', closeMessages[reason], String(req.id), { reason }));
    });
    stream.sink.onClose(unwatch);
    pinger ??= setInterval(() => {
      for (const s of active) s.sink.ping();
    }, pingMs).unref();
    stream.sink.onClose(() => {
      active.delete(stream);
      deps.metrics.streamClients.dec();
      deps.metrics.streamsClosed.inc({ transport, reason: stream.sink.closeReason ?? 'client' });
      if (stream.sink.closeReason === 'stalled') req.log.info({ workflow_id: taskId, stall_ms: stallMs }, 'stream client dropped: it stopped reading');
      if (active.size === 0 && pinger) {
        clearInterval(pinger);
        pinger = undefined;
      }
    });
    stream.run().catch((err: unknown) => {
      req.log.warn({ err }, 'stream failed');
      stream.sink.abort();
    });
  }

  /** Everything that can fail with an HTTP error, before the response turns into a stream. */
  async function prepare(req: FastifyRequest, reply: FastifyReply): Promise<StreamPlan> {
    const requestStartMs = Date.now() - reply.elapsedTime;
    const q = req.query as StreamQuery;
    const afterSeq = Math.max(parseSeq(req.headers['last-event-id'], 'Last-Event-ID'), parseSeq(q.last_event_id, 'last_event_id'));
    const types = q.types?.split(',').map((t) => t.trim()).filter(Boolean);
    const { tenantId } = req.principal;
    const row = await tasksGet(deps.db, tenantId, q.workflow_id);
    if (!row) throw new ApiError('NOT_FOUND', `workflow ${q.workflow_id} not found`);
    const release = slots.take(req.principal);
    return {
      // no client has seen an event that does not exist yet: a resume point past the log (one taken
      // from another, longer task) starts at its end, so the live events, STREAM_END included, end
      // the stream; left as sent, the hub delivers nothing at or below it and the stream never ended
      taskId: row.id, tenantId, afterSeq: Math.min(afterSeq, row.last_seq), release, requestStartMs,
      finalSeq: isTerminal(row.status) ? row.last_seq : undefined,
      types: types?.length ? new Set(types) : undefined,
    };
  }

  return async function streamPlugin(app: FastifyInstance): Promise<void> {
    /**
     * Server shutdown, as @fastify/websocket's `preClose`: its default closed every WebSocket with
     * no code (clients saw 1005) before a hook of ours could send 1012. The plugin leaves closing its
     * clients and its server to this hook; close waits for them (a client that does not answer the
     * close is cut after 2 s).
     */
    const shutdown = (done: () => void): void => {
      credentials.stop();
      for (const s of [...active]) s.sink.shutdown(SHUTDOWN_RETRY_MS);
      if (pinger) clearInterval(pinger);
      pinger = undefined;
      // a WebSocket whose stream has not started yet
      for (const ws of app.websocketServer.clients) {
        if (ws.readyState !== ws.OPEN) continue;
        ws.close(1012, 'server restarting');
        setTimeout(() => ws.terminate(), 2_000).unref();
      }
      app.websocketServer.close(() => done());
    };
    await app.register(websocket, { options: { maxPayload: 4096 }, preClose: (done) => shutdown(done), errorHandler: socketError });
    // @fastify/websocket hides every WebSocket route from the OpenAPI document; /stream/ws is part of
    // the API, so this scope's hook (which runs after the plugin's) shows it again
    app.addHook('onRoute', (route) => {
      if (route.websocket && route.schema) route.schema.hide = false;
    });
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const errors = errorResponses('GET', 'scope', [400, 404]);

    // an upgrade refused before @fastify/websocket's own hook ran (auth, rate limits: onRequest
    // hooks of the root scope) would otherwise leave its socket open
    app.addHook('onResponse', async (req, reply) => {
      if (req.headers.upgrade?.toLowerCase() === 'websocket' && reply.statusCode !== 101 && !req.raw.socket.destroyed) req.raw.socket.destroy();
    });

    r.get('/api/v1/stream/sse', {
      // no HEAD: the GET handler would open a stream and hold a slot for it (405 with Allow: GET, docs/security.md)
      exposeHeadRoute: false,
      config: { scope: 'tasks:read', queryAuth: true, rateLimit: false },
      schema: {
        tags: ['streaming'], summary: "Server-Sent Events: a task's events, replayed then live",
        description: 'Frames: `id: <seq>`, `event: <name>`, one `data:` JSON line. Ends with `event: done` / `data: [DONE]`.',
        querystring: StreamQuery, headers: StreamHeaders,
        // not rate limited (the per-principal stream cap bounds them): no X-RateLimit-* headers (app.ts)
        'x-unlimited': true,
        response: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: Type.String() } } }, ...errors },
      },
    }, async (req, reply) => {
      const plan = await prepare(req, reply);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...hijackedHeaders(reply),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        'x-workflow-id': plan.taskId,
      });
      req.raw.socket.setTimeout(0);
      req.raw.socket.setNoDelay(true);
      const sink = new SseSink(res, maxBytes);
      sink.connected();
      track(new EventStream(plan, sink, deps, stallMs, maxBytes), req, plan, 'sse');
    });

    const plans = new WeakMap<FastifyRequest, StreamPlan>();
    r.get('/api/v1/stream/ws', {
      websocket: true,
      config: { scope: 'tasks:read', queryAuth: true, rateLimit: false },
      schema: {
        tags: ['streaming'], summary: 'WebSocket: the same stream, one event JSON per message',
        description: 'A GET with `Upgrade: websocket` (same query and auth as /api/v1/stream/sse; browsers may pass `api_key`/`token` in the query). Each message is one event JSON; the server closes with 1000 after STREAM_END.',
        querystring: StreamQuery, headers: StreamHeaders,
        // not rate limited (the per-principal stream cap bounds them): no X-RateLimit-* headers (app.ts)
        'x-unlimited': true,
        response: { 101: { description: 'Switching Protocols: the WebSocket stream' }, ...errors },
      },
      preHandler: async (req, reply) => {
        if (!req.ws) throw new ApiError('VALIDATION_ERROR', 'this endpoint needs a WebSocket upgrade (or use /api/v1/stream/sse)');
        const plan = await prepare(req, reply);
        // if the upgrade never completes, the slot goes back with the socket
        req.raw.socket.once('close', plan.release);
        plans.set(req, plan);
      },
    }, (socket, req) => {
      const plan = plans.get(req);
      if (!plan) return socket.close(1011, 'stream not prepared');
      track(new EventStream(plan, new WsSink(socket, maxBytes), deps, stallMs, maxBytes), req, plan, 'websocket');
    });
  };
}
