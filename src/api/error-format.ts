// TASKGATE_ERROR_FORMAT=reference: error bodies in the reference gateway's shape. The Shannon
// Python SDK reads `body["error"]` as the message string (`"task" in error_msg.lower()` picks
// TaskNotFoundError), so the standard envelope's object there crashes it on every 404. The
// reference shape keeps the code, details and request id beside the message:
//   {"error": "task task_… not found", "code": "NOT_FOUND", "details": {...}, "request_id": "…"}
// Statuses, headers and codes are unchanged; the compatibility routes keep their own shapes.
import type { FastifyInstance } from 'fastify';
import { errorShapeOf } from './errors.js';

/** The reference-shaped text of an error envelope's text; undefined when it is not one. */
export function referenceErrorBody(text: string): string | undefined {
  let body: { error?: { code?: unknown; message?: unknown; details?: unknown }; request_id?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return undefined;
  }
  const err = body?.error;
  if (err === null || typeof err !== 'object' || typeof err.message !== 'string') return undefined;
  return JSON.stringify({ error: err.message, code: err.code, ...(err.details === undefined ? {} : { details: err.details }), request_id: body.request_id });
}

/** Rewrites every error envelope a client receives (`skip`: requests the app makes of itself). */
export function registerReferenceErrors(app: FastifyInstance, skip: (raw: object) => boolean): void {
  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode < 400 || typeof payload !== 'string' || skip(req.raw) || errorShapeOf(req.url) !== 'envelope') return payload;
    return referenceErrorBody(payload) ?? payload;
  });
}
