// The two ways a stream reaches a client: SSE frames on a hijacked HTTP response, or one JSON
// message per event on a WebSocket. Both keep a bounded buffer: a write that finds more than
// `maxBufferedBytes` still queued for the client drops the client instead of queueing more.
import type { ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import { sseEventName, type TaskEvent } from '../contract/events.js';

/** During replay, a WebSocket waits for the socket once this much is queued (bytes). */
const WS_REPLAY_HIGH_WATER = 64 * 1024;

export interface StreamSink {
  /** Writes one event; false when the client is gone or was just dropped for overflowing. */
  event(e: TaskEvent, ephemeral: boolean): boolean;
  /** True while the client is behind (replay waits for `drained()` before reading more). */
  readonly congested: boolean;
  /** Resolves true once the client has caught up, false if it went away. */
  drained(): Promise<boolean>;
  ping(): void;
  /** The task ended: the end marker, then close. */
  finish(): void;
  /** Server shutdown: a reconnect hint, then close. */
  shutdown(retryMs: number): void;
  /** Closes without a marker (read errors). */
  abort(): void;
  /** Called once, whenever and however the client goes away. */
  onClose(fn: () => void): void;
  /** Why the sink closed, for logs: set to 'overflow' when the client was dropped. */
  readonly closeReason: string | undefined;
}

/** The event JSON clients receive; the reference names carry the text as `delta`/`response`. */
export function eventData(e: TaskEvent): Record<string, unknown> {
  if (e.type === 'LLM_PARTIAL') return { ...e, delta: e.message ?? '' };
  if (e.type === 'LLM_OUTPUT') return { ...e, response: e.message ?? '' };
  return e as unknown as Record<string, unknown>;
}

// One serialisation per event object: the hub hands the same object to every subscriber.
const sseFrames = new WeakMap<TaskEvent, string>();
const jsonTexts = new WeakMap<TaskEvent, string>();

function eventJson(e: TaskEvent): string {
  let s = jsonTexts.get(e);
  if (s === undefined) {
    s = JSON.stringify(eventData(e));
    jsonTexts.set(e, s);
  }
  return s;
}

/** `id:` (persisted events only), `event:`, one `data:` line, blank line. */
export function sseFrame(e: TaskEvent, ephemeral: boolean): string {
  let f = sseFrames.get(e);
  if (f === undefined) {
    const name = sseEventName(e.type).replace(/[\r\n]/g, ' ');
    f = `${ephemeral ? '' : `id: ${e.seq}\n`}event: ${name}\ndata: ${eventJson(e)}\n\n`;
    sseFrames.set(e, f);
  }
  return f;
}

export const SSE_DONE_FRAME = 'event: done\ndata: [DONE]\n\n';

export class SseSink implements StreamSink {
  readonly #res: ServerResponse;
  readonly #maxBytes: number;
  #needDrain = false;
  #closed = false;
  #reason: string | undefined;
  readonly #onClose: (() => void)[] = [];

  constructor(res: ServerResponse, maxBufferedBytes: number) {
    this.#res = res;
    this.#maxBytes = maxBufferedBytes;
    res.on('drain', () => (this.#needDrain = false));
    res.once('close', () => this.#closeNow());
    if (res.destroyed) queueMicrotask(() => this.#closeNow());
  }

  get congested(): boolean {
    return this.#needDrain;
  }

  get closeReason(): string | undefined {
    return this.#reason;
  }

  #write(chunk: string): boolean {
    if (this.#closed) return false;
    if (this.#res.writableLength > this.#maxBytes) {
      this.#reason = 'overflow';
      this.#res.destroy();
      this.#closeNow();
      return false;
    }
    if (!this.#res.write(chunk)) this.#needDrain = true;
    return true;
  }

  event(e: TaskEvent, ephemeral: boolean): boolean {
    return this.#write(sseFrame(e, ephemeral));
  }

  drained(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (!this.#needDrain) return Promise.resolve(true);
    return new Promise((resolve) => {
      const settle = (ok: boolean) => {
        this.#res.off('drain', onDrain);
        this.#res.off('close', onGone);
        resolve(ok);
      };
      const onDrain = () => settle(true);
      const onGone = () => settle(false);
      this.#res.once('drain', onDrain);
      this.#res.once('close', onGone);
    });
  }

  /** The opening comment. */
  connected(): void {
    this.#write(': connected\n\n');
  }

  ping(): void {
    this.#write(': ping\n\n');
  }

  finish(): void {
    if (this.#write(SSE_DONE_FRAME)) this.#end('done');
  }

  shutdown(retryMs: number): void {
    if (this.#write(`: server shutting down\nretry: ${retryMs}\n\n`)) this.#end('shutdown');
  }

  abort(): void {
    this.#end('aborted');
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#reason ??= reason;
    this.#res.end();
    // a client that stopped reading must not hold the server open
    setTimeout(() => {
      if (!this.#res.writableFinished) this.#res.destroy();
    }, 2_000).unref();
    this.#closeNow();
  }

  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#onClose.push(fn);
  }

  #closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fn of this.#onClose.splice(0)) fn();
  }
}

export class WsSink implements StreamSink {
  readonly #ws: WebSocket;
  readonly #maxBytes: number;
  #closed = false;
  #reason: string | undefined;
  readonly #onClose: (() => void)[] = [];
  #waiters: ((ok: boolean) => void)[] = [];
  readonly #onSent = () => {
    if (this.#waiters.length && this.#ws.bufferedAmount < WS_REPLAY_HIGH_WATER) this.#wake(true);
  };

  constructor(ws: WebSocket, maxBufferedBytes: number) {
    this.#ws = ws;
    this.#maxBytes = maxBufferedBytes;
    ws.once('close', () => this.#closeNow());
    ws.on('error', () => ws.terminate());
    if (ws.readyState !== ws.OPEN) queueMicrotask(() => this.#closeNow());
  }

  get congested(): boolean {
    return this.#ws.bufferedAmount >= WS_REPLAY_HIGH_WATER;
  }

  get closeReason(): string | undefined {
    return this.#reason;
  }

  event(e: TaskEvent): boolean {
    if (this.#closed || this.#ws.readyState !== this.#ws.OPEN) return false;
    if (this.#ws.bufferedAmount > this.#maxBytes) {
      this.#reason = 'overflow';
      this.#ws.terminate();
      this.#closeNow();
      return false;
    }
    this.#ws.send(eventJson(e), this.#onSent);
    return true;
  }

  drained(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (!this.congested) return Promise.resolve(true);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  ping(): void {
    if (!this.#closed && this.#ws.readyState === this.#ws.OPEN) this.#ws.ping();
  }

  finish(): void {
    this.#close(1000, 'stream ended', 'done');
  }

  shutdown(): void {
    this.#close(1012, 'server restarting', 'shutdown');
  }

  abort(): void {
    this.#close(1011, 'stream failed', 'aborted');
  }

  #close(code: number, text: string, reason: string): void {
    if (this.#closed) return;
    this.#reason ??= reason;
    this.#ws.close(code, text);
    setTimeout(() => this.#ws.terminate(), 2_000).unref();
    this.#closeNow();
  }

  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#onClose.push(fn);
  }

  #wake(ok: boolean): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const fn of w) fn(ok);
  }

  #closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake(false);
    for (const fn of this.#onClose.splice(0)) fn();
  }
}
