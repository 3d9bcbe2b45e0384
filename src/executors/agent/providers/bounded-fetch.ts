// The fetch both provider SDKs are given: it bounds, byte by byte, what they read from a provider.
// The SDKs read an error body whole before our own checks can see it (a 400 MB one ran the
// process out of memory).

/**
 * Most bytes of an error response (status 400 or more) read: 64 KiB. Only its first
 * MAX_PROVIDER_MESSAGE_CHARS (500) characters reach the task's error, and real providers' error
 * bodies are under 2 KiB; the rest is not read, and the connection is closed.
 */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** A fetch whose error responses are read up to MAX_ERROR_BODY_BYTES. */
export function boundedFetch(inner: Fetch = (input, init) => fetch(input, init)): Fetch {
  return async (input, init) => {
    const response = await inner(input, init);
    if (!response.body || response.status < 400) return response;
    const limit = truncateAt(MAX_ERROR_BODY_BYTES);
    const body = response.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({ transform: limit }));
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

type Limit = (chunk: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>) => void;

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
