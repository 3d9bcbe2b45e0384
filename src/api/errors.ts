// Turns anything thrown while handling a request into the standard error envelope.
// 5xx bodies never carry internals: the message is generic and the detail goes to the log.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, ERRORS, clientErrorCode, type ErrorCode, type ErrorEnvelope } from '../contract/errors.js';
import { isDatabaseUnavailable } from '../storage/unavailable.js';
import { randomHex } from '../domain/ids.js';
import { requestIdOf, traceIdOf } from './request-ids.js';
import { JSON_SECURITY_HEADERS } from './hardening.js';
import { openAiErrorBody } from './openai-errors.js';
import { errorBody as seed004ErrorBody } from './routes/compat.js';

export function envelope(code: ErrorCode, message: string, requestId: string, details?: Record<string, unknown>): ErrorEnvelope {
  return { error: { code, message, ...(details ? { details } : {}) }, request_id: requestId };
}

/**
 * The compatibility routes answer in their own shapes (PRODUCT §5): seed 004's under
 * /api/v1/task and /api/v1/health, OpenAI's under /v1/. Their plugins' error handlers cover what
 * happens in a route; this covers what is answered before one is found (a wrong method, a
 * malformed path), chosen by the path alone.
 */
export type ErrorShape = 'envelope' | 'seed004' | 'openai';

const SEED004_PATH = /^\/api\/v1\/(?:task(?:\/|\?|$)|health\/?(?:\?|$))/;

export function errorShapeOf(url: string): ErrorShape {
  if (url.startsWith('/v1/')) return 'openai';
  return SEED004_PATH.test(url) ? 'seed004' : 'envelope';
}

/** An error body in the shape the path's routes use (`code` as OpenAI's lower-case name there). */
export function errorBodyFor(url: string, code: ErrorCode, message: string, requestId: string, details?: Record<string, unknown>): unknown {
  const shape = errorShapeOf(url);
  if (shape === 'seed004') return seed004ErrorBody(message);
  if (shape === 'openai') return openAiErrorBody(ERRORS[code].status, message, code.toLowerCase());
  return envelope(code, message, requestId, details);
}

export interface ValidationIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/**
 * The values an enum field allows, when its failure is one: a TypeBox union of literals fails in
 * Ajv as one `const` error per branch (params.allowedValue), then an `anyOf` error, all at the
 * same path; a JSON Schema `enum` as one `enum` error (params.allowedValues). Anything else (a
 * union with other branches, a lone const): undefined. Also seed 004's route (compat.ts).
 */
export function enumValuesOf(issues: readonly ValidationIssue[] | undefined): unknown[] | undefined {
  const first = issues?.[0];
  if (first?.keyword === 'enum') return Array.isArray(first.params?.allowedValues) ? first.params.allowedValues : undefined;
  if (first?.keyword !== 'const') return undefined;
  const values: unknown[] = [];
  for (const issue of issues!) {
    if ((issue.instancePath ?? '') !== (first.instancePath ?? '')) return undefined;
    if (issue.keyword === 'anyOf') return values;
    if (issue.keyword !== 'const') return undefined;
    values.push(issue.params?.allowedValue);
  }
  return undefined;
}

/** `must be one of a, b, c` (strings bare, other values as JSON): canonical priority's wording (submit.ts). */
export const mustBeOneOf = (values: readonly unknown[]): string =>
  `must be one of ${values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}`;

/**
 * The 400 for a value outside a field's set that a route checks itself (not its schema), in the
 * schema errors' shape: `priority must be one of …`, `details.allowed_values` (errors.md).
 */
export function notOneOf(path: string, allowed: readonly unknown[], got?: string): ApiError {
  const reason = mustBeOneOf(allowed);
  return new ApiError('VALIDATION_ERROR', `${path} ${reason}${got === undefined ? '' : ` (got ${got.slice(0, 40)})`}`, { path, reason, allowed_values: allowed });
}

function validationMessage(err: FastifyError & { validation?: ValidationIssue[]; validationContext?: string }): { message: string; details: Record<string, unknown> } {
  const first = err.validation?.[0];
  const location = err.validationContext ?? 'body';
  let path = first?.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
  if (first?.keyword === 'required') path = [path, String(first.params?.missingProperty)].filter(Boolean).join('.');
  if (first?.keyword === 'additionalProperties') {
    const extra = String(first.params?.additionalProperty);
    return { message: `${location}${path ? '.' + path : ''} has unknown property '${extra}'`, details: { location, path: [path, extra].filter(Boolean).join('.'), reason: 'unknown property' } };
  }
  const subject = path || location;
  const allowed = enumValuesOf(err.validation);
  if (allowed) {
    const reason = mustBeOneOf(allowed);
    return { message: `${subject} ${reason}`, details: { location, path: subject, reason, allowed_values: allowed } };
  }
  const reason = first?.keyword === 'required' ? 'is required' : first?.message ?? 'is invalid';
  return { message: `${subject} ${reason}`, details: { location, path: subject, reason } };
}

/** Fastify's own error codes that are really client errors, mapped onto ours. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_ERROR',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'VALIDATION_ERROR',
  FST_ERR_CTP_INVALID_JSON_BODY: 'VALIDATION_ERROR',
  FST_ERR_BAD_URL: 'VALIDATION_ERROR',
  FST_ERR_ASYNC_CONSTRAINT: 'VALIDATION_ERROR',
};

/**
 * SQLSTATE data exceptions a request's values can cause past validation (a number Ajv accepted as
 * `Infinity`, a value out of a column's range, text the database cannot hold): the request's
 * fault, so a 400 — never a 500. Class 22, the codes seen from values: invalid text
 * representation, numeric out of range, untranslatable character, character not in repertoire,
 * datetime out of range or invalid, string too long.
 */
