// A request's ids as every answer carries them (X-Request-ID, X-Trace-ID), derived from the raw
// request so that answers made before Fastify has a request (a malformed path, an Expect) carry
// them too.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { randomHex } from '../domain/ids.js';

const REQUEST_ID_RE = /^[A-Za-z0-9:_\-.]{1,128}$/;
const TRACEPARENT_RE = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A request's id: the client's `X-Request-ID` when it is a valid id, else a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const h = req.headers['x-request-id'];
  return typeof h === 'string' && REQUEST_ID_RE.test(h) ? h : randomUUID();
}

/** The W3C trace id of a request: from its `traceparent`, else a new one. Computed once, kept on the raw request. */
export function traceIdOf(raw: IncomingMessage & { taskgateTraceId?: string }): string {
  if (raw.taskgateTraceId) return raw.taskgateTraceId;
  const tp = raw.headers.traceparent;
  const m = typeof tp === 'string' ? TRACEPARENT_RE.exec(tp) : null;
  return (raw.taskgateTraceId = m ? m[1]! : randomHex(16));
}
