// OpenAI's error shape for the OpenAI-compatible routes: {error: {message, type, param, code}},
// so any OpenAI client library reads our refusals; and what the framework or the canonical routes
// refuse, turned into it.
import type { FastifyError } from 'fastify';
import { ApiError, clientErrorCode, type ErrorCode } from '../contract/errors.js';

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

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
export const NO_RETRY = { 'x-should-retry': 'false' };

export const invalid = (message: string, param: string | null = null, code: string | null = null) => new OpenAiError(400, message, 'invalid_request_error', code, param);

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

export function toOpenAiError(err: unknown): { status: number; body: OpenAiErrorBody; headers?: Record<string, string> } {
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
