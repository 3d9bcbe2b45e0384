// The error an SDK call throws for any non-2xx answer: the server's error envelope, typed.
import type { ErrorCode } from '../contract/errors.js';

export class TaskgateError extends Error {
  override name = 'TaskgateError';
  /** HTTP status (0 when the server could not be reached). */
  readonly status: number;
  /** Error code from the envelope (`RATE_LIMITED`, …), or `NETWORK_ERROR` / `BAD_RESPONSE`. */
  readonly code: ErrorCode | 'NETWORK_ERROR' | 'BAD_RESPONSE';
  readonly details: Record<string, unknown> | undefined;
  readonly requestId: string | undefined;
  /** Seconds from a Retry-After header (429, 503), when sent. */
  readonly retryAfterS: number | undefined;

  constructor(p: {
    status: number; code: TaskgateError['code']; message: string; details?: Record<string, unknown>; requestId?: string; retryAfterS?: number; cause?: unknown;
  }) {
    super(p.message, { cause: p.cause });
    this.status = p.status;
    this.code = p.code;
    this.details = p.details;
    this.requestId = p.requestId;
    this.retryAfterS = p.retryAfterS;
  }
}