const DATA_EXCEPTIONS = new Set(['22P02', '22003', '22P05', '22021', '22008', '22007', '22001']);

export function errorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const id = String(req.id);
  if (err instanceof ApiError) {
    if (err.headers) reply.headers(err.headers);
    return reply.code(err.status).send(envelope(err.code, err.message, id, err.details));
  }
  const fe = err as FastifyError & { validation?: ValidationIssue[]; validationContext?: string };
  if (fe.validation) {
    const { message, details } = validationMessage(fe);
    return reply.code(400).send(envelope('VALIDATION_ERROR', message, id, details));
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) {
    const message = mapped === 'VALIDATION_ERROR' ? (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'Body cannot be empty when Content-Type is application/json' : fe.message) : ERRORS[mapped].message;
    return reply.code(ERRORS[mapped].status).send(envelope(mapped, message, id));
  }
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = clientErrorCode(status);
    return reply.code(ERRORS[code].status).send(envelope(code, fe.message || ERRORS[code].message, id));
  }
  if (typeof fe.code === 'string' && DATA_EXCEPTIONS.has(fe.code)) {
    req.log.warn({ err }, 'request refused by the database: a value it cannot take');
    return reply.code(400).send(envelope('VALIDATION_ERROR', 'A value in the request is out of range or cannot be stored', id, { sqlstate: fe.code }));
  }
  req.log.error({ err }, 'request failed');
  if (status === 503 || isDatabaseUnavailable(err)) return reply.code(503).header('retry-after', '1').send(envelope('UNAVAILABLE', ERRORS.UNAVAILABLE.message, id));
  return reply.code(500).send(envelope('INTERNAL_ERROR', ERRORS.INTERNAL_ERROR.message, id));
}

/**
 * An envelope answer for a connection Node handles before Fastify has a request: status, headers
 * (a fresh request id unless one is given, nosniff, Connection: close) and the JSON body.
 */
export function preRequestAnswer(
  code: ErrorCode, message: string, requestId: string = randomUUID(), traceId: string = randomHex(16),
): { status: number; headers: Record<string, string>; body: string } {
  const { status } = ERRORS[code];
  const body = JSON.stringify(envelope(code, message, requestId));
  return {
    status, body,
    headers: {
      'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)),
      'X-Request-ID': requestId, 'X-Trace-ID': traceId, ...JSON_SECURITY_HEADERS, Connection: 'close',
    },
  };
}

/**
 * What Node's HTTP parser refuses before a request exists — headers or a body that did not arrive
 * in time, headers over the size cap, bytes that are not HTTP — answered in the envelope (with a
 * fresh request id) instead of Fastify's own body, and the connection closed. A reset connection
 * gets nothing: there is no one to answer.
 */
export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : 'VALIDATION_ERROR';
  const answer = preRequestAnswer(code, code === 'VALIDATION_ERROR' ? 'Malformed HTTP request' : ERRORS[code].message);
  // the parser's error carries the bytes it read (`rawPacket`: headers, credentials and all), so
  // only its code and message are logged
  this.log.debug({ err: { code: err.code, message: err.message }, request_id: answer.headers['X-Request-ID'], status: answer.status }, 'client error before a request');
  writeRaw(socket, answer);
  socket.destroy(err);
}

/** A pre-request answer written on the bare socket: no ServerResponse exists for it. */
function writeRaw(socket: Duplex, answer: ReturnType<typeof preRequestAnswer>): void {
  if (!socket.writable) return;
  const head = Object.entries(answer.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.write(`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\n${head}\r\n${answer.body}`);
}

/**
 * A `CONNECT` request (Node's 'connect' event: the server is asked to be a proxy): 405 in the
 * envelope, then the connection closed. Without a listener Node closed it with no answer at all.
 */
export function connectRefused(socket: Duplex, req: IncomingMessage): void {
  writeRaw(socket, preRequestAnswer('METHOD_NOT_ALLOWED', 'CONNECT is not supported: this server is not a proxy', requestIdOf(req), traceIdOf(req)));
  socket.end();
}

/**
 * An `Expect` other than `100-continue` (Node's 'checkExpectation'): the 417 in the envelope
 * instead of Node's empty body, and the connection closed — the body the client holds back is
 * never read. `100-continue` never gets here (Node answers it and the request goes on).
 */
export function expectationFailed(res: ServerResponse, req: IncomingMessage): void {
  const answer = preRequestAnswer('EXPECTATION_FAILED', 'Only the expectation 100-continue is supported', requestIdOf(req), traceIdOf(req));
  res.writeHead(answer.status, answer.headers).end(answer.body);
}

/**
 * Fastify's router refusals before a route is found — a path segment that is not valid percent
 * encoding (FST_ERR_BAD_URL), a path parameter over maxParamLength (FST_ERR_MAX_PARAM_LENGTH,
 * Fastify's own 414) — are malformed paths: 400 VALIDATION_ERROR, in the path's error shape.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
  void reply
    .code(400)
    .header('x-request-id', req.id)
    .header('x-trace-id', traceIdOf(req.raw))
    .headers(JSON_SECURITY_HEADERS)
    .type('application/json; charset=utf-8')
    .send(JSON.stringify(errorBodyFor(
      req.url, 'VALIDATION_ERROR', tooLong ? 'A path segment is too long' : 'The path is not valid URL encoding', req.id,
      { location: 'path', reason: tooLong ? 'too long' : 'bad encoding' },
    )));
}
