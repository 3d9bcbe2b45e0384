// TASKGATE_ERROR_FORMAT=reference: error bodies in the reference gateway's shape, for the Shannon
// Python SDK, whose error handler reads `body["error"]` as a string:
//
//   error_msg = error_data.get("error", response.text)
//   ... 404: "task" in error_msg.lower() → TaskNotFoundError, "session" → SessionNotFoundError
//
// With the standard envelope's object there, every 404 raised AttributeError in the SDK. Statuses,
// codes and headers stay; the compatibility routes keep their own shapes; our SDK reads both.
import { describe, expect, it } from 'vitest';
import { SessionNotFoundError, TaskgateClient, TaskNotFoundError, ValidationError } from '../../src/sdk/index.js';
import { ADMIN_KEY, useTestServer } from '../helpers/server.js';

const fx = useTestServer({ TASKGATE_ERROR_FORMAT: 'reference' });

/** The Shannon SDK's reading of an error answer: the exception class it would raise. */
function shannonError(status: number, body: any): string {
  const msg: unknown = body?.error ?? '';
  if (typeof msg !== 'string') return 'AttributeError';
  if (status === 401) return 'AuthenticationError';
  if (status === 404) return msg.toLowerCase().includes('task') ? 'TaskNotFoundError' : msg.toLowerCase().includes('session') ? 'SessionNotFoundError' : 'ShannonError';
  if (status === 400) return 'ValidationError';
  return 'ConnectionError';
}

describe('reference error format', () => {
  it('answers the canonical routes with the message as `error`, code, details and request id beside it', async () => {
    const task = await fx.server.call('GET', '/api/v1/tasks/task_nope');
    expect(task.status).toBe(404);
    expect(task.body).toEqual({ error: expect.stringContaining('task_nope'), code: 'NOT_FOUND', request_id: task.headers.get('x-request-id') });
    expect(shannonError(task.status, task.body)).toBe('TaskNotFoundError');
    for (const method of ['GET', 'DELETE']) {
      const session = await fx.server.call(method, '/api/v1/sessions/sess_nope');
      expect(session.status).toBe(404);
      expect(shannonError(session.status, session.body)).toBe('SessionNotFoundError');
    }
    const cancel = await fx.server.call('POST', '/api/v1/tasks/task_nope/cancel', {});
    expect(shannonError(cancel.status, cancel.body)).toBe('TaskNotFoundError');

    const invalid = await fx.server.call('POST', '/api/v1/tasks', { query: '' });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ error: expect.any(String), code: 'VALIDATION_ERROR', details: expect.any(Object) });
    expect(shannonError(invalid.status, invalid.body)).toBe('ValidationError');

    const anonymous = await fx.server.call('GET', '/api/v1/tasks', undefined, { key: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBeTruthy();
    expect(anonymous.body).toMatchObject({ error: expect.any(String), code: 'UNAUTHORIZED' });

    const unknownRoute = await fx.server.call('GET', '/api/v1/nowhere');
    expect(unknownRoute.status).toBe(404);
    expect(unknownRoute.body).toMatchObject({ error: expect.any(String), code: 'NOT_FOUND' });
  });

  it('leaves successes and the compatibility routes as they are', async () => {
    const ok = await fx.server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {} });
    expect(ok.status).toBe(200);
    expect(ok.body.task_id).toMatch(/^task_/);
    // seed 004's route answers from the canonical one (an inject the reshaping must not touch)
    const seed004 = await fx.server.call('GET', '/api/v1/task/task_nope');
    expect(seed004.status).toBe(404);
    expect(seed004.body).toMatchObject({ status: 'error', message: expect.any(String) });
    const openai = await fx.server.call('POST', '/v1/chat/completions', { model: 'taskgate' });
    expect(openai.status).toBe(400);
    expect(openai.body.error).toMatchObject({ message: expect.any(String), type: 'invalid_request_error' });
  });

  it("is read by Taskgate's own SDK as typed errors, like the envelope", async () => {
    const client = new TaskgateClient({ baseUrl: fx.server.url, apiKey: ADMIN_KEY });
    const notFound = await client.getStatus('task_nope').catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(TaskNotFoundError);
    expect(notFound).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining('task_nope'), requestId: expect.any(String) });
    expect(await client.getSession('sess_nope').catch((e: unknown) => e)).toBeInstanceOf(SessionNotFoundError);
    const invalid = await client.submitTask({ query: '' }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ValidationError);
    expect(invalid).toMatchObject({ code: 'VALIDATION_ERROR', details: expect.any(Object) });
  });
});
