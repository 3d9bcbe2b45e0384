// The errors an SDK call throws. Every one is a TaskgateError (the server's error envelope, typed);
// the subclasses name the usual cases after the reference gateway's Python SDK, so callers can
// `catch (e) { if (e instanceof RateLimitError) … }` instead of comparing status codes.
import type { ErrorCode, ErrorEnvelope } from '../contract/errors.js';
import type { EventFrame } from './sse.js';
import type { TaskView } from './types.js';

/**
 * Codes the SDK itself gives, beside the server's — never one of the server's (src/contract/errors.ts),
 * so a code names one cause: the SDK's own timeout is CLIENT_TIMEOUT, the server's 408 REQUEST_TIMEOUT.
 */
export const CLIENT_ERROR_CODES = ['NETWORK_ERROR', 'BAD_RESPONSE', 'CLIENT_TIMEOUT', 'WAIT_TIMEOUT', 'TASK_FAILED', 'INVALID_OPTION'] as const;
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

export interface TaskgateErrorInit {
  status: number;
  code: ErrorCode | ClientErrorCode;
  message: string;
  details?: Record<string, unknown>;
  requestId?: string;
  retryAfterS?: number;
  cause?: unknown;
}

export class TaskgateError extends Error {
  override name = 'TaskgateError';
  /** HTTP status (0 when no answer arrived: network failure, timeout, a task that failed). */
  readonly status: number;
  /** Error code from the envelope (`RATE_LIMITED`, …), or one of the SDK's own (ClientErrorCode). */
  readonly code: ErrorCode | ClientErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly requestId: string | undefined;
  /** Seconds from a Retry-After header (429, 503), when sent. */
  readonly retryAfterS: number | undefined;

  constructor(p: TaskgateErrorInit) {
    super(p.message, { cause: p.cause });
    this.status = p.status;
    this.code = p.code;
    this.details = p.details;
    this.requestId = p.requestId;
    this.retryAfterS = p.retryAfterS;
  }
}

/** 401: no credential, or one that is unknown, revoked or expired. */
export class AuthenticationError extends TaskgateError {
  override name = 'AuthenticationError';
}
/** 403: the credential lacks the scope the route needs. */
export class PermissionDeniedError extends TaskgateError {
  override name = 'PermissionDeniedError';
}
/** 400, 413, 415, 422: the request was refused as sent (`details` says which field and why); status 0, INVALID_OPTION: a client option is unusable. */
export class ValidationError extends TaskgateError {
  override name = 'ValidationError';
}
/** 404: unknown, or another tenant's. */
export class NotFoundError extends TaskgateError {
  override name = 'NotFoundError';
}
/** 404 from a task route. */
export class TaskNotFoundError extends NotFoundError {
  override name = 'TaskNotFoundError';
}
/** 404 from a session route. */
export class SessionNotFoundError extends NotFoundError {
  override name = 'SessionNotFoundError';
}
/** 409: the task's state does not allow it, or an Idempotency-Key still in flight. */
export class ConflictError extends TaskgateError {
  override name = 'ConflictError';
}
/** 429: `retryAfterS` says when to come back. */
export class RateLimitError extends TaskgateError {
  override name = 'RateLimitError';
}
/** 5xx. */
export class ServerError extends TaskgateError {
  override name = 'ServerError';
}
/** No answer: the server could not be reached, or the connection failed mid-way. */
export class NetworkError extends TaskgateError {
  override name = 'NetworkError';
}
/** CLIENT_TIMEOUT: no answer within the request's `timeoutMs` (the server's own 408, REQUEST_TIMEOUT, is a plain TaskgateError). */
export class RequestTimeoutError extends TaskgateError {
  override name = 'RequestTimeoutError';
}
/** `wait()` gave up before the task finished (the task goes on). */
export class TaskTimeoutError extends TaskgateError {
  override name = 'TaskTimeoutError';
}
/** `result()` of a task that ended FAILED, CANCELLED or TIMEOUT; `task` is its final view. */
export class TaskFailedError extends TaskgateError {
  override name = 'TaskFailedError';
  readonly task: TaskView;
  constructor(task: TaskView) {
    super({ status: 0, code: 'TASK_FAILED', message: `task ${task.task_id} ended ${task.status}${task.error ? `: ${task.error}` : ''}` });
    this.task = task;
  }
}

/** The code, message and details of an error body: the envelope, or the reference gateway's shape. */
export interface ErrorBodyParts {
  code?: ErrorCode;
  message?: string;
  details?: Record<string, unknown>;
  requestId?: string;
}

/**
 * Reads an error body in either shape the server answers: the standard envelope
 * `{"error": {code, message, details}, request_id}`, or (TASKGATE_ERROR_FORMAT=reference)
 * `{"error": "<message>", code, details, request_id}`. Anything else gives no parts.
 */
