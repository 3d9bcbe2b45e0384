// The fetch both provider SDKs are given: it bounds, byte by byte, what they read from a provider,
// and reports every chunk received to the call's stall detector. The SDKs read error bodies, JSON
// answers and lines of an event stream whole before our own checks can see them (a 400 MB error
// body ran the process out of memory).
import { MAX_RESPONSE_CHARS, ProviderError } from './types.js';

/**
 * Most bytes of an error response (status 400 or more) read: 64 KiB. Only its first
 * MAX_PROVIDER_MESSAGE_CHARS (500) characters reach the task's error, and real providers' error
 * bodies are a few hundred bytes; the rest is not read, and the connection is closed.
 */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * Most bytes of a JSON (non-event-stream) answer: 25 MiB. JSON takes at most 6 bytes per answer
 * character (a \u escape), so an answer within MAX_RESPONSE_CHARS always fits and the character
 * limit still decides; the 1 MiB on top is room for ids, usage and tool names.
 */
export const MAX_JSON_BODY_BYTES = 6 * MAX_RESPONSE_CHARS + 1024 * 1024;

/**
 * Longest line of an event stream, in bytes: 1 MiB, a quarter of MAX_RESPONSE_CHARS. The SDKs'
 * line decoders copy and rescan their whole buffer for every chunk until a line ends, so one line
 * costs time quadratic in its length: measured on Node 20, a 1 MiB line 60–220 ms (64 KiB or
 * 16 KiB chunks), a 4 MiB one 0.5–3.3 s, a 16 MiB one 8–62 s. Real providers send one event per
 * few tokens, lines of a few hundred bytes.
 */
export const MAX_SSE_LINE_BYTES = MAX_RESPONSE_CHARS / 4;

const LF = 0x0a;
const CR = 0x0d;

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * A fetch whose responses' bodies are limited for `provider` (named in the errors) and whose
 * every received chunk calls `onActivity`: an SSE comment such as OpenRouter's `: PROCESSING`,
 * which no SDK hands on as an event, is the provider being alive too.
 */
export function boundedFetch(provider: string, onActivity?: () => void): Fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    onActivity?.();
    if (!response.body) return response;
    const limit = response.status >= 400 ? truncateAt(MAX_ERROR_BODY_BYTES) : isEventStream(response) ? capLines(provider) : capTotal(provider);
    const body = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          onActivity?.();
          limit(chunk, controller);
        },
      }),
    );
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

type Limit = (chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>) => void;

function isEventStream(response: Response): boolean {
  return (response.headers.get('content-type') ?? '').includes('text/event-stream');
}

/**
 * Passes the first `maxBytes` bytes and then ends the body normally. Terminating errors the
 * writable side, so the pipe cancels the provider's body and its connection is closed.
 */
function truncateAt(maxBytes: number): Limit {
  let seen = 0;
  return (chunk, controller) => {
    const room = maxBytes - seen;
    seen += chunk.length;
    if (chunk.length < room) return controller.enqueue(chunk);
    if (room > 0) controller.enqueue(chunk.subarray(0, room));
    controller.terminate();
  };
}

/** Fails the body, permanently, once it has passed MAX_JSON_BODY_BYTES. */
function capTotal(provider: string): Limit {
  let seen = 0;
  return (chunk, controller) => {
    seen += chunk.length;
    if (seen > MAX_JSON_BODY_BYTES) return controller.error(tooLarge(provider, `response body exceeds the limit of ${MAX_JSON_BODY_BYTES} bytes`));
    controller.enqueue(chunk);
  };
}

/** Fails the body, permanently, once one line (bytes since the last \n or \r) passes MAX_SSE_LINE_BYTES. */
function capLines(provider: string): Limit {
  let line = 0;
  return (chunk, controller) => {
    line = lineAfter(chunk, line);
    if (line > MAX_SSE_LINE_BYTES) return controller.error(tooLarge(provider, `an event-stream line exceeds the limit of ${MAX_SSE_LINE_BYTES} bytes`));
    controller.enqueue(chunk);
  };
}

/**
 * The length of the line still open after `chunk`, given `open` bytes before it, or
 * MAX_SSE_LINE_BYTES + 1 when a line that ends inside the chunk was already too long. Native
 * indexOf on both line ends keeps this linear in the chunk.
 */
function lineAfter(chunk: Uint8Array, open: number): number {
  let start = 0;
  let lf = chunk.indexOf(LF);
  let cr = chunk.indexOf(CR);
  for (;;) {
    const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
    if (end < 0) return open + chunk.length - start;
    if (open + end - start > MAX_SSE_LINE_BYTES) return MAX_SSE_LINE_BYTES + 1;
    open = 0;
    start = end + 1;
    if (lf === end) lf = chunk.indexOf(LF, start);
    if (cr === end) cr = chunk.indexOf(CR, start);
  }
}

/** Not retried: the same provider would send the same oversized answer again, and be paid again. */
function tooLarge(provider: string, what: string): ProviderError {
  return new ProviderError(`${provider}: ${what}`, false, undefined, undefined);
}
