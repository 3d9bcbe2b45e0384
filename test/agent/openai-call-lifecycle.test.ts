// How a chat completion's call ends when it is not answered the usual way: the server closing
// while the call waits for its task, and a streamed call with an Idempotency-Key whose client goes away.
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useAgentServer } from '../helpers/agent-server.js';
import { ADMIN_KEY, until } from '../helpers/server.js';

const fx = useAgentServer((baseUrl) => ({ OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: baseUrl, TASKGATE_SHUTDOWN_GRACE_MS: '1500', TASKGATE_STREAM_STALL_MS: '1000' }));

const never = new Promise<void>(() => undefined);

function chat(stream: boolean, o: { key?: string; signal?: AbortSignal; content?: string } = {}) {
  return fetch(fx.server.url + '/v1/chat/completions', {
    method: 'POST',
    signal: o.signal,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', ...(o.key ? { 'idempotency-key': o.key } : {}) },
    body: JSON.stringify({ model: 'taskgate', messages: [{ role: 'user', content: o.content ?? 'hello' }], stream }),
  });
}

async function statusOf(taskId: string): Promise<string> {
  const { rows } = await fx.tdb.db.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [taskId]);
  return rows[0]!.status;
}

describe('the server closing while chat calls wait for their tasks', () => {
  it('a call whose task ends within the shutdown grace gets its answer', async () => {
    let release!: () => void;
    fx.oai.script({ kind: 'text', text: 'finished in time', pauseAfter: 1, resume: new Promise<void>((r) => (release = r)) });
    const call = chat(false).then(async (r) => ({ status: r.status, body: (await r.json()) as { choices: { message: { content: string } }[] } }));
    await fx.oai.waitForRequests(1);
    const closed = fx.server.close();
    setTimeout(release, 300);
    const res = await call;
    expect(res.status).toBe(200);
    expect(res.body.choices[0].message.content).toBe('finished in time');
    await closed;
    await fx.restartServer();
  });

  for (const stream of [false, true]) {
    it(`a ${stream ? 'streamed' : 'plain'} call still waiting after the grace is ended with 503 and its task cancelled (the close hung)`, async () => {
      fx.oai.script({ kind: 'text', text: 'a b c d', pauseAfter: 1, resume: never });
      const call = chat(stream).then(async (r) => ({ status: r.status, headers: r.headers, text: await r.text() }));
      await fx.oai.waitForRequests(1);
      const t0 = Date.now();
      await fx.server.close();
      expect(Date.now() - t0).toBeLessThan(15_000);
      const res = await call;
      if (stream) {
        expect(res.status).toBe(200);
        expect(res.text).toContain('"code":"server_shutting_down"');
      } else {
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(JSON.parse(res.text).error.code).toBe('server_shutting_down');
      }
      const { rows } = await fx.tdb.db.query<{ status: string }>('SELECT status FROM tasks ORDER BY created_at DESC, id DESC LIMIT 1');
      expect(rows[0]!.status).toBe('CANCELLED');
      await fx.restartServer();
    }, 30_000);
  }
});

it('a streamed call with an Idempotency-Key whose client goes away frees the key for a retry', async () => {
  fx.oai.script({ kind: 'text', text: 'a b c d', pauseAfter: 1, resume: never });
  const abort = new AbortController();
  const res = await chat(true, { key: 'stream-gone-1', signal: abort.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let seen = '';
  while (!seen.includes('"content":"a')) seen += new TextDecoder().decode((await reader.read()).value);
  abort.abort();
  const first = res.headers.get('x-workflow-id')!;
  await until(async () => (await statusOf(first)) === 'CANCELLED', 'the first call cancelled');
  // the claim was held (renewed) for up to a day: the retry was 409 IDEMPOTENCY_KEY_IN_PROGRESS
  await until(async () => (await fx.tdb.db.query(`SELECT 1 FROM idempotency_keys WHERE key = 'stream-gone-1'`)).rows.length === 0, 'the claim released');
  fx.oai.script({ kind: 'text', text: 'second try' });
  const retry = await chat(true, { key: 'stream-gone-1' });
  expect(retry.status).toBe(200);
  expect(retry.headers.get('x-workflow-id')).not.toBe(first);
  expect(await retry.text()).toContain('data: [DONE]');
});

it('a streamed call whose client stopped reading is let go after TASKGATE_STREAM_STALL_MS and its task cancelled', async () => {
  // 3.8 M characters (under the 4 MiB answer cap) in deltas of 100: ~13 MB of chunk frames, well
  // past what the kernel's socket buffers hold for a reader that does not read (~4 MB here); the
  // last delta never comes, so the task is still running when the client is let go
  fx.oai.script({ kind: 'text', text: '', chunks: Array.from({ length: 38_000 }, (_, i) => `${i}`.padEnd(100, 'x')), pauseAfter: 37_999, resume: never });
  const { port } = new URL(fx.server.url);
  const body = JSON.stringify({ model: 'taskgate', messages: [{ role: 'user', content: 'a long answer' }], stream: true });
  const socket = connect(Number(port), '127.0.0.1');
  let head = '';
  socket.on('error', () => undefined);
  socket.on('data', (d: Buffer) => {
    head += d.toString('latin1');
    if (head.includes('\r\n\r\n')) socket.pause(); // the headers, then it reads no more
  });
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  await until(() => head.includes('\r\n\r\n'), 'the response headers');
  const taskId = /x-workflow-id: (\S+)/i.exec(head)![1]!;
  await until(async () => (await statusOf(taskId)) !== 'RUNNING' && (await statusOf(taskId)) !== 'QUEUED', 'the task to end', 30_000);
  expect(await statusOf(taskId)).toBe('CANCELLED');
  const { rows } = await fx.tdb.db.query<{ cancel_reason: string }>('SELECT cancel_reason FROM tasks WHERE id = $1', [taskId]);
  expect(rows[0]!.cancel_reason).toBe('client stopped reading');
  socket.destroy();
}, 60_000);