export function errorBodyParts(text: string): ErrorBodyParts {
  let body: { error?: unknown; code?: unknown; details?: unknown; request_id?: unknown } | undefined;
  try {
    body = text ? (JSON.parse(text) as typeof body) : undefined;
  } catch {
    return {};
  }
  if (body === null || typeof body !== 'object') return {};
  const requestId = typeof body.request_id === 'string' ? body.request_id : undefined;
  const err = body.error;
  const parts = typeof err === 'string'
    ? { code: body.code, message: err, details: body.details }
    : err !== null && typeof err === 'object' ? (err as { code?: unknown; message?: unknown; details?: unknown }) : {};
  return {
    code: typeof parts.code === 'string' ? (parts.code as ErrorCode) : undefined,
    message: typeof parts.message === 'string' ? parts.message : undefined,
    details: parts.details !== null && typeof parts.details === 'object' ? (parts.details as Record<string, unknown>) : undefined,
    requestId,
  };
}

/** What a 404 is about, for the subclass it becomes. */
export type NotFoundKind = 'task' | 'session';

/** A fetch to `baseUrl` that failed without an answer. */
export function unreachableError(baseUrl: string, err: unknown): NetworkError {
  return new NetworkError({ status: 0, code: 'NETWORK_ERROR', message: `cannot reach ${baseUrl}: ${failureText(err)}`, cause: err });
}

/**
 * The typed error of a non-2xx answer whose body is `text` (`afterMs`: its Retry-After, read once
 * by the caller); `notFound` says what a 404 is about, or reads it from the body.
 */
export function errorForAnswer(
  res: Response, text: string, afterMs?: number,
  notFound?: NotFoundKind | ((body: ErrorBodyParts) => NotFoundKind | undefined),
): TaskgateError {
  const body = errorBodyParts(text);
  return errorForStatus({
    status: res.status,
    code: body.code ?? 'BAD_RESPONSE',
    message: body.message ?? `HTTP ${res.status}`,
    details: body.details,
    requestId: body.requestId ?? res.headers.get('x-request-id') ?? undefined,
    retryAfterS: afterMs !== undefined && afterMs > 0 ? Math.ceil(afterMs / 1000) : undefined,
  }, typeof notFound === 'function' ? notFound(body) : notFound);
}

/** The error for an HTTP answer that is not 2xx (405, 408, 417, 431, … : the base class, with the server's code). */
export function errorForStatus(p: TaskgateErrorInit, notFound?: NotFoundKind): TaskgateError {
  const s = p.status;
  if (s === 401) return new AuthenticationError(p);
  if (s === 403) return new PermissionDeniedError(p);
  if (s === 404) return notFound === 'task' ? new TaskNotFoundError(p) : notFound === 'session' ? new SessionNotFoundError(p) : new NotFoundError(p);
  if (s === 409) return new ConflictError(p);
  if (s === 429) return new RateLimitError(p);
  if (s === 400 || s === 413 || s === 415 || s === 422) return new ValidationError(p);
  if (s >= 500) return new ServerError(p);
  return new TaskgateError(p);
}

/**
 * The error an `event: error` frame carries when the server ends an open stream on us (its
 * credential was revoked or expired): an error envelope, not an event. A task's ERROR_OCCURRED is
 * also sent as `error`, but is an event with a seq (the frame's id is no help: it carries over from
 * the frame before), so it gives undefined.
 */
export function errorFromStreamFrame(frame: EventFrame): TaskgateError | undefined {
  if (frame.event !== 'error') return undefined;
  let data: { seq?: unknown; error?: Partial<ErrorEnvelope['error']>; request_id?: string } | undefined;
  try {
    data = JSON.parse(frame.data) as typeof data;
  } catch {
    return undefined;
  }
  const env = data?.error;
  if (data?.seq !== undefined || typeof env?.code !== 'string') return undefined;
  const init = { code: env.code, message: env.message ?? env.code, requestId: data?.request_id };
  return env.code === 'UNAUTHORIZED' ? new AuthenticationError({ status: 401, ...init }) : new TaskgateError({ status: 0, ...init });
}

type CodedError = Error & { code?: unknown; address?: unknown; port?: unknown; hostname?: unknown; errors?: unknown };

/**
 * What a failed fetch says beneath its bare "fetch failed": the innermost code in the cause chain
 * (ECONNREFUSED, ENOTFOUND, ERR_SSL_…, UND_ERR_SOCKET) with the address or host it concerns, else
 * the innermost message. A browser's fetch has no cause: its own message is all there is.
 */
export function failureText(err: unknown): string {
  let coded: CodedError | undefined;
  let inner: unknown = err;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    inner = e;
    if (typeof (e as CodedError).code === 'string') coded = e as CodedError;
  }
  if (!coded) return inner instanceof Error ? inner.message : String(inner);
  const code = coded.code as string;
  // (an AggregateError from trying each address of a name: the addresses are in its errors)
  const parts = Array.isArray(coded.errors) ? (coded.errors as CodedError[]) : [coded];
  const where = parts.map(whereOf).filter(Boolean).join(', ') || (typeof coded.hostname === 'string' ? coded.hostname : '');
  if (where) return `${code} ${where}`;
  const msg = coded.message;
  return msg && !msg.includes(code) && !msg.includes('\n') && msg.length <= 120 ? `${code} (${msg})` : code;
}

function whereOf(e: CodedError): string {
  if (typeof e.address !== 'string') return '';
  const host = e.address.includes(':') ? `[${e.address}]` : e.address;
  return typeof e.port === 'number' ? `${host}:${e.port}` : host;
}
