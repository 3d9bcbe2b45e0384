// Server-Sent Events over fetch(): EventSource cannot send headers, so it would force the API key
// into the URL (and into proxy logs). Parses the frames of the WHATWG event-stream format (`id:`,
// `event:`, `data:`, `retry:`, comments starting with `:`), and reconnects after a dropped
// connection with Last-Event-ID, so every persisted event arrives once, in order, until `done`.

/** Incremental event-stream parser: feed text chunks, get complete frames back. */
export class SseParser {
  #buffer = '';
  #data = [];
  #event = '';
  #id = null;
  #sawCr = false;
  /** The last `id:` seen (what a reconnect sends as Last-Event-ID). */
  lastEventId = null;

  /**
   * Returns the frames completed by this chunk: `{event, data, id}` for events (`event` defaults
   * to `message`), `{comment}` for comment lines and `{retry}` for a valid `retry:` field.
   */
  push(chunk) {
    const out = [];
    let text = chunk;
    // a CRLF split across chunks: the LF of a CR already taken as a line end is not another one
    if (this.#sawCr && text.startsWith('\n')) text = text.slice(1);
    this.#sawCr = false;
    this.#buffer += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buffer);
      if (!m) break;
      if (m[0] === '\r' && m.index === this.#buffer.length - 1) {
        // could be the first half of a CRLF: take the line, skip a following LF
        this.#sawCr = true;
      }
      const line = this.#buffer.slice(0, m.index);
      this.#buffer = this.#buffer.slice(m.index + m[0].length);
      this.#line(line, out);
    }
    return out;
  }

  #line(line, out) {
    if (line === '') {
      if (this.#data.length || this.#event) {
        out.push({ event: this.#event || 'message', data: this.#data.join('\n'), id: this.#id });
      }
      this.#data = [];
      this.#event = '';
      return;
    }
    if (line.startsWith(':')) {
      out.push({ comment: line.slice(1).trimStart() });
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
    } else if (field === 'retry') {
      if (/^\d+$/.test(value)) out.push({ retry: Number(value) });
    }
  }
}

/** Waits `ms`, or less if the signal aborts. */
function pause(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

/**
 * Follows `url` until the server sends `event: done` or `signal` aborts. Each event's parsed JSON
 * goes to `onEvent(event, frame)`; `onState('connecting'|'live'|'reconnecting'|'done'|'error', detail)`
 * reports the link. A dropped connection (network error or the body ending without `done`) is
 * retried after `retry:` ms (default 1 s, doubling to 10 s), resuming with Last-Event-ID. An HTTP
 * error answer is final: `onState('error', ApiError-like {status, message})`; so is an
 * `event: error` frame carrying an error envelope instead of an event (the stream's credential was revoked or expired:
 * status 401 for UNAUTHORIZED).
 */
export async function followStream(url, opts) {
  const { headers = {}, onEvent, onState = () => {}, signal, fetchImpl = fetch, errorFrom } = opts;
  let lastEventId = opts.lastEventId ?? null;
  let retryMs = 1000;
  let failures = 0;
  while (!signal?.aborted) {
    onState(failures ? 'reconnecting' : 'connecting');
    const parser = new SseParser();
    try {
      const h = { ...headers, Accept: 'text/event-stream' };
      if (lastEventId !== null) h['Last-Event-ID'] = lastEventId;
      const res = await fetchImpl(url, { headers: h, cache: 'no-store', credentials: 'omit', signal });
      if (!res.ok) {
        const err = errorFrom ? await errorFrom(res) : { status: res.status, message: `HTTP ${res.status}` };
        onState('error', err);
        return { ended: false, error: err, lastEventId };
      }
      onState('live');
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const frame of parser.push(decoder.decode(value, { stream: true }))) {
          if (frame.retry !== undefined) retryMs = frame.retry;
          if (frame.comment !== undefined || frame.retry !== undefined) continue;
          if (frame.event === 'done') {
            reader.cancel().catch(() => {});
            onState('done');
            return { ended: true, lastEventId };
          }
          if (frame.id !== null) lastEventId = frame.id;
          let event;
          try {
            event = JSON.parse(frame.data);
          } catch {
            event = { type: frame.event, message: frame.data };
          }
          // the server closing the stream on us (the key was revoked or expired): an error envelope,
          // not an event (a task's ERROR_OCCURRED is also named `error`, but is an event with a seq) —
          // final, like an HTTP error
          if (frame.event === 'error' && event?.seq === undefined && typeof event?.error?.code === 'string') {
            reader.cancel().catch(() => {});
            const err = { status: event.error.code === 'UNAUTHORIZED' ? 401 : 0, code: event.error.code, message: event.error.message };
            onState('error', err);
            return { ended: false, error: err, lastEventId };
          }
          failures = 0;
          onEvent(event, frame);
        }
      }
    } catch (err) {
      if (signal?.aborted || err?.name === 'AbortError') break;
    }
    // the body ended without `done` or the network failed: resume after the last event seen
    failures++;
    onState('reconnecting');
    await pause(Math.min(retryMs * 2 ** Math.max(0, failures - 1), 10_000), signal);
  }
  return { ended: false, lastEventId };
}
