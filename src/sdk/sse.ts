// Server-Sent Events over fetch(), with resume. EventSource cannot send headers (it would force the
// credential into the URL, and into proxy logs), so the SDK reads the event-stream format itself:
// `id:`, `event:`, `data:`, `retry:` fields and `:` comments (WHATWG HTML §9.2). A connection that
// drops before the server's `event: done` is opened again with Last-Event-ID, so every persisted
// event arrives once, in order; so is one that goes silent (see DEFAULT_STREAM_IDLE_MS). No
// Node-only API: this runs in browsers as well.
import { eitherSignal } from './transport.js';

/** An event frame. */
export interface EventFrame {
  kind: 'event';
  event: string;
  data: string;
  id: string | null;
}

/** A complete frame: an event (`event` defaults to `message`), a comment, or a `retry:` hint. */
export type SseFrame =
  | EventFrame
  | { kind: 'comment'; text: string }
  | { kind: 'retry'; ms: number };

/** Incremental event-stream parser: feed it text chunks, get the frames they complete. */
export class SseParser {
  #buffer = '';
  #data: string[] = [];
  #event = '';
  #id: string | null = null;
  #sawCr = false;
  /** The last `id:` seen (what a reconnect sends as Last-Event-ID). */
  lastEventId: string | null = null;

