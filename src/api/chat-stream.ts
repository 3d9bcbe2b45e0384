// The pace of a streamed chat completion (POST /v1/chat/completions, stream: true): the answer goes
// out as fast as the client takes it, merged into fewer frames while it is behind, and a client that
// takes nothing for TASKGATE_STREAM_STALL_MS is let go — the task streams' rule (stream-sinks.ts keepUp).
import { keepUp, type SseSink } from './stream-sinks.js';

/**
 * Most characters of answer in one chunk frame. While the client is behind, the text that came
 * meanwhile goes out in frames this large instead of one per delta: a burst of 20,000 deltas of 6
 * characters was 20,000 frames of ~240 bytes, 40 times the text. And each wait for the client to
 * drain is for at most about this much (the socket's high-water mark is 16 KiB), so a reader that
 * is slow but steady is told from one that stopped.
 */
export const CHAT_FRAME_MAX_CHARS = 16_384;

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

/**
 * Writes the answer text a client is owed. The route takes the task's events as they come,
 * whatever the client's pace (they were measured instead: every frame of a burst was written
 * before the socket could take any, and a client reading at once was judged to have stopped);
 * what the client has not taken yet waits here as the deltas it came in (kept anyway, as the
 * answer's text, by ChatAnswer: the same strings, not copies).
 */
export class ChatStreamWriter {
  readonly #sink: SseSink;
  readonly #chunk: (content: string) => string;
  readonly #stallMs: number;
  /** The text owed and not yet written: #pending[#head…]. */
  #pending: string[] = [];
  #head = 0;
  #state: 'idle' | 'writing' | 'stopped' = 'idle';
  #writing: Promise<void> = Promise.resolve();

  /** `chunk`: the whole SSE frame for a piece of content; `stallMs`: TASKGATE_STREAM_STALL_MS. */
  constructor(sink: SseSink, chunk: (content: string) => string, stallMs: number) {
    this.#sink = sink;
    this.#chunk = chunk;
    this.#stallMs = stallMs;
  }

  /** Queues the next text of the answer. */
  push(text: string): void {
    if (this.#state === 'stopped' || !text) return;
    this.#pending.push(text);
    if (this.#state === 'idle') this.#writing = this.#write();
  }

  /** Resolves once everything queued is written and taken: true, or false when the client went away or was let go. */
  async flushed(): Promise<boolean> {
    await this.#writing;
    return this.#state !== 'stopped' && (await this.#keepUp());
  }

  async #write(): Promise<void> {
    this.#state = 'writing';
    while (this.#head < this.#pending.length) {
      if (!(await this.#keepUp())) return;
      if (!this.#sink.frame(this.#chunk(this.#take()))) {
        this.#state = 'stopped';
        return;
      }
    }
    this.#pending = [];
    this.#head = 0;
    // in the same turn as the check above: a push from now on starts a new write
    this.#state = 'idle';
  }

  /** The next frame's text: the queued text up to CHAT_FRAME_MAX_CHARS, never half a surrogate pair (no character to a JSON decoder). */
  #take(): string {
    let out = '';
    while (this.#head < this.#pending.length) {
      const next = this.#pending[this.#head]!;
      const room = CHAT_FRAME_MAX_CHARS - out.length;
      if (next.length <= room) {
        out += next;
        this.#pending[this.#head++] = '';
        continue;
      }
      const cut = isHighSurrogate(next.charCodeAt(room - 1)) ? room - 1 : room;
      out += next.slice(0, cut);
      this.#pending[this.#head] = next.slice(cut);
      break;
    }
    return out;
  }

  async #keepUp(): Promise<boolean> {
    if (await keepUp(this.#sink, this.#stallMs)) return true;
    this.#pending = [];
    this.#head = 0;
    this.#state = 'stopped';
    return false;
  }
}
