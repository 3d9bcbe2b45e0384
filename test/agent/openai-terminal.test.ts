// A chat call whose task ends without an answer, through the official `openai` client with its
// DEFAULT retries (2; it retries 408/409/429/≥500 unless the server sends `x-should-retry: false`)
// against a real server: a retry would submit a new task — undo an operator's cancel, or run a
// failing task three times — so these answers say not to, and exactly one task exists per call.
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { useAgentServer } from '../helpers/agent-server.js';
import { ADMIN_KEY, until } from '../helpers/server.js';

const fx = useAgentServer((baseUrl) => ({ OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: baseUrl }));
const client = () => new OpenAI({ apiKey: ADMIN_KEY, baseURL: `${fx.server.url}/v1` });

/** The tasks whose query is `query`, newest first. */
async function tasksFor(query: string): Promise<{ task_id: string; status: string }[]> {
  const res = await fx.server.call('GET', '/api/v1/tasks?limit=100');
  expect(res.status, res.text).toBe(200);
  return (res.body.tasks as { task_id: string; query: string; status: string }[]).filter((t) => t.query === query);
}

describe('a chat task that ends without an answer is not resubmitted by a default client', () => {
  it('a failed task: 500 task_failed with x-should-retry: false, one task', async () => {
    fx.oai.otherwise(() => ({ kind: 'error', status: 400, message: 'the provider refused it' }));
    const query = 'fail once please';
    const err = await client().chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: query }] }).catch((e: unknown) => e);
    expect((await tasksFor(query)).map((t) => t.status)).toEqual(['FAILED']);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    const apiErr = err as InstanceType<typeof OpenAI.APIError>;
    expect([apiErr.status, apiErr.code, apiErr.headers?.get('x-should-retry')]).toEqual([500, 'task_failed', 'false']);
    expect(apiErr.message).toContain('the provider refused it');
  });

  it('a task cancelled through the API: 400 task_cancelled with x-should-retry: false, one task', async () => {
    // the first upstream call never answers; any later one (a resubmitted task's) would succeed
    fx.oai.script({ kind: 'stall' });
    const query = 'cancel me while I think';
    const call = client().chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: query }] }).catch((e: unknown) => e);
    await fx.oai.waitForRequests(1);
    const [task] = await tasksFor(query);
    const cancel = await fx.server.call('POST', `/api/v1/tasks/${task!.task_id}/cancel`, {});
    expect(cancel.status, cancel.text).toBe(202);
    const err = await call;
    expect((await tasksFor(query)).map((t) => t.status)).toEqual(['CANCELLED']);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const apiErr = err as InstanceType<typeof OpenAI.APIError>;
    expect([apiErr.status, apiErr.code, apiErr.type, apiErr.headers?.get('x-should-retry')]).toEqual([400, 'task_cancelled', 'invalid_request_error', 'false']);
    expect(fx.oai.requests).toHaveLength(1);
  });

  it('a stream whose task fails after the 200 ends with an error frame, and the client does not resubmit', async () => {
    fx.oai.otherwise(() => ({ kind: 'error', status: 400, message: 'the provider refused it' }));
    const query = 'fail while streaming';
    const stream = await client().chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: query }], stream: true });
    const err = await (async () => {
      for await (const _ of stream) void _;
    })().catch((e: unknown) => e);
    expect(String((err as Error)?.message)).toContain('the provider refused it');
    // the error frame is written once the task has ended
    expect((await tasksFor(query)).map((t) => t.status)).toEqual(['FAILED']);
  });
});

describe("a chat call whose key is revoked while it waits ends, and its task is cancelled (as the stream routes' streams end)", () => {
  const newKey = async () => {
    const res = await fx.server.call('POST', '/api/v1/auth/api-keys', { name: 'chatter', scopes: ['tasks:execute', 'tasks:read'] });
    expect(res.status, res.text).toBe(201);
    return { id: res.body.id as string, key: res.body.key as string };
  };
  const revoke = async (id: string) => expect((await fx.server.call('DELETE', `/api/v1/auth/api-keys/${id}`)).status).toBe(204);

  it('streaming: an error frame (invalid_api_key), then the end; the task CANCELLED', async () => {
    fx.oai.script({ kind: 'stall', chunks: ['thinking '] });
    const doomed = await newKey();
    const query = 'stream until my key is revoked';
    const stream = await new OpenAI({ apiKey: doomed.key, baseURL: `${fx.server.url}/v1`, maxRetries: 0 }).chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: query }], stream: true });
    await fx.oai.waitForRequests(1);
    await revoke(doomed.id);
    const err = await (async () => {
      for await (const _ of stream) void _;
    })().catch((e: unknown) => e);
    expect(String((err as Error)?.message)).toMatch(/credential of this call was revoked/);
    await until(async () => (await tasksFor(query))[0]?.status === 'CANCELLED', 'the task cancelled');
  });

  it('non-streaming: 401 invalid_api_key; the task CANCELLED', async () => {
    fx.oai.script({ kind: 'stall' });
    const doomed = await newKey();
    const query = 'wait until my key is revoked';
    const call = new OpenAI({ apiKey: doomed.key, baseURL: `${fx.server.url}/v1`, maxRetries: 0 }).chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: query }] }).catch((e: unknown) => e);
    await fx.oai.waitForRequests(1);
    await revoke(doomed.id);
    const err = await call;
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('invalid_api_key');
    await until(async () => (await tasksFor(query))[0]?.status === 'CANCELLED', 'the task cancelled');
  });
});
