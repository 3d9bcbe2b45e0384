// The dashboard's API client. The key the user pasted lives in sessionStorage only (gone when the
// tab closes; never localStorage, never a URL) and goes out as X-API-Key on every call. Errors
// arrive as the API's envelope {error: {code, message, details}, request_id}; a 401 signs out.

const KEY_ITEM = 'taskgate.apiKey';

export function getKey() {
  try {
    return sessionStorage.getItem(KEY_ITEM);
  } catch {
    return null;
  }
}

export function setKey(key) {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function clearKey() {
  try {
    sessionStorage.removeItem(KEY_ITEM);
  } catch {
    /* storage unavailable: nothing kept */
  }
}

/** An API error: the envelope's code and message, the HTTP status and the request id. */
export class ApiError extends Error {
  constructor(status, code, message, details, requestId) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
  }
}

let unauthorizedHandler = () => {};
/** Called with the error's message whenever the API answers 401 (the key stopped working). */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

/** A 401 seen outside api() (the event stream): signs out like one seen by api(). */
export function unauthorized(message) {
  unauthorizedHandler(message);
}

/** Builds an ApiError from a non-2xx response, reading the envelope when there is one. */
export async function errorFrom(res) {
  let body;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const e = body && typeof body === 'object' ? body.error : undefined;
  const message = e && typeof e.message === 'string' ? e.message : `HTTP ${res.status} ${res.statusText}`.trim();
  return new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, message, e?.details, body?.request_id ?? res.headers.get('x-request-id'));
}

/** A random Idempotency-Key (crypto.randomUUID needs a secure context; getRandomValues does not). */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return 'dash-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Calls the API. `key` overrides the stored key (sign-in checks a key before keeping it).
 * Resolves to the parsed JSON body (undefined for 204); rejects with ApiError.
 */
export async function api(method, path, body, opts = {}) {
  const key = opts.key ?? getKey();
  const headers = { Accept: 'application/json' };
  if (key) headers['X-API-Key'] = key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  Object.assign(headers, opts.headers ?? {});
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit', signal: opts.signal });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK_ERROR', 'The server cannot be reached', undefined, null);
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !opts.key) unauthorizedHandler(err.message);
    throw err;
  }
  if (res.status === 204) return undefined;
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}

/** `/api/v1/…` with query parameters (empty ones dropped). */
export function apiPath(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `/api/v1${path}${s ? `?${s}` : ''}`;
}

/** An AbortError is how a view that was left stops its calls: not worth showing. */
export const isAbort = (err) => err?.name === 'AbortError';
