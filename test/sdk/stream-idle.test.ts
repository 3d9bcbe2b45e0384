// The stream's idle watchdog against a scripted HTTP server: a connection that goes silent (a proxy
// that stopped forwarding, its socket still open) is dropped and resumed with Last-Event-ID; pings
// keep a quiet one alive; a connect that never gets its headers is a failed connection.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { beforeEach, describe, expect, it } from 'vitest';
import { useHttpServer } from '../helpers/http-server.js';
import { DEFAULT_STREAM_IDLE_MS, TaskgateClient, ValidationError, type StreamEvent } from '../../src/sdk/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;
let handler: Handler;
let seen: IncomingMessage['headers'][];

const scripted = useHttpServer((req, res) => {
  seen.push(req.headers);
  handler(req, res, seen.length);
});
beforeEach(() => {
  seen = [];
});

const frame = (seq: number, type = 'PROGRESS') => `id: ${seq}\nevent: ${type}\ndata: ${JSON.stringify({ workflow_id: 't', type, seq, timestamp: 'x' })}\n\n`;
const end = (seq: number) => `${frame(seq, 'STREAM_END')}event: done\ndata: [DONE]\n\n`;
const sse = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream' });
const client = (o: Partial<ConstructorParameters<typeof TaskgateClient>[0]> = {}) => new TaskgateClient({ baseUrl: scripted.url, apiKey: 'sk_test', ...o });
const collect = async (it: AsyncIterable<StreamEvent>) => {
  const out: StreamEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
};

describe('SDK stream: idle watchdog', () => {
  it('a connection silent for streamIdleTimeoutMs is opened again with Last-Event-ID; nothing is lost or repeated', async () => {
    // the first connection sends one event and then nothing, its socket left open (the audit's frozen proxy)
    handler = (_q, res, n) => {
      sse(res);
      if (n === 1) return res.write(`: connected\nretry: 10\n\n${frame(1)}`);
      res.end(`: connected\n\n${frame(2)}${end(3)}`);
    };
    const states: string[] = [];
    const events = await collect(client({ streamIdleTimeoutMs: 300 }).stream('t', { onState: (s) => states.push(s) }));
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(seen).toHaveLength(2);
    expect(seen[0]!['last-event-id']).toBeUndefined();
    expect(seen[1]!['last-event-id']).toBe('1');
    expect(states).toEqual(['connecting', 'live', 'reconnecting', 'live', 'done']);
  });

  it('comments count as life: a stream pinged more often than the idle timeout stays on one connection', async () => {
    // pings every 50 ms for 1.5 s against a 1 s idle timeout: without them it would have reconnected
    handler = (_q, res) => {
      sse(res);
      res.write(': connected\n\n');
      let pings = 0;
      const t = setInterval(() => {
        if (++pings < 30) return void res.write(': ping\n\n');
        clearInterval(t);
        res.end(end(1));
      }, 50);
    };
    const events = await collect(client().stream('t', { idleTimeoutMs: 1_000 }));
    expect(events.map((e) => e.seq)).toEqual([1]);
    expect(seen).toHaveLength(1);
  });

  it('a connect whose answer never comes is a failed connection (maxReconnects counts it)', async () => {
    handler = (_q, res, n) => {
      if (n === 1) return; // accepted, never answered
      sse(res);
      res.end(end(1));
    };
    const events = await collect(client().stream('t', { idleTimeoutMs: 300 }));
    expect(events.map((e) => e.seq)).toEqual([1]);
    expect(seen).toHaveLength(2);

    seen = [];
    handler = () => {};
    const err = await collect(client().stream('t', { idleTimeoutMs: 100, maxReconnects: 1 })).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/no data for 100 ms/);
    expect(seen).toHaveLength(2);
  });

  it('the idle timeout is a number of ms a timer can hold: anything else is INVALID_OPTION; the default is exported', async () => {
    expect(DEFAULT_STREAM_IDLE_MS).toBe(35_000);
    expect(() => client({ streamIdleTimeoutMs: -1 })).toThrow(ValidationError);
    expect(() => client({ streamIdleTimeoutMs: 2 ** 31 })).toThrow(/streamIdleTimeoutMs must be a number of ms from 0 to 2147483647/);
    await expect(collect(client().stream('t', { idleTimeoutMs: Number.NaN }))).rejects.toMatchObject({ code: 'INVALID_OPTION', details: { path: 'idleTimeoutMs' } });
    expect(seen).toHaveLength(0);
  });
});