  push(chunk: string): SseFrame[] {
    const out: SseFrame[] = [];
    let text = chunk;
    // a CRLF split across chunks: the LF of a CR already taken as a line end is not another one
    if (this.#sawCr && text.startsWith('\n')) text = text.slice(1);
    this.#sawCr = false;
    this.#buffer += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buffer);
      if (!m) break;
      // a CR at the very end could be the first half of a CRLF: a following LF is skipped
      if (m[0] === '\r' && m.index === this.#buffer.length - 1) this.#sawCr = true;
      const line = this.#buffer.slice(0, m.index);
      this.#buffer = this.#buffer.slice(m.index + m[0].length);
      this.#line(line, out);
    }
    return out;
  }

  #line(line: string, out: SseFrame[]): void {
    if (line === '') {
      if (this.#data.length || this.#event) out.push({ kind: 'event', event: this.#event || 'message', data: this.#data.join('\n'), id: this.#id });
      this.#data = [];
      this.#event = '';
      return;
    }
    if (line.startsWith(':')) {
      out.push({ kind: 'comment', text: line.slice(1).trimStart() });
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
    else if (field === 'id') {
      if (!value.includes('\0')) this.lastEventId = this.#id = value;
    } else if (field === 'retry' && /^\d+$/.test(value)) out.push({ kind: 'retry', ms: Number(value) });
  }
}

/** The link's state, as `onState` reports it. */
export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'done';

export interface FollowOptions {
  /** Resume strictly after this event id (the last `seq` seen). */
  lastEventId?: string | null;
  signal?: AbortSignal;
  /** Consecutive failed connections before giving up (default 10; a connection that opens resets the count). */
  maxReconnects?: number;
  /** First wait before reconnecting, ms (default 1,000; the server's `retry:` replaces it); doubles per failure up to 10 s. */
  retryMs?: number;
  /** Longest silence on a connection, ms, before it is taken for dead and opened again (default DEFAULT_STREAM_IDLE_MS; 0 = never). */
  idleTimeoutMs?: number;
  onState?: (state: StreamState) => void;
}

/**
 * How long a connection may stay silent (no byte at all, `: ping` comments included) before it is
 * dropped and opened again after the last id, ms. The server pings every 10 s
 * (TASKGATE_STREAM_PING_MS), so 35 s is three pings missed and a little more. Without it a proxy
 * that stopped forwarding while keeping the socket open held the stream for ever (audit: a `tasks
 * watch` still waiting 10 min after its task had ended).
 */
export const DEFAULT_STREAM_IDLE_MS = 35_000;

/** How one connection attempt went, as the caller's `open` tells it. */
export type OpenResult =
  | { ok: true; body: ReadableStream<Uint8Array> }
  /** Refused for good (401, 404, …): thrown as is. */
  | { ok: false; error: Error; retry?: false }
  /** Refused for now (429, 503): tried again after `afterMs` (or the usual backoff). */
  | { ok: false; error: Error; retry: true; afterMs?: number };

const MAX_BACKOFF_MS = 10_000;

const IDLE = Symbol('idle');

/**
 * One connection's watchdog: `race(p)` gives p's outcome, or IDLE when `ms` pass first — and then
 * aborts `signal` (what the connection was opened with), so the socket is let go. Racing rather
 * than only aborting: an `open` that ignores its signal cannot hold the stream.
 */
class IdleWatch {
  readonly #conn = new AbortController();
  readonly signal: AbortSignal;
  constructor(readonly ms: number, callerSignal: AbortSignal | undefined) {
    this.signal = callerSignal ? eitherSignal(callerSignal, this.#conn.signal) : this.#conn.signal;
  }

  async race<T>(p: Promise<T>): Promise<T | typeof IDLE> {
    if (!(this.ms > 0)) return p;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const idle = new Promise<typeof IDLE>((resolve) => {
      timer = setTimeout(() => {
        // settled before the abort, so the race is won by IDLE, not by p's AbortError
        resolve(IDLE);
        this.#conn.abort(new Error('idle'));
      }, this.ms);
    });
    try {
      return await Promise.race([p, idle]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Lets the connection go (its body reader is cancelled too, by the caller). */
  close(): void {
    this.#conn.abort(new Error('closed'));
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Follows an event stream until the server's `event: done` (then returns) or `signal` aborts (then
 * returns too). Yields each event frame; `open(lastEventId, signal)` makes one connection and says
 * how it went (it throws only when `signal` aborted it). A connection that fails mid-way, a body
 * that ends without `done`, or one silent for `idleTimeoutMs` (on connecting too), is opened again
 * after the last id seen; after `maxReconnects` attempts in a row that failed to open, the last
 * failure is thrown. An opened connection resets the count and the backoff. `closing(frame)` lets the caller turn a frame into a final error.
 */
export async function* followEventStream(
  open: (lastEventId: string | null, signal: AbortSignal | undefined) => Promise<OpenResult>,
  opts: FollowOptions & { closing?: (frame: EventFrame) => Error | undefined },
): AsyncGenerator<EventFrame, void, undefined> {
  const { signal, onState, closing } = opts;
  const maxReconnects = opts.maxReconnects ?? 10;
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_STREAM_IDLE_MS;
  const idleError = () => new Error(`no data for ${idleMs} ms (the server pings every 10 s): the connection was taken for dead`);
  let lastEventId = opts.lastEventId ?? null;
  let retryMs = opts.retryMs ?? 1_000;
  let failures = 0;
  while (!signal?.aborted) {
    // a reconnect was reported when the connection failed (below), once
    if (failures === 0) onState?.('connecting');
    const watch = new IdleWatch(idleMs, signal);
    let lastError: unknown;
    let waitMs: number | undefined;
    try {
      let opened: OpenResult | typeof IDLE;
      try {
        opened = await watch.race(open(lastEventId, watch.signal));
      } catch (err) {
        if (signal?.aborted) return;
        throw err;
      }
      if (opened === IDLE) {
        lastError = idleError();
      } else if (!opened.ok) {
        if (!opened.retry) throw opened.error;
        lastError = opened.error;
        waitMs = opened.afterMs;
      } else {
        // the connection was made: only failed ones count (a proxy that cuts idle streams every
        // 1.5 s, with the task quietly waiting, ended the stream after 11 cuts and backed off to 4 s)
        failures = 0;
        onState?.('live');
        const parser = new SseParser();
        const decoder = new TextDecoder();
        const reader = opened.body.getReader();
        try {
          for (;;) {
            let chunk: Awaited<ReturnType<typeof reader.read>> | typeof IDLE;
            try {
              // any bytes, a `: ping` as much as an event, show the connection alive
              chunk = await watch.race(reader.read());
            } catch (err) {
              if (signal?.aborted) return;
              lastError = err;
              break;
            }
            if (chunk === IDLE) {
              lastError = idleError();
              break;
            }
            if (chunk.done) {
              lastError = new Error('the stream ended before the task did');
              break;
            }
            for (const frame of parser.push(decoder.decode(chunk.value, { stream: true }))) {
              if (frame.kind === 'retry') retryMs = frame.ms;
              if (frame.kind !== 'event') continue;
              if (frame.event === 'done') {
                onState?.('done');
                return;
              }
              const final = closing?.(frame);
              if (final) throw final;
              if (frame.id !== null) lastEventId = frame.id;
              yield frame;
            }
          }
        } finally {
          reader.cancel().catch(() => {});
        }
      }
    } finally {
      watch.close();
    }
    if (++failures > maxReconnects) throw lastError;
    onState?.('reconnecting');
    await pause(waitMs ?? Math.min(retryMs * 2 ** (failures - 1), MAX_BACKOFF_MS), signal);
  }
}
