// The errors an SDK call throws. Every one is a TaskgateError (the server's error envelope, typed);
// the subclasses name the usual cases after the reference gateway's Python SDK, so callers can
// `catch (e) { if (e instanceof RateLimitError) … }` instead of comparing status codes.
import type { ErrorCode } from '../contract/errors.js';
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

/** What a 404 is about, for the subclass it becomes. */
export type NotFoundKind = 'task' | 'session';

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
