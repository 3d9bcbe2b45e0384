// A streamed chat completion is paced by its client, as the task streams are (docs/streaming.md):
// a client that reads — at once, or after a pause shorter than TASKGATE_STREAM_STALL_MS — gets the
// whole answer and [DONE] however the provider bursts it; only one that stops reading is let go
// (openai-call-lifecycle.test.ts). The previous version let go any client with more than
// TASKGATE_STREAM_BUFFER_BYTES unread at a frame: the size of the burst, not the client's reading.
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { useAgentServer } from '../helpers/agent-server.js';
import { ADMIN_KEY, until } from '../helpers/server.js';
import { CHAT_FRAME_MAX_CHARS } from '../../src/api/chat-stream.js';

// the smallest buffer the configuration takes; the stall is far longer than any test here waits
const fx = useAgentServer((baseUrl) => ({
  OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: baseUrl, TASKGATE_STREAM_BUFFER_BYTES: '1024', TASKGATE_STREAM_STALL_MS: '300000',
}));

interface StreamRead {
  taskId: string;
  /** The content deltas, in order. */
  deltas: string[];
  /** The last `data:` frame. */
  last: string | undefined;
}

/** Where `got` first differs from `want` (-1: equal), so a failure does not print megabytes. */
function firstDifference(got: string, want: string): number {
  if (got === want) return -1;
  let i = 0;
  while (i < got.length && got[i] === want[i]) i++;
  return i;
}

/** The `data:` payloads of an SSE body. */
function dataFrames(body: string): string[] {
  return body.split('\n\n').flatMap((f) => f.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)));
}

function read(body: string, taskId: string): StreamRead {
  const frames = dataFrames(body);
  const deltas = frames.filter((f) => f !== '[DONE]').flatMap((f) => {
    const content = (JSON.parse(f) as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content;
    return content ? [content] : [];
  });
  return { taskId, deltas, last: frames[frames.length - 1] };
}

/** A chunk frame with text in it (the first frame has `role` and empty content). */
const CONTENT = /"delta":\{"content":"[^"]/;

/**
 * A streamed call read with node:http. Once its first text has arrived, `burst` is resolved (the
 * fake provider then sends the rest in one write) — so the burst meets a follower that has read
 * the task's log, whose live deltas the event hub passes on as they come (while it reads the log,
 * it holds at most 1,000: more would end the stream stream_diverged, whatever the client does).
 * `holdUntil`: from then on the response is paused (nothing read: the server's writes back up)
 * until it resolves.
 */
function streamedCall(content: string, burst: () => void, holdUntil?: (taskId: string) => Promise<void>): Promise<StreamRead> {
  const payload = JSON.stringify({ model: 'taskgate', messages: [{ role: 'user', content }], stream: true });
  return new Promise((resolve, reject) => {
    const req = request(`${fx.server.url}/v1/chat/completions`, {
      method: 'POST', agent: false,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      const taskId = String(res.headers['x-workflow-id']);
      const parts: Buffer[] = [];
      let started = false;
      const done = () => resolve(read(Buffer.concat(parts).toString('utf8'), taskId));
      res.on('data', (d: Buffer) => {
        parts.push(d);
        if (started || !CONTENT.test(Buffer.concat(parts).toString('utf8'))) return;
        started = true;
        if (holdUntil) {
          res.pause();
          holdUntil(taskId).then(() => res.resume(), reject);
        }
        burst();
      });
      res.on('end', done);
      // cut by the server: what came until then
      res.on('error', done);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function statusOf(taskId: string): Promise<string> {
  const { rows } = await fx.tdb.db.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [taskId]);
  return rows[0]!.status;
}

const ended = (s: string) => ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT'].includes(s);

describe('a streamed chat completion whose provider bursts', () => {
  // 20,000 deltas of a few characters in one provider write: ~4.6 MB of chunk frames at once
  const deltas = Array.from({ length: 20_000 }, (_, i) => `w${i} `);

  for (let run = 1; run <= 5; run++) {
    it(`a client that reads at once gets every delta and [DONE], its task COMPLETED (run ${run})`, async () => {
      let burst!: () => void;
      fx.oai.script({ kind: 'text', text: '', chunks: deltas, burst: true, pauseAfter: 1, resume: new Promise<void>((r) => (burst = r)) });
      const got = await streamedCall('burst please', burst);
      expect(got.last).toBe('[DONE]');
      expect(firstDifference(got.deltas.join(''), deltas.join(''))).toBe(-1);
      expect(await statusOf(got.taskId)).toBe('COMPLETED');
    }, 60_000);
  }

  it('a client that stops reading until its task has ended (a pause shorter than the stall) then gets it all, in fewer, larger chunks', async () => {
    // 3.8 M characters in deltas of 100: ~13 MB of chunk frames, more than the kernel's socket
    // buffers hold for a client that is not reading (~4 MB here)
    const long = Array.from({ length: 38_000 }, (_, i) => `${i}`.padEnd(100, 'x'));
    let burst!: () => void;
    fx.oai.script({ kind: 'text', text: '', chunks: long, burst: true, pauseAfter: 1, resume: new Promise<void>((r) => (burst = r)) });
    const got = await streamedCall('a long answer, read later', burst, async (taskId) => {
      await until(async () => ended(await statusOf(taskId)), 'the task to end', 60_000);
      expect(await statusOf(taskId)).toBe('COMPLETED');
    });
    expect(got.last).toBe('[DONE]');
    expect(firstDifference(got.deltas.join(''), long.join(''))).toBe(-1);
    // what piled up while the client was behind went out merged, in frames of at most 16 Ki characters
    // (not a frame of ~240 bytes per 100-character delta)
    const sizes = got.deltas.map((d) => d.length);
    expect(Math.max(...sizes)).toBe(CHAT_FRAME_MAX_CHARS);
    expect(got.deltas.length).toBeLessThan(long.length / 2);
  }, 120_000);
});
