// A fetch-based client for the Taskgate HTTP API (runs in Node ≥ 20 and browsers): the canonical
// routes with the shapes in src/contract, and what the reference gateway's Python SDK offers on top
// of them — submit and get a handle, wait for the end, follow the live stream with resume, control,
// sessions, approvals, definitions. Every non-2xx answer becomes a TaskgateError subclass
// (errors.ts). Requests time out (`timeoutMs`); reads, and writes sent with an Idempotency-Key, are
// retried after a network failure, a 429 or a 502/503/504, honouring Retry-After.
import type {
  ApiKeyList, ApiKeyView, CreateApiKeyBody, CreatedApiKey, CreateTenantBody, CreateTenantKeyBody, Me, TenantList, TenantView,
  UpdateTenantBody,
} from '../contract/auth.js';
import type { ApprovalDecisionBody, ApprovalDecisionResponse, ApprovalList, ApprovalStatus } from '../contract/approvals.js';
import type { DefinitionBody, DefinitionDetail, DefinitionList } from '../contract/definitions.js';
import type { SessionHistory, SessionList, SessionTitleResponse, SessionTurns, SessionView } from '../contract/sessions.js';
import type {
  ControlResponse, ControlState, ListTasksQuery, SubmitStreamResponse, SubmitTaskBody, SubmitTaskResponse,
} from '../contract/tasks.js';
import type { TimelineResponse } from '../contract/timeline.js';
import {
  errorForAnswer, errorFromStreamFrame, unreachableError, failureText, NetworkError, RequestTimeoutError, TaskgateError, TaskTimeoutError, ValidationError,
} from './errors.js';
import { TaskHandle } from './handle.js';
import { credentialHeaders, RETRYABLE_STATUS, MAX_RETRY_WAIT_MS, sleep, retryAfterMs, jittered, eitherSignal, checkApiKey, checkBaseUrl, checkCount, checkMs, MAX_TIMER_MS, userAgent, isTransient } from './transport.js';
import { followEventStream, type OpenResult } from './sse.js';
import type { EventsResponse, ListTasksResponse, StreamEvent, TaskEvent, TaskListItem, TaskView } from './types.js';
import type { CallOptions, ClientOptions, PageOptions, RequestOptions, StreamOptions, SubmitOptions, WaitOptions } from './options.js';

export type {
  CallOptions, ClientOptions, PageOptions, RequestOptions, StreamOptions, StreamEvent, SubmitOptions, WaitOptions,
};

export const DEFAULT_BASE_URL = 'http://127.0.0.1:8080';
/** A task in one of these statuses will not change again. */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT']);

const enc = encodeURIComponent;

/** The most retries a client or call may ask for (each waits up to MAX_RETRY_WAIT_MS). */
const MAX_RETRIES = 100;

export class TaskgateClient {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #maxRetries: number;
  readonly #streamIdleMs: number | undefined;

  constructor(opts: ClientOptions = {}) {
    this.baseUrl = checkBaseUrl(opts.baseUrl ?? DEFAULT_BASE_URL);
    this.#apiKey = checkApiKey(opts.apiKey);
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.#headers = { ...userAgent(opts.headers), ...opts.headers };
    // (NaN or -1 meant no timeout at all, -1 retries none: refused like the other options)
    this.#timeoutMs = checkMs('timeoutMs', opts.timeoutMs) ?? 30_000;
    this.#maxRetries = checkCount('maxRetries', opts.maxRetries, 0, MAX_RETRIES) ?? 2;
    this.#streamIdleMs = checkMs('streamIdleTimeoutMs', opts.streamIdleTimeoutMs);
  }


