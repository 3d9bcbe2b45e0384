// The OpenAI-compatible routes on a real server (fake provider): what is answered before a route
// is found keeps OpenAI's error shape, a conversation too large for a task is named by the field
// the client sent, and streaming calls count against the per-principal stream cap and in the
// stream metrics.
import { describe, expect, it } from 'vitest';
import { useAgentServer } from '../helpers/agent-server.js';
import { ADMIN_KEY, until } from '../helpers/server.js';

// one open stream per principal: the cap is what the streaming tests are about
const fx = useAgentServer((baseUrl) => ({ OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: baseUrl, TASKGATE_MAX_STREAMS_PER_PRINCIPAL: '1' }));

const openAiError = (status: number, message: string, code: string | null, param: string | null = null) => ({
  error: { message, type: status === 429 ? 'rate_limit_error' : 'invalid_request_error', param, code },
});

describe('answers made before a route is found', () => {
  it("a wrong method under /v1/ is 405 in OpenAI's shape, with Allow", async () => {
    const res = await fx.server.call('GET', '/v1/chat/completions');
    expect([res.status, res.body, res.headers.get('allow')]).toEqual([405, openAiError(405, 'Method GET not allowed on /v1/chat/completions', 'method_not_allowed'), 'POST']);
    const models = await fx.server.call('DELETE', '/v1/models');
    expect([models.status, models.body.error?.code]).toEqual([405, 'method_not_allowed']);
  });

  it("a path that is not valid URL encoding, or a segment over 256 characters, is 400 in OpenAI's shape", async () => {
    const bad = await fx.server.call('GET', '/v1/models/%zz');
    expect([bad.status, bad.body]).toEqual([400, openAiError(400, 'The path is not valid URL encoding', 'validation_error')]);
    const long = await fx.server.call('GET', `/v1/models/${'m'.repeat(300)}`);
    expect([long.status, long.body]).toEqual([400, openAiError(400, 'A path segment is too long', 'validation_error')]);
  });
});

describe("what the framework refuses in a route's scope", () => {
  it('names its code (unsupported_media_type, payload_too_large); a malformed parameter has none, as at OpenAI', async () => {
    const text = await fx.server.call('POST', '/v1/chat/completions', 'hello', { headers: { 'content-type': 'text/plain' } });
    expect([text.status, text.body.error?.code, text.body.error?.type]).toEqual([415, 'unsupported_media_type', 'invalid_request_error']);
    const huge = await fx.server.call('POST', '/v1/chat/completions', { model: 'taskgate', messages: [{ role: 'user', content: 'x'.repeat(2 * 1024 * 1024) }] });
    expect([huge.status, huge.body.error?.code]).toEqual([413, 'payload_too_large']);
    const schema = await fx.server.call('POST', '/v1/chat/completions', { model: 'taskgate', messages: 'hi' });
    expect([schema.status, schema.body.error?.code, schema.body.error?.param]).toEqual([400, null, 'messages']);
  });
});

describe('a conversation too large for a task', () => {
  const chat = (messages: { role: string; content: string }[]) => fx.server.call('POST', '/v1/chat/completions', { model: 'taskgate', messages });

  it('is refused naming messages, the field the client sent (its earlier messages are the task context, at most 64 KiB)', async () => {
    const earlier = Array.from({ length: 3 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'x'.repeat(25_000) }));
    const res = await chat([...earlier, { role: 'user', content: 'and now?' }]);
    expect([res.status, res.body.error.param, res.body.error.code, res.body.error.type]).toEqual([400, 'messages', 'context_length_exceeded', 'invalid_request_error']);
    expect(res.body.error.message).toContain('at most 65536 bytes');
    // just under the cap is taken
    const fits = await chat([{ role: 'user', content: 'x'.repeat(60_000) }, { role: 'user', content: 'hi' }]);
    expect(fits.status, fits.text).toBe(200);
  });

  it('names the last message when it is over the 10,000 characters of a query', async () => {
    const res = await chat([{ role: 'system', content: 'be brief' }, { role: 'user', content: 'q'.repeat(10_001) }]);
    expect([res.status, res.body.error.param, res.body.error.message]).toEqual([400, 'messages[1].content', expect.stringMatching(/^messages\[1\]\.content /)]);
  });
});

