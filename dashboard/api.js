// The dashboard's session and its way to the API. The key the user pasted lives in sessionStorage
// only (gone when the tab closes; never localStorage, never a URL). Every call goes through the
// SDK's TaskgateClient — ./index.js is the compiled dist/sdk/index.js, served beside these files —
// which sends the key in a header, turns error envelopes into typed errors and reads event streams
// with resume. An AuthenticationError (a 401, or a stream the server closed because its key was
// revoked or expired) signs out.
import { AuthenticationError, ConflictError, PermissionDeniedError, TaskgateClient } from './index.js';

export { AuthenticationError, ConflictError, PermissionDeniedError };

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

let unauthorizedHandler = () => {};
/** Called with the error's message whenever the key stops working (a 401, or a stream closed on a revoked key). */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

/** The dashboard's calls carry the key header and nothing else: no cookies, no HTTP cache. */
function dashboardFetch(input, init) {
  return fetch(input, { ...init, cache: 'no-store', credentials: 'omit' });
}

/**
 * The SDK's client, signing out on an AuthenticationError from any call or stream. Every SDK call
 * goes through `request` (the documented way to any route), streams through `stream`.
 */
class SessionClient extends TaskgateClient {
  async request(method, path, opts) {
    try {
      return await super.request(method, path, opts);
    } catch (err) {
      if (err instanceof AuthenticationError) unauthorizedHandler(err.message);
      throw err;
    }
  }

  async *stream(workflowId, opts) {
    try {
      yield* super.stream(workflowId, opts);
    } catch (err) {
      if (err instanceof AuthenticationError) unauthorizedHandler(err.message);
      throw err;
    }
  }
}

const options = (key, observe) => ({
  baseUrl: location.origin, apiKey: key || undefined,
  fetch: observe ? (input, init) => dashboardFetch(input, init).then((res) => { observe(res); return res; }) : dashboardFetch,
});

/**
 * A client with the stored key, made for each use: once signed out, no object holds the key.
 * `observe(response)`, if given, sees the answer to each try of each call — including those the
 * SDK retries itself (a 429 it waits out), which its own options do not report for a submit.
 */
export function client(observe) {
  return new SessionClient(options(getKey(), observe));
}

/** The wait an answer's Retry-After asks for, in whole seconds (delta-seconds or an HTTP date), or undefined. */
export function retryAfterSeconds(res) {
  const header = res.headers.get('retry-after');
  if (!header) return undefined;
  const s = Number(header);
  if (Number.isFinite(s) && s >= 0) return Math.ceil(s);
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : undefined;
}

/** Checks a key before it is kept (sign-in): its principal, or the API's error — which signs nothing out. */
export function principalOf(key) {
  return new TaskgateClient(options(key)).me();
}

/** Query parameters without the empty ones (an unset filter is not sent, rather than sent empty). */
export function withoutEmpty(params) {
  return Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ''));
}

/** A random Idempotency-Key (crypto.randomUUID needs a secure context; getRandomValues does not). */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return 'dash-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** An AbortError is how a view that was left stops its calls: not worth showing. */
export const isAbort = (err) => err?.name === 'AbortError';