  #url(path: string, query?: RequestOptions['query']): URL {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  /**
   * Any route: resolves with the parsed JSON body (undefined for 204). A network failure, a 429 or
   * a 502/503/504 is retried up to `maxRetries` times (after Retry-After when sent, else 250 ms
   * doubling, with jitter) for GET/HEAD/DELETE and for a request with an Idempotency-Key; a 429
   * also for any other POST (the server refused it before doing anything); a 409
   * IDEMPOTENCY_KEY_IN_PROGRESS for a keyed request (its first try, cut off, is still running).
   * A DELETE retried after a try that may have reached the server (no answer, or a 502/503/504
   * from a proxy) resolves on a 404 as on its 204: the object is gone, likely by that try.
   */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const url = this.#url(path, opts.query);
    const headers: Record<string, string> = { accept: 'application/json', ...this.#headers, ...opts.headers, ...credentialHeaders(this.#apiKey) };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const safe = method === 'GET' || method === 'HEAD' || method === 'DELETE' || Boolean(opts.idempotencyKey);
    const timeoutMs = checkMs('timeoutMs', opts.timeoutMs) ?? this.#timeoutMs;
    const maxRetries = checkCount('maxRetries', opts.maxRetries, 0, MAX_RETRIES) ?? this.#maxRetries;
    let mayHaveApplied = false;
    for (let attempt = 0; ; attempt++) {
      const timeout = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
      const signal = timeout && opts.signal ? eitherSignal(timeout, opts.signal) : (timeout ?? opts.signal);
      let res: Response;
      let text: string;
      try {
        res = await this.#fetch(url, { method, headers, body, signal });
        text = await res.text();
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        const error = timeout?.aborted
          ? new RequestTimeoutError({ status: 0, code: 'CLIENT_TIMEOUT', message: `${method} ${path}: no answer within ${timeoutMs} ms`, cause: err })
          : unreachableError(this.baseUrl, err);
        if (!safe || attempt >= maxRetries) throw error;
        mayHaveApplied = true;
        await sleep(this.#backoff(attempt), opts.signal);
        continue;
      }
      if (res.ok) {
        opts.onResponse?.(res);
        try {
          return (text ? JSON.parse(text) : undefined) as T;
        } catch (err) {
          throw new TaskgateError({ status: res.status, code: 'BAD_RESPONSE', message: `${method} ${path}: the answer is not JSON`, cause: err });
        }
      }
      if (res.status === 404 && method === 'DELETE' && mayHaveApplied) return undefined as T;
      const after = retryAfterMs(res);
      const error = errorForAnswer(res, text, after, opts.notFound);
      // a keyed write whose first try is still in flight (the network failed us, not the server): ask again
      const inFlight = res.status === 409 && opts.idempotencyKey !== undefined && error.code === 'IDEMPOTENCY_KEY_IN_PROGRESS';
      if (attempt < maxRetries && ((RETRYABLE_STATUS.has(res.status) && (safe || res.status === 429)) || inFlight)) {
        if (after === undefined || after <= MAX_RETRY_WAIT_MS) {
          mayHaveApplied ||= res.status !== 429;
          await sleep(after === undefined ? this.#backoff(attempt) : jittered(after), opts.signal);
          continue;
        }
      }
      throw error;
    }
  }

  #backoff(attempt: number): number {
    return Math.min(250 * 2 ** attempt, 5_000) * (0.5 + Math.random() / 2);
  }

  // ---- tasks ----

  /** Submits a task (agent: `query`; definition: `task_definition_id` + `input`) and returns its handle. */
  async submitTask(body: SubmitTaskBody, opts: SubmitOptions = {}): Promise<TaskHandle> {
    let replayed = false;
    const onResponse = (res: Response) => (replayed = res.headers.get('idempotent-replayed') === 'true');
    const out = await this.request<SubmitTaskResponse>('POST', '/api/v1/tasks', { ...this.#submitOpts(opts), body, onResponse });
    return new TaskHandle(this, out, replayed);
  }

  /** Submits a task and returns its handle with the URL of its event stream (one round trip fewer than submit, then stream). */
  async submitAndStream(body: SubmitTaskBody, opts: SubmitOptions = {}): Promise<{ handle: TaskHandle; streamUrl: string }> {
    let replayed = false;
    const onResponse = (res: Response) => (replayed = res.headers.get('idempotent-replayed') === 'true');
    const out = await this.request<SubmitStreamResponse>('POST', '/api/v1/tasks/stream', { ...this.#submitOpts(opts), body, onResponse });
    return { handle: new TaskHandle(this, out, replayed), streamUrl: this.#resolve(out.stream_url) };
  }

  /**
   * A URL the server sent, against baseUrl: a root-relative one (`/api/v1/…`, as the server knows
   * only its own routes) goes under baseUrl's path, as every request does — resolved as a URL it
   * lost a proxy's prefix (`https://example.com/taskgate` gave `https://example.com/api/v1/…`).
   */
  #resolve(url: string): string {
    if (url.startsWith('/') && !url.startsWith('//')) return new URL(this.baseUrl + url).toString();
    return new URL(url, this.baseUrl + '/').toString();
  }

  #submitOpts(opts: SubmitOptions): RequestOptions {
    return {
      idempotencyKey: opts.idempotencyKey, signal: opts.signal, timeoutMs: opts.timeoutMs,
      headers: opts.traceparent ? { traceparent: opts.traceparent } : undefined,
    };
  }

  /** A handle for a task submitted earlier (nothing is fetched). */
  task(taskId: string): TaskHandle {
    return new TaskHandle(this, { task_id: taskId, workflow_id: taskId, session_id: null });
  }

  getStatus(taskId: string, opts: CallOptions = {}): Promise<TaskView> {
    return this.#readStatus(taskId, opts);
  }

  #readStatus(taskId: string, opts: RequestOptions): Promise<TaskView> {
    return this.request('GET', `/api/v1/tasks/${enc(taskId)}`, { ...opts, notFound: 'task' });
  }

  /** One page of the caller's tasks, newest first. */
  listTasks(query: ListTasksQuery = {}, opts: CallOptions = {}): Promise<ListTasksResponse> {
    return this.request('GET', '/api/v1/tasks', { ...opts, query: { ...query } });
  }

  /**
   * Every task matching the filters, page after page (newest first), each once — also while the
   * list changes under the walk. The API pages by offset, so a task leaving the list (cancelled
   * under a status filter, deleted) shifts the later ones back, and plain paging skipped them (a
   * drain cancelling each QUEUED task saw 4 of 10). Pages overlap by one, and a page that does not
   * start at or before the last one's end (by the list's order, created_at newest first) is read
   * again from further back; a task already seen, or newer than the walk's position (submitted
   * meanwhile), is not yielded again. created_at comes to the ms, so ties are told apart by id.
   */
  async *iterTasks(query: Omit<ListTasksQuery, 'offset' | 'page'> = {}, opts: CallOptions = {}): AsyncGenerator<TaskListItem> {
    // a page of one could not overlap the one before
    const limit = Math.max(2, query.limit ?? 100);
    // the walk's position: the oldest created_at (ms) read so far, and the ids read at that ms
    let atMs = Infinity;
    let atIds = new Set<string>();
    const reached = (t: TaskListItem) => Date.parse(t.created_at) > atMs || atIds.has(t.task_id);
    for (let offset = 0; ;) {
      const page = await this.listTasks({ ...query, limit, offset }, opts);
      // (after a full page, the overlap makes an empty one a list that shrank too)
      const first = page.tasks[0];
      if (offset > 0 && (!first || !reached(first))) {
        offset = Math.max(0, offset - limit);
        continue;
      }
      for (const t of page.tasks) {
        const ms = Date.parse(t.created_at);
        if (ms > atMs || atIds.has(t.task_id)) continue;
        if (ms < atMs) {
          atMs = ms;
          atIds = new Set();
        }
        atIds.add(t.task_id);
        yield t;
      }
      if (page.tasks.length < limit) return;
      offset += limit - 1;
    }
  }

  /** One page of a task's persisted events, oldest first. */
  getEvents(taskId: string, page: PageOptions = {}, opts: CallOptions = {}): Promise<EventsResponse> {
    return this.request('GET', `/api/v1/tasks/${enc(taskId)}/events`, { ...opts, query: { ...page }, notFound: 'task' });
  }

  getTimeline(taskId: string, opts: CallOptions = {}): Promise<TimelineResponse> {
    return this.request('GET', `/api/v1/tasks/${enc(taskId)}/timeline`, { ...opts, notFound: 'task' });
  }

  /** Asks the task to stop (`force`: at once, not at its next step). 409 (ConflictError) once it has ended. */
  cancel(taskId: string, opts: CallOptions & { reason?: string; force?: boolean } = {}): Promise<ControlResponse> {
    const { reason, force, ...call } = opts;
    return this.request('POST', `/api/v1/tasks/${enc(taskId)}/cancel`, { ...call, body: { reason, force }, notFound: 'task' });
  }

  pause(taskId: string, opts: CallOptions & { reason?: string } = {}): Promise<ControlResponse> {
    const { reason, ...call } = opts;
    return this.request('POST', `/api/v1/tasks/${enc(taskId)}/pause`, { ...call, body: { reason }, notFound: 'task' });
  }

  resume(taskId: string, opts: CallOptions & { reason?: string } = {}): Promise<ControlResponse> {
    const { reason, ...call } = opts;
    return this.request('POST', `/api/v1/tasks/${enc(taskId)}/resume`, { ...call, body: { reason }, notFound: 'task' });
  }

  getControlState(taskId: string, opts: CallOptions = {}): Promise<ControlState> {
    return this.request('GET', `/api/v1/tasks/${enc(taskId)}/control-state`, { ...opts, notFound: 'task' });
  }

  /**
   * Resolves with the task's view once it has ended (COMPLETED, FAILED, CANCELLED or TIMEOUT —
   * whichever it is; `TaskHandle.result()` throws for the last three). Reads the status after
   * 100 ms, then at doubling intervals up to `pollIntervalMs`. A read that gets no answer (network
   * failure, request timeout) or a 429/502/503/504 does not end the wait: the next read comes after
   * the usual interval or the answer's Retry-After, so a server restart is ridden out; any other
   * refusal (401, 404, …) is thrown at once. TaskTimeoutError after `timeoutMs` — a read still in
   * flight then is cut short — its `cause` the last failed read if the server was not answering.
   */
  async wait(taskId: string, opts: WaitOptions = {}): Promise<TaskView> {
    const { signal } = opts;
    // checked: a pollIntervalMs of 0 read the status back to back, hundreds of requests a second
    // for as long as the task ran; a NaN timeoutMs never ran out
    const timeoutMs = checkMs('timeoutMs', opts.timeoutMs, 0, Infinity);
    const pollIntervalMs = checkMs('pollIntervalMs', opts.pollIntervalMs, 1) ?? 2_000;
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    let interval = Math.min(100, pollIntervalMs);
    let status: string | undefined;
    let failed: TaskgateError | undefined;
    const timedOut = (inFlight: boolean) => new TaskTimeoutError({
      status: 0, code: 'WAIT_TIMEOUT', details: { status: status ?? null }, cause: failed,
      message: failed || inFlight
        ? `task ${taskId} has not been seen to end within ${timeoutMs} ms (last seen ${status ?? 'never'}; ${inFlight ? 'a status read was still unanswered' : `the last read failed: ${failed!.message}`})`
        : `task ${taskId} is still ${status} after ${timeoutMs} ms`,
    });
    for (;;) {
      let pauseMs = interval;
      // each read (its retries included) ends with the wait: left to its own 30 s timeout and two
      // retries, a read of an unanswering server ran `tasks wait --timeout-ms 2000` to 91 s
      const left = deadline - Date.now();
      const bound = left <= MAX_TIMER_MS ? AbortSignal.timeout(Math.max(0, left)) : undefined;
      try {
        // no retries inside the read: this loop retries it (at its interval, or the Retry-After),
        // and onRetry hears of every failed read — a read's own two retries went untold
        const task = await this.#readStatus(taskId, { signal: bound && signal ? eitherSignal(bound, signal) : (bound ?? signal), maxRetries: 0 });
        if (TERMINAL_STATUSES.has(task.status)) return task;
        status = task.status;
        failed = undefined;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (bound?.aborted) throw timedOut(true);
        if (!isTransient(err)) throw err;
        failed = err;
        opts.onRetry?.(err);
        if (err.retryAfterS !== undefined) pauseMs = Math.max(pauseMs, jittered(err.retryAfterS * 1000));
      }
      const rest = deadline - Date.now();
      if (rest <= 0) throw timedOut(false);
      await sleep(Math.min(pauseMs, rest), signal);
      // woken at the deadline: a read now would have no time left to be answered in
      if (Date.now() >= deadline) throw timedOut(false);
      interval = Math.min(interval * 2, pollIntervalMs);
    }
  }

  /**
   * A task's events, replayed from the first (or after `lastEventId`) then live, until the task
   * has ended and its last event was sent — then the iteration ends. Server-Sent Events with the
   * credential in a header; a dropped connection — or one silent for `idleTimeoutMs`: no event, no
   * ping — is resumed after the last event received, so no event is lost or repeated. `LLM_PARTIAL`
   * deltas are live-only (not replayed after a reconnect).
   */
  async *stream(workflowId: string, opts: StreamOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    const query: Record<string, string> = { workflow_id: workflowId };
    if (opts.types?.length) query.types = opts.types.join(',');
    const url = this.#url('/api/v1/stream/sse', query);
    const open = async (lastEventId: string | null, signal: AbortSignal | undefined): Promise<OpenResult> => {
      const headers: Record<string, string> = { ...this.#headers, ...credentialHeaders(this.#apiKey), accept: 'text/event-stream' };
      if (lastEventId !== null) headers['last-event-id'] = lastEventId;
      let res: Response;
      try {
        res = await this.#fetch(url, { headers, signal });
      } catch (err) {
        if (signal?.aborted) throw err;
        return { ok: false, retry: true, error: unreachableError(this.baseUrl, err) };
      }
      // only an event stream counts as connected (a captive portal's or proxy's 200 page does not)
      if (res.ok && res.body && /^text\/event-stream\b/i.test(res.headers.get('content-type') ?? '')) return { ok: true, body: res.body };
      if (res.ok) {
        await res.body?.cancel().catch(() => {});
        const error = new TaskgateError({ status: res.status, code: 'BAD_RESPONSE', message: `the stream of ${workflowId}: the answer is not an event stream (${res.headers.get('content-type') ?? 'no content-type'})` });
        return { ok: false, retry: true, error };
      }
      const after = retryAfterMs(res);
      const error = errorForAnswer(res, await res.text().catch(() => ''), after, 'task');
      if (RETRYABLE_STATUS.has(res.status)) return { ok: false, retry: true, error, afterMs: after === undefined ? undefined : jittered(after) };
      return { ok: false, error };
    };
    const frames = followEventStream(open, {
      lastEventId: opts.lastEventId === undefined ? null : String(opts.lastEventId),
      signal: opts.signal,
      maxReconnects: opts.maxReconnects,
      idleTimeoutMs: checkMs('idleTimeoutMs', opts.idleTimeoutMs) ?? this.#streamIdleMs,
      onState: opts.onState,
      closing: errorFromStreamFrame,
    });
    try {
      for await (const frame of frames) {
        yield { ...(JSON.parse(frame.data) as TaskEvent), event: frame.event };
      }
    } catch (err) {
      if (err instanceof TaskgateError) throw err;
      throw new NetworkError({ status: 0, code: 'NETWORK_ERROR', message: `the stream of ${workflowId} failed: ${failureText(err)}`, cause: err });
    }
  }

  // ---- sessions ----

  listSessions(page: PageOptions = {}, opts: CallOptions = {}): Promise<SessionList> {
    return this.request('GET', '/api/v1/sessions', { ...opts, query: { ...page } });
  }

  getSession(sessionId: string, opts: CallOptions = {}): Promise<SessionView> {
    return this.request('GET', `/api/v1/sessions/${enc(sessionId)}`, { ...opts, notFound: 'session' });
  }

  /** The session's tasks, oldest first. */
  getSessionHistory(sessionId: string, page: PageOptions = {}, opts: CallOptions = {}): Promise<SessionHistory> {
    return this.request('GET', `/api/v1/sessions/${enc(sessionId)}/history`, { ...opts, query: { ...page }, notFound: 'session' });
  }

  /** The session as conversation turns (one per task) with their events. */
  getSessionEvents(sessionId: string, page: PageOptions & { includePayload?: boolean } = {}, opts: CallOptions = {}): Promise<SessionTurns> {
    const { includePayload, ...rest } = page;
    return this.request('GET', `/api/v1/sessions/${enc(sessionId)}/events`, {
      ...opts, query: { ...rest, include_payload: includePayload }, notFound: 'session',
    });
  }

  /** Renames a session (at most 60 characters after control characters are removed). */
  updateSessionTitle(sessionId: string, title: string, opts: CallOptions = {}): Promise<SessionTitleResponse> {
    return this.request('PATCH', `/api/v1/sessions/${enc(sessionId)}`, { ...opts, body: { title }, notFound: 'session' });
  }

  /** Soft-deletes a session (deleting it again is not an error). */
  async deleteSession(sessionId: string, opts: CallOptions = {}): Promise<void> {
    await this.request('DELETE', `/api/v1/sessions/${enc(sessionId)}`, { ...opts, notFound: 'session' });
  }

  // ---- approvals ----

  listApprovals(query: PageOptions & { status?: ApprovalStatus } = {}, opts: CallOptions = {}): Promise<ApprovalList> {
    return this.request('GET', '/api/v1/approvals', { ...opts, query: { ...query } });
  }

  /**
   * Approves or denies a pending approval; 409 (ConflictError) if it was decided or its task ended.
   * 404: TaskNotFoundError for an unknown (or foreign) workflow, NotFoundError for an unknown approval.
   */
  decideApproval(body: ApprovalDecisionBody, opts: CallOptions = {}): Promise<ApprovalDecisionResponse> {
    // the route answers 404 for either, saying which in details.path (workflow_id or approval_id)
    const notFound = (e: { details?: Record<string, unknown> }) => (e.details?.path === 'workflow_id' ? 'task' as const : undefined);
    return this.request('POST', '/api/v1/approvals/decision', { ...opts, body, notFound });
  }

  // ---- definitions ----

  listDefinitions(query: PageOptions & { page?: number; type?: string; search?: string } = {}, opts: CallOptions = {}): Promise<DefinitionList> {
    return this.request('GET', '/api/v1/definitions', { ...opts, query: { ...query } });
  }

  getDefinition(id: string, opts: CallOptions = {}): Promise<DefinitionDetail> {
    return this.request('GET', `/api/v1/definitions/${enc(id)}`, opts);
  }

  /** Creates or replaces one of the tenant's declarative definitions (http, agent, approval). */
  putDefinition(id: string, body: DefinitionBody, opts: CallOptions = {}): Promise<DefinitionDetail> {
    return this.request('PUT', `/api/v1/definitions/${enc(id)}`, { ...opts, body });
  }

  async deleteDefinition(id: string, opts: CallOptions = {}): Promise<void> {
    await this.request('DELETE', `/api/v1/definitions/${enc(id)}`, opts);
  }

  // ---- service ----

  health(opts: CallOptions = {}): Promise<{ status: string; version: string; time: string }> {
    return this.request('GET', '/health', opts);
  }

  /** ServerError (503) when the service is not ready. */
  readiness(opts: CallOptions = {}): Promise<{ status: string }> {
    return this.request('GET', '/readiness', { ...opts, maxRetries: 0 });
  }

  // ---- keys and tenants ----

  /** The calling credential: tenant, user, scopes, rate limit. */
  me(opts: CallOptions = {}): Promise<Me> {
    return this.request('GET', '/api/v1/auth/me', opts);
  }

  /** Creates a key in the caller's tenant; the returned `key` is shown only this once. */
  createApiKey(body: CreateApiKeyBody, opts: CallOptions & { idempotencyKey?: string } = {}): Promise<CreatedApiKey> {
    return this.request('POST', '/api/v1/auth/api-keys', { body, ...opts });
  }

  listApiKeys(page: PageOptions = {}, opts: CallOptions = {}): Promise<ApiKeyList> {
    return this.request('GET', '/api/v1/auth/api-keys', { ...opts, query: { ...page } });
  }

  getApiKey(id: string, opts: CallOptions = {}): Promise<ApiKeyView> {
    return this.request('GET', `/api/v1/auth/api-keys/${enc(id)}`, opts);
  }

  /** Revokes a key of the caller's tenant; it stops working on the next request. */
  async revokeApiKey(id: string, opts: CallOptions = {}): Promise<void> {
    await this.request('DELETE', `/api/v1/auth/api-keys/${enc(id)}`, opts);
  }

  /** Operators only (admin scope in the system tenant). */
  createTenant(body: CreateTenantBody, opts: CallOptions & { idempotencyKey?: string } = {}): Promise<TenantView> {
    return this.request('POST', '/api/v1/admin/tenants', { body, ...opts });
  }

  listTenants(page: PageOptions = {}, opts: CallOptions = {}): Promise<TenantList> {
    return this.request('GET', '/api/v1/admin/tenants', { ...opts, query: { ...page } });
  }

  getTenant(id: string, opts: CallOptions = {}): Promise<TenantView> {
    return this.request('GET', `/api/v1/admin/tenants/${enc(id)}`, opts);
  }

  updateTenant(id: string, body: UpdateTenantBody, opts: CallOptions = {}): Promise<TenantView> {
    return this.request('PATCH', `/api/v1/admin/tenants/${enc(id)}`, { ...opts, body });
  }

  /** Creates a key in any tenant (operators only); the returned `key` is shown only this once. */
  createTenantApiKey(tenantId: string, body: CreateTenantKeyBody, opts: CallOptions & { idempotencyKey?: string } = {}): Promise<CreatedApiKey> {
    return this.request('POST', `/api/v1/admin/tenants/${enc(tenantId)}/api-keys`, { body, ...opts });
  }
}
