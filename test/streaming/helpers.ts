// A raw SSE client over node:http (light enough for a thousand at once), gates that let a test
// definition wait for the test, and the definitions the streaming tests run.
import WebSocket from 'ws';
import http from 'node:http';
import type { TaskDefinition } from '../../src/executors/types.js';

export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
  comments: string[];
}

export interface SseClient {
  status: Promise<number>;
  headers: Promise<http.IncomingHttpHeaders>;
  /** Parsed frames with an event (comment-only blocks are in `comments`). */
  frames: SseFrame[];
  comments: string[];
  /** Raw body text (for error responses). */
  body(): string;
  /** The connection error, when status is 0. */
  error?: Error;
  /** Resolves when the response ends or the connection closes. */
  ended: Promise<void>;
  /** Resolves with the first frame (or comment) `pred` accepts. */
  waitFor(pred: (f: SseFrame) => boolean): Promise<SseFrame>;
  /** Called on every frame as it arrives. */
  onFrame?: (f: SseFrame, client: SseClient) => void;
  res: Promise<http.IncomingMessage>;
  close(): void;
}

export function openSse(url: string, opts: { headers?: Record<string, string>; paused?: boolean; agent?: http.Agent | false } = {}): SseClient {
  const frames: SseFrame[] = [];
  const comments: string[] = [];
  let raw = '';
  let buf = '';
  const waiters: { pred: (f: SseFrame) => boolean; resolve: (f: SseFrame) => void }[] = [];
  let resolveStatus!: (n: number) => void;
  let resolveHeaders!: (h: http.IncomingHttpHeaders) => void;
  let resolveRes!: (r: http.IncomingMessage) => void;
  let resolveEnded!: () => void;
  const client: SseClient = {
    status: new Promise((r) => (resolveStatus = r)),
    headers: new Promise((r) => (resolveHeaders = r)),
    res: new Promise((r) => (resolveRes = r)),
    ended: new Promise((r) => (resolveEnded = r)),
    frames,
    comments,
    body: () => raw,
    waitFor(pred) {
      const hit = frames.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    close: () => req.destroy(),
  };
  const emit = (f: SseFrame) => {
    if (f.event !== undefined || f.data !== undefined || f.retry !== undefined) frames.push(f);
    client.onFrame?.(f, client);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.pred(f)) {
        waiters[i]!.resolve(f);
        waiters.splice(i, 1);
      }
    }
  };
  const req = http.get(url, { headers: { accept: 'text/event-stream', ...(opts.headers ?? {}) }, agent: opts.agent }, (res) => {
    resolveStatus(res.statusCode ?? 0);
    resolveHeaders(res.headers);
    resolveRes(res);
    res.setEncoding('utf8');
    if (opts.paused) res.pause();
    res.on('data', (chunk: string) => {
      if (res.statusCode !== 200) {
        raw += chunk;
        return;
      }
      buf += chunk;
      let idx: number;
      while ((idx = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, idx);
        buf = buf.slice(idx + 2);
        const f: SseFrame = { comments: [] };
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) {
            f.comments.push(line.slice(1).trim());
            comments.push(line.slice(1).trim());
            continue;
          }
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
          if (field === 'id' || field === 'event' || field === 'retry') f[field] = value;
          else if (field === 'data') f.data = f.data === undefined ? value : `${f.data}\n${value}`;
        }
        emit(f);
      }
    });
    res.on('end', () => resolveEnded());
    res.on('close', () => resolveEnded());
  });
  req.on('error', (err) => {
    client.error ??= err;
    resolveStatus(0);
    resolveEnded();
  });
  return client;
}

/** Follows a stream to `done` like a well-behaved client: reconnects with Last-Event-ID whenever it is cut. */
export async function followToEnd(url: string, headers: Record<string, string>, onFirstFrame?: () => void): Promise<{ ids: number[]; connections: number }> {
  const ids: number[] = [];
  let last: string | undefined;
  for (let connections = 1; ; connections++) {
    const c = openSse(url, { headers: last ? { ...headers, 'last-event-id': last } : headers });
    c.onFrame = (f) => {
      if (f.id !== undefined) {
        ids.push(Number(f.id));
        last = f.id;
      }
      onFirstFrame?.();
      onFirstFrame = undefined;
    };
    const status = await c.status;
    if (status !== 200) throw new Error(`stream answered ${status}: ${c.error?.message ?? c.body()}`);
    await c.ended;
    if (c.frames.some(isDone)) return { ids, connections };
  }
}

