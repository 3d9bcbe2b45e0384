// A non-streaming chat call writes nothing until its task ends, however long that takes: the
// server's idle-connection timeout (TASKGATE_REQUEST_TIMEOUT_MS) must not cut it off — a cut
// connection cancels the task, and a default openai client then resubmits it.
import OpenAI from 'openai';
import { expect, it } from 'vitest';
import { useAgentServer } from '../helpers/agent-server.js';
import { ADMIN_KEY } from '../helpers/server.js';

const fx = useAgentServer((baseUrl) => ({ OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: baseUrl, TASKGATE_REQUEST_TIMEOUT_MS: '1000' }));

it('a non-stream call that outlasts the idle timeout gets its answer on the same connection, one task', async () => {
  let release!: () => void;
  fx.oai.script({ kind: 'text', text: 'a slow but complete answer', pauseAfter: 1, resume: new Promise<void>((r) => (release = r)) });
  const client = new OpenAI({ apiKey: ADMIN_KEY, baseURL: `${fx.server.url}/v1`, maxRetries: 0 });
  const call = client.chat.completions.create({ model: 'taskgate', messages: [{ role: 'user', content: 'take your time' }] });
  await fx.oai.waitForRequests(1);
  await new Promise((r) => setTimeout(r, 2_500));
  release();
  const answer = await call;
  expect(answer.choices[0]!.message.content).toBe('a slow but complete answer');
  const list = await fx.server.call('GET', '/api/v1/tasks?limit=10');
  expect(list.body.tasks.map((t: { status: string }) => t.status)).toEqual(['COMPLETED']);
  // the connection's idle timeout is back for what follows on it
  expect(fx.oai.requests).toHaveLength(1);
});
