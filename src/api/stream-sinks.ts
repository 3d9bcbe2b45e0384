// The two ways a stream reaches a client: SSE frames on a hijacked HTTP response, or one JSON
// message per event on a WebSocket. Sinks only write and report how far behind the client is
// (`congested`, `overflowing`); the stream decides what to do about it (stream.ts).
import type { ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import { sseEventName, type TaskEvent } from '../contract/events.js';

/** The reconnect hint SSE sends when its stream fails (ms): nothing was lost, resume with Last-Event-ID. */
export const STREAM_FAILED_RETRY_MS = 1_000;

/** A WebSocket counts as congested (wait before writing more) above this many queued bytes. */
const WS_HIGH_WATER = 64 * 1024;

export type DrainResult = 'drained' | 'closed' | 'stalled';

export interface StreamSink {
  /** Writes one event; false when the client is gone. */
  event(e: TaskEvent, ephemeral: boolean): boolean;
  /** Above the socket's high-water mark: wait for `drained()` before writing more. */
  readonly congested: boolean;
  /** More than `maxBufferedBytes` written and not yet taken by the client. */
  readonly overflowing: boolean;
  /** Resolves once the client has caught up, went away, or did not read for `timeoutMs`. */
  drained(timeoutMs: number): Promise<DrainResult>;
  ping(): void;
  /** The task ended: the end marker, then close. */
  finish(): void;
  /** Server shutdown: a reconnect hint, then close. */
  shutdown(retryMs: number): void;
  /**
   * The events could not be read (the database went away): SSE sends a reconnect hint
   * (`retry: STREAM_FAILED_RETRY_MS`) and ends; a WebSocket closes with 1011. No end marker.
   */
  abort(): void;
  /**
   * The credential that opened the stream was revoked or expired: SSE sends a last `event: error`
   * frame with the error envelope (code UNAUTHORIZED) and ends; a WebSocket closes with 1008.
   */
  unauthorized(envelope: { error: { code: string; message: string } }): void;
  /** Cuts the connection at once (a client that stopped reading); it resumes with Last-Event-ID. */
  drop(reason: string): void;
  /** Called once, whenever and however the client goes away. */
  onClose(fn: () => void): void;
  /** Why the sink closed, for logs and metrics. */
  readonly closeReason: string | undefined;
}

/** Waits for `subscribe`'s signal, the sink closing, or the timeout. */
function waitDrain(subscribe: (done: (r: DrainResult) => void) => () => void, timeoutMs: number): Promise<DrainResult> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined = undefined;
    const unsubscribe = subscribe((r) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(r);
    });
    timer = setTimeout(() => {
      unsubscribe();
      resolve('stalled');
    }, timeoutMs);
    timer.unref();
  });
}

/**
 * Waits until the client has taken what it was sent; one that is behind and takes nothing for
 * `stallMs` is dropped (closeReason 'stalled'). The rule of every stream — task streams and
 * streamed chat completions — so a slow but steady reader is never let go, however far a burst
 * put it behind, and one that stopped reading is. False once the client is gone (or dropped).
 */
export async function keepUp(sink: StreamSink, stallMs: number): Promise<boolean> {
  const r = await sink.drained(stallMs);
  if (r === 'stalled') sink.drop('stalled');
  return r === 'drained';
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

  get overflowing(): boolean {
    return this.#res.writableLength > this.#maxBytes;
  }

  get closeReason(): string | undefined {
    return this.#reason;
  }

  #write(chunk: string): boolean {
    if (this.#closed) return false;
    if (!this.#res.write(chunk)) this.#needDrain = true;
    return true;
  }

  event(e: TaskEvent, ephemeral: boolean): boolean {
    return this.#write(sseFrame(e, ephemeral));
  }

  /** Whole frames (or a comment) of another SSE protocol: a streamed chat completion's. False when the client is gone. */
  frame(text: string): boolean {
    return this.#write(text);
  }

  /**
   * Ends the response after what was written, with no end marker of its own (the caller wrote its
   * protocol's). `reason`: its closeReason, unless the client went first (`done`, `shutdown`,
   * `unauthorized`, `aborted`: the reasons the other endings give).
   */
  end(reason = 'done'): void {
    this.#end(reason);
  }

  drained(timeoutMs: number): Promise<DrainResult> {
    if (this.#closed) return Promise.resolve('closed');
    if (!this.#needDrain) return Promise.resolve('drained');
    return waitDrain((done) => {
      const onDrain = () => done('drained');
      const onGone = () => done('closed');
      this.#res.once('drain', onDrain);
      this.#res.once('close', onGone);
      return () => {
        this.#res.off('drain', onDrain);
        this.#res.off('close', onGone);
      };
    }, timeoutMs);
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
    // (the events could not be read: the database went away) reconnect soon and resume
    if (this.#write(`: stream failed\nretry: ${STREAM_FAILED_RETRY_MS}\n\n`)) this.#end('aborted');
  }

  unauthorized(envelope: { error: { code: string; message: string } }): void {
    if (this.#write(`event: error\ndata: ${JSON.stringify(envelope)}\n\n`)) this.#end('unauthorized');
  }

  drop(reason: string): void {
    if (this.#closed) return;
    this.#reason = reason;
    this.#res.destroy();
    this.#closeNow();
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
  readonly #drainWaiters = new Set<() => void>();
  readonly #onSent = () => {
    if (this.#drainWaiters.size && !this.congested) for (const fn of [...this.#drainWaiters]) fn();
  };

  constructor(ws: WebSocket, maxBufferedBytes: number) {
    this.#ws = ws;
    this.#maxBytes = maxBufferedBytes;
    ws.once('close', () => this.#closeNow());
    ws.on('error', () => ws.terminate());
    if (ws.readyState !== ws.OPEN) queueMicrotask(() => this.#closeNow());
  }

  get congested(): boolean {
    return this.#ws.bufferedAmount >= WS_HIGH_WATER;
  }

  get overflowing(): boolean {
    return this.#ws.bufferedAmount > this.#maxBytes;
  }

  get closeReason(): string | undefined {
    return this.#reason;
  }

  event(e: TaskEvent): boolean {
    if (this.#closed || this.#ws.readyState !== this.#ws.OPEN) return false;
    this.#ws.send(eventJson(e), this.#onSent);
    return true;
  }

  drained(timeoutMs: number): Promise<DrainResult> {
    if (this.#closed) return Promise.resolve('closed');
    if (!this.congested) return Promise.resolve('drained');
    return waitDrain((done) => {
      const onDrain = () => done(this.#closed ? 'closed' : 'drained');
      this.#drainWaiters.add(onDrain);
      return () => this.#drainWaiters.delete(onDrain);
    }, timeoutMs);
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

  unauthorized(envelope: { error: { code: string; message: string } }): void {
    // 1008 policy violation; a close reason holds at most 123 bytes
    this.#close(1008, `${envelope.error.code}: ${envelope.error.message}`.slice(0, 120), 'unauthorized');
  }

  drop(reason: string): void {
    if (this.#closed) return;
    this.#reason = reason;
    this.#ws.terminate();
    this.#closeNow();
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

  #closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fn of [...this.#drainWaiters]) fn();
    for (const fn of this.#onClose.splice(0)) fn();
  }
}
