// The options the client and its calls take (every one optional, with its unit and default).
import type { NotFoundKind, TaskgateError } from './errors.js';
import type { StreamState } from './sse.js';

export interface ClientOptions {
  /** Default http://127.0.0.1:8080. */
  baseUrl?: string;
  /** Sent as X-API-Key; a JWT (it has dots) is sent as `Authorization: Bearer`. */
  apiKey?: string;
  /** Replaces the global fetch (proxies, tests). */
  fetch?: typeof fetch;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** Per-request timeout, ms (default 30,000; 0 = none). Streams are not: see streamIdleTimeoutMs. */
  timeoutMs?: number;
  /**
   * Longest silence on a stream's connection, ms (default 35,000, DEFAULT_STREAM_IDLE_MS; 0 =
   * never): then it is dropped and opened again with Last-Event-ID. The server sends a `: ping`
   * every 10 s (TASKGATE_STREAM_PING_MS): keep this above that interval.
   */
  streamIdleTimeoutMs?: number;
  /** Retries of a retryable failure (default 2; 0 = none). See `request`. */
  maxRetries?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** This call's timeout, ms (replaces the client's). */
  timeoutMs?: number;
}

export interface RequestOptions extends CallOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  /** Sent as Idempotency-Key (POST): a retry with the same key is answered from the first response. */
  idempotencyKey?: string;
  /** What a 404 means here (TaskNotFoundError, SessionNotFoundError); a function tells from the envelope's error. */
  notFound?: NotFoundKind | ((error: { message?: string; details?: Record<string, unknown> }) => NotFoundKind | undefined);
  /** This call's retries (replaces the client's maxRetries). */
  maxRetries?: number;
  /** Sees the successful answer (its headers) before its body is returned. */
  onResponse?: (res: Response) => void;
}

export interface PageOptions {
  limit?: number;
  offset?: number;
}

export interface SubmitOptions extends CallOptions {
  /** Sent as Idempotency-Key: resubmitting with it returns the first task instead of a new one (and makes the call retryable). */
  idempotencyKey?: string;
  /** W3C trace context, propagated to the task's executors and outbound calls. */
  traceparent?: string;
}

export interface WaitOptions {
  /** Give up after this many ms with TaskTimeoutError (default: wait for ever). A number ≥ 0, else ValidationError (INVALID_OPTION). */
  timeoutMs?: number;
  /**
   * Longest pause between two status reads, ms (default 2,000). The first reads come sooner: 100 ms,
   * doubling. From 1 to 2^31 − 1, else ValidationError (INVALID_OPTION): 0 polled back to back.
   */
  pollIntervalMs?: number;
  signal?: AbortSignal;
  /**
   * Called when a status read gets no answer or a 429/502/503/504 and the wait goes on (the error
   * says why): for telling a person the server is away rather than waiting in silence.
   */
  onRetry?: (err: TaskgateError) => void;
}

export interface StreamOptions {
  /** Only these event types (or their SSE names); the stream still ends with the task. */
  types?: readonly string[];
  /** Resume strictly after this event (its `seq`). */
  lastEventId?: number | string;
  /** Stops the stream (the iteration simply ends). */
  signal?: AbortSignal;
  /** Failed connections in a row before the stream throws (default 10). */
  maxReconnects?: number;
  /** This stream's idle timeout, ms (replaces the client's streamIdleTimeoutMs). */
  idleTimeoutMs?: number;
  /** The link's state: connecting, live, reconnecting, done. */
  onState?: (state: StreamState) => void;
}