/** Events (not comments, not `done`) of a client as parsed JSON. */
export function eventsOf(c: SseClient): any[] {
  return c.frames.filter((f) => f.event !== 'done' && f.data !== undefined).map((f) => JSON.parse(f.data!));
}

export const isDone = (f: SseFrame) => f.event === 'done';

/** A latch a test definition awaits until the test opens it. */
export class Gates {
  readonly #gates = new Map<string, { promise: Promise<void>; open: () => void }>();
  #get(key: string) {
    let g = this.#gates.get(key);
    if (!g) {
      let open!: () => void;
      const promise = new Promise<void>((r) => (open = r));
      g = { promise, open };
      this.#gates.set(key, g);
    }
    return g;
  }
  wait(key: string): Promise<void> {
    return this.#get(key).promise;
  }
  open(key: string): void {
    this.#get(key).open();
  }
}

export const gates = new Gates();

/** Emits `count` PROGRESS events (optionally `bytes` of payload each), waiting at gate `<key>:start` first if `gated`. */
export const progressDef: TaskDefinition = {
  id: 'test-progress', name: 'progress', description: '', version: '1', kind: 'function',
  input_schema: {
    type: 'object',
    properties: { count: { type: 'integer' }, key: { type: 'string' }, gated: { type: 'boolean' }, bytes: { type: 'integer' } },
    required: ['count', 'key'],
  },
  output_schema: { type: 'object' },
  async handler(input: { count: number; key: string; gated?: boolean; bytes?: number }, ctx) {
    if (input.gated) await gates.wait(`${input.key}:start`);
    const pad = input.bytes ? 'x'.repeat(input.bytes) : undefined;
    for (let i = 1; i <= input.count; i++) await ctx.progress(`event ${i}`, { i, ...(pad ? { pad } : {}) });
    return { count: input.count };
  },
};

/** Fails at once, without retries ("it broke"). */
export const failingDef: TaskDefinition = {
  id: 'test-fail', name: 'fail', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' }, retry_policy: { max_retries: 0 },
  async handler() {
    throw new Error('it broke');
  },
};

/** A step, then waits at gate `<key>` (or until cancelled), then another step; outputs `{key}`. */
export const gatedDef: TaskDefinition = {
  id: 'test-gated', name: 'gated', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] }, output_schema: { type: 'object' },
  async handler(input: { key: string }, ctx) {
    await ctx.step('before', () => 1);
    await Promise.race([gates.wait(input.key), new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))]);
    await ctx.step('after', () => 2);
    return { key: input.key };
  },
};

/** LLM_PARTIAL (live only) between persisted events: waits at `<key>:a`, emits PROGRESS, waits at `<key>:b`, streams. */
export const partialDef: TaskDefinition = {
  id: 'test-partial', name: 'partial', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] },
  output_schema: { type: 'object' },
  async handler(input: { key: string }, ctx) {
    await gates.wait(`${input.key}:a`);
    await ctx.progress('ready');
    await gates.wait(`${input.key}:b`);
    for (const delta of ['Hel', 'lo', '!']) await ctx.emit({ type: 'LLM_PARTIAL', agent_id: 'a1', message: delta, payload: { delta } });
    await ctx.emit({ type: 'LLM_OUTPUT', agent_id: 'a1', message: 'Hello!' });
    return {};
  },
};

export interface WsRun {
  ws: WebSocket;
  messages: any[];
  opened: Promise<void>;
  close: Promise<{ code: number; reason: string; at: number }>;
  waitFor(pred: (m: any) => boolean): Promise<any>;
}

/** A WebSocket stream client: every message kept in order, waits by predicate, its close. */
export function openWs(baseUrl: string, query: string, headers: Record<string, string>): WsRun {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/v1/stream/ws?${query}`, { headers });
  const messages: any[] = [];
  const waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    messages.push(m);
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.pred(m)) waiters.splice(i, 1)[0]!.resolve(m);
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve());
    ws.on('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  opened.catch(() => {});
  return {
    ws, messages, opened,
    close: new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: String(reason), at: Date.now() }));
      ws.on('error', () => {});
    }),
    waitFor: (pred) => {
      const hit = messages.find(pred);
      return hit ? Promise.resolve(hit) : new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  };
}

