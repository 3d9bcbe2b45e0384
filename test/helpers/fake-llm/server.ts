// A scripted HTTP server on 127.0.0.1 for provider fakes: each request takes the next scripted
// reply (or a function's), and everything received is recorded so tests can assert on it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  /** Resolves when the client's connection for this request closes (abort, end or error). */
  closed: Promise<void>;
  /** performance.now() when the request arrived and when the first body byte was sent. */
  receivedAt: number;
  firstByteAt: number | undefined;
}

export type Handler<S> = (req: RecordedRequest, res: ServerResponse, step: S) => Promise<void>;

export class FakeServer<S> {
  readonly requests: RecordedRequest[] = [];
  #queue: S[] = [];
  #fallback: ((req: RecordedRequest, index: number) => S) | undefined;
  #server: Server;
  #waiters: { n: number; resolve: () => void }[] = [];
  #url = '';

  constructor(
    private readonly handle: Handler<S>,
    private readonly route: (method: string, path: string) => boolean,
    private readonly defaultStep: () => S,
  ) {
    this.#server = createServer((req, res) => void this.#onRequest(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.#url = `http://127.0.0.1:${port}`;
    return this;
  }

  get url(): string {
    return this.#url;
  }

  /** Queues replies, one per request, in order. */
  script(...steps: S[]): this {
    this.#queue.push(...steps);
    return this;
  }

  /** Computes replies once the queue is empty. */
  otherwise(fn: (req: RecordedRequest, index: number) => S): this {
    this.#fallback = fn;
    return this;
  }

  reset(): void {
    this.#queue = [];
    this.#fallback = undefined;
    this.requests.length = 0;
  }

  /** Resolves once at least `n` requests have arrived in total. */
  waitForRequests(n: number): Promise<void> {
    if (this.requests.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = performance.now();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep text */
    }
    const closed = new Promise<void>((resolve) => res.on('close', () => resolve()));
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      body,
      closed,
      receivedAt,
      firstByteAt: undefined,
    };
    if (!this.route(rec.method, rec.path.split('?')[0]!)) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'no such route', type: 'invalid_request_error' } }));
      return;
    }
    const index = this.requests.length;
    this.requests.push(rec);
    for (const w of this.#waiters.filter((x) => this.requests.length >= x.n)) w.resolve();
    this.#waiters = this.#waiters.filter((x) => this.requests.length < x.n);
    const step = this.#queue.shift() ?? this.#fallback?.(rec, index) ?? this.defaultStep();
    const origWrite = res.write.bind(res);
    res.write = ((...args: Parameters<typeof res.write>) => {
      rec.firstByteAt ??= performance.now();
      return origWrite(...args);
    }) as typeof res.write;
    try {
      await this.handle(rec, res, step);
    } catch {
      res.destroy();
    }
  }
}

/** Writes one SSE frame; resolves false when the client has gone. */
export function sse(res: ServerResponse, data: string, event?: string): boolean {
  if (res.destroyed) return false;
  res.write(`${event ? `event: ${event}\n` : ''}data: ${data}\n\n`);
  return true;
}

/** A reply in no provider's protocol: status (200 by default), content type and body as given. */
export interface RawStep {
  kind: 'raw';
  status?: number;
  contentType: string;
  body: string;
}

export function sendRaw(res: ServerResponse, step: RawStep): void {
  res.writeHead(step.status ?? 200, { 'content-type': step.contentType });
  res.end(step.body);
}

/** A reply the test writes itself, for a provider misbehaving below its protocol (byte sizes, comments). */
export interface CustomStep {
  kind: 'custom';
  send: (res: ServerResponse, req: RecordedRequest) => Promise<void>;
}

/**
 * Writes `piece` again and again, waiting for the client to read, until `maxBytes` are written or
 * the client has gone; resolves with the bytes written.
 */
export async function pour(res: ServerResponse, piece: string, maxBytes: number): Promise<number> {
  let written = 0;
  while (written < maxBytes && !res.destroyed) {
    written += Buffer.byteLength(piece);
    if (!res.write(piece)) await drainedOrClosed(res);
  }
  return written;
}

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