describe('streaming chat calls and the per-principal stream cap', () => {
  const streamChat = (signal?: AbortSignal) => fetch(`${fx.server.url}/v1/chat/completions`, {
    method: 'POST', signal, headers: { 'content-type': 'application/json', 'x-api-key': ADMIN_KEY },
    body: JSON.stringify({ model: 'taskgate', messages: [{ role: 'user', content: 'long' }], stream: true }),
  });
  /** A reader of the SSE body: `until(marker)` answers what was read once `marker` arrives (or the stream ends). */
  const reading = (res: Response) => {
    const reader = res.body!.getReader();
    let text = '';
    return {
      async until(marker: string): Promise<string> {
        while (!text.includes(marker)) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
        return text;
      },
    };
  };
  const taskCount = async () => (await fx.server.call('GET', '/api/v1/tasks?limit=1')).body.total_count as number;

  it("takes a slot while it streams: over the cap it is OpenAI's 429 with Retry-After, submits nothing, and the SSE route is refused too", async () => {
    let resume!: () => void;
    fx.oai.script({ kind: 'text', text: 'a b c d', pauseAfter: 1, resume: new Promise<void>((r) => (resume = r)) });
    const first = await streamChat();
    expect(first.status).toBe(200);
    const firstBody = reading(first);
    await firstBody.until('"content":"a');
    const before = await taskCount();

    const second = await streamChat();
    expect([second.status, second.headers.get('retry-after'), await second.json()]).toEqual([
      429, '1', openAiError(429, 'too many concurrent streams for this credential (at most 1)', 'rate_limit_exceeded'),
    ]);
    expect(await taskCount()).toBe(before);
    const sse = await fx.server.call('GET', `/api/v1/stream/sse?workflow_id=${first.headers.get('x-workflow-id')}`);
    expect([sse.status, sse.body.error.code]).toEqual([429, 'RATE_LIMITED']);
    // a call without stream holds no slot
    expect((await fx.server.call('POST', '/v1/chat/completions', { model: 'taskgate', messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);

    // the slot is given back when the stream ends
    resume();
    expect(await firstBody.until('data: [DONE]')).toContain('data: [DONE]');
    const third = await streamChat();
    expect(third.status).toBe(200);
    expect(await reading(third).until('data: [DONE]')).toContain('data: [DONE]');
  });

  it('gives the slot back when the client goes away mid-stream', async () => {
    fx.oai.script({ kind: 'text', text: 'a b c d', pauseAfter: 1, resume: new Promise<void>(() => undefined) });
    const ctl = new AbortController();
    const first = await streamChat(ctl.signal);
    expect(first.status).toBe(200);
    await reading(first).until('"content":"a');
    ctl.abort();
    // the server sees the close asynchronously
    let next: Response | undefined;
    await until(async () => {
      next = await streamChat();
      if (next.status === 200) return true;
      await next.body?.cancel();
      return false;
    }, 'a stream slot released after the client disconnected');
    expect(await reading(next!).until('data: [DONE]')).toContain('data: [DONE]');
  });

  it('are counted in taskgate_stream_clients while open, and in taskgate_streams_closed_total{transport="chat"} by why they ended', async () => {
    /** One sample of `name{labels}` from /metrics; 0 when absent. */
    const sample = async (name: string, labels = '') => {
      const line = (await fx.server.call('GET', '/metrics')).text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const open = () => sample('taskgate_stream_clients');
    const closed = (reason: string) => sample('taskgate_streams_closed_total', `{transport="chat",reason="${reason}"}`);
    // the earlier tests' streams are closed (the server sees a client's close asynchronously)
    await until(async () => (await open()) === 0, 'no stream open');
    const [done0, client0] = [await closed('done'), await closed('client')];

    // finished: open while it streams, closed once [DONE] is written
    let resume!: () => void;
    fx.oai.script({ kind: 'text', text: 'a b c d', pauseAfter: 1, resume: new Promise<void>((r) => (resume = r)) });
    const finished = reading(await streamChat());
    await finished.until('"content":"a');
    expect(await open()).toBe(1);
    resume();
    await finished.until('data: [DONE]');
    expect([await open(), await closed('done')]).toEqual([0, done0 + 1]);

    // a task that failed: the error frame, then closed as the task ended
    fx.oai.script({ kind: 'error', status: 400, message: 'bad request' });
    const failed = await reading(await streamChat()).until('data: [DONE]');
    expect(failed).toContain('"type":"server_error"');
    expect([await open(), await closed('done')]).toEqual([0, done0 + 2]);

    // the client gone mid-stream
    fx.oai.script({ kind: 'text', text: 'a b c d', pauseAfter: 1, resume: new Promise<void>(() => undefined) });
    const ctl = new AbortController();
    await reading(await streamChat(ctl.signal)).until('"content":"a');
    expect(await open()).toBe(1);
    ctl.abort();
    await until(async () => (await closed('client')) === client0 + 1, 'a chat stream closed by its client');
    expect(await open()).toBe(0);
  });
});


describe('finish_reason', () => {
  it("is the provider's length when the answer was cut at its output limit (from the task's persisted LLM_OUTPUT)", async () => {
    fx.oai.script({ kind: 'text', text: 'cut short', finishReason: 'length' });
    const res = await fx.server.call('POST', '/v1/chat/completions', { model: 'taskgate', messages: [{ role: 'user', content: 'a long answer' }] });
    expect([res.status, res.body.choices?.[0]?.finish_reason]).toEqual([200, 'length']);
  });
});
