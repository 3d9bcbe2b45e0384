// The SDK's transport rules, apart from the client that applies them: which answers are retried
// and after how long (Retry-After, with jitter), cancellable sleeps, the base URL check, the
// User-Agent. Runs in Node ≥ 20 and browsers (the dashboard serves this file: DASHBOARD_SDK_FILES).
import { NetworkError, RequestTimeoutError, TaskgateError, ValidationError } from './errors.js';

/**
 * The SDK's version, sent as `User-Agent: taskgate-sdk/<version>`: a constant (the SDK runs in
 * browsers, with no package.json to read); test/sdk keeps it equal to package.json's.
 */
export const SDK_VERSION = '0.1.0';

/** Answers that mean "not now": the request can be tried again (429 for any request, the rest when it is safe to repeat). */
export const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
/** A Retry-After longer than this is the caller's to wait out, not a retry's. */
export const MAX_RETRY_WAIT_MS = 30_000;

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** setTimeout's longest delay, ms: a longer one fires at once (Node warns; AbortSignal.timeout throws a RangeError above 2^32 − 1). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A duration option (ms) checked once: a number from `min` to `max` (default MAX_TIMER_MS), else
 * ValidationError (INVALID_OPTION) naming it. Undefined passes (the default applies).
 */
export function checkMs(name: string, value: number | undefined, min = 0, max = MAX_TIMER_MS): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && value >= min && value <= max) return value;
  throw new ValidationError({
    status: 0, code: 'INVALID_OPTION', details: { path: name },
    message: `${name} must be a number of ms from ${min}${max === Infinity ? ' up' : ` to ${max}`}, not ${String(value)}`,
  });
}

/** An integer option from `min` to `max` (a count: retries), else ValidationError (INVALID_OPTION). */
export function checkCount(name: string, value: number | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (Number.isInteger(value) && value >= min && value <= max) return value;
  throw new ValidationError({
    status: 0, code: 'INVALID_OPTION', details: { path: name },
    message: `${name} must be a whole number from ${min} to ${max}, not ${String(value)}`,
  });
}

/** Retry-After as ms (delta-seconds or an HTTP date), if sent and sane. */
export function retryAfterMs(res: Response): number | undefined {
  const h = res.headers.get('retry-after');
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const at = Date.parse(h);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/**
 * A Retry-After wait plus up to 20 % more (at least up to 250 ms), never less: 20 clients refused by
 * one burst limit otherwise all came back in the same millisecond, and were refused together again.
 */
export function jittered(retryAfterMs: number): number {
  return retryAfterMs + Math.random() * Math.max(250, retryAfterMs * 0.2);
}

/** Aborts when either does (AbortSignal.any where the runtime has it: Node 20.3, browsers of 2023-24). */
export function eitherSignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  if (typeof AbortSignal.any === 'function') return AbortSignal.any([a, b]);
  const c = new AbortController();
  for (const s of [a, b]) {
    if (s.aborted) {
      c.abort(s.reason);
      break;
    }
    s.addEventListener('abort', () => c.abort(s.reason), { once: true });
  }
  return c.signal;
}

/**
 * The base URL without trailing slashes, or ValidationError (INVALID_OPTION) at construction: a
 * bare `127.0.0.1:8080` otherwise failed every call with a TypeError, and `localhost:8080` parses
 * as a URL of scheme `localhost:`.
 */
export function checkBaseUrl(raw: string): string {
  const problem = baseUrlProblem(raw);
  if (problem) throw new ValidationError({ status: 0, code: 'INVALID_OPTION', message: `baseUrl ${problem}`, details: { path: 'baseUrl' } });
  return raw.replace(/\/+$/, '');
}

/**
 * The API key as given, or ValidationError (INVALID_OPTION) at construction when no header can
 * carry it: every call would otherwise fail as a NETWORK_ERROR ("invalid header value") that
 * blames the server. Empty and undefined both mean no key.
 */
export function checkApiKey(key: string | undefined): string | undefined {
  const problem = key ? apiKeyProblem(key) : undefined;
  if (problem) throw new ValidationError({ status: 0, code: 'INVALID_OPTION', message: `apiKey is not an API key or token: ${problem}`, details: { path: 'apiKey' } });
  return key || undefined;
}

/**
 * Why `key` cannot be sent as a credential header (a line break, a space, a character outside
 * printable ASCII: fetch refuses the request with "invalid header value"), or undefined. The CLI
 * says so of its key's source, beside baseUrlProblem's --url check.
 */
export function apiKeyProblem(key: string): string | undefined {
  return /^[\x21-\x7e]+$/.test(key) ? undefined : 'it holds spaces, line breaks or characters outside printable ASCII';
}

/**
 * Why `raw` cannot be a server's base URL, starting with the URL as given (a password in it shown
 * as `…`), or undefined. The CLI says the same of --url / TASKGATE_URL.
 */
export function baseUrlProblem(raw: string): string | undefined {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  const shown = raw.replace(/^([^/]*\/\/)?[^/@]*@/, '$1…@') || '(empty)';
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    return `${shown}: the server's URL needs http:// or https://, e.g. ${raw.includes('://') ? 'http://127.0.0.1:8080' : `http://${shown}`}`;
  }
  if (url.username || url.password) return `${shown}: must not carry credentials (pass the API key on its own)`;
  if (url.search || url.hash) return `${shown}: must not have a query or fragment (paths are appended to it)`;
  return undefined;
}

/**
 * `User-Agent: taskgate-sdk/<version>` outside browsers (the server's logs then tell SDK traffic
 * apart), unless `headers` sets one. Not in a browser: the header would need a CORS allowance the
 * server does not give (its preflight would fail every call), and Chrome drops it anyway.
 */
export function userAgent(headers: Record<string, string> | undefined): Record<string, string> {
  const runtime = (globalThis as { process?: { versions?: { node?: unknown } } }).process;
  if (typeof runtime?.versions?.node !== 'string') return {};
  if (Object.keys(headers ?? {}).some((k) => k.toLowerCase() === 'user-agent')) return {};
  return { 'user-agent': `taskgate-sdk/${SDK_VERSION}` };
}

/** How a credential is sent: a JWT (it has dots) as `Authorization: Bearer`, an API key as X-API-Key. */
export function credentialHeaders(apiKey: string | undefined): Record<string, string> {
  if (!apiKey) return {};
  return apiKey.includes('.') ? { authorization: `Bearer ${apiKey}` } : { 'x-api-key': apiKey };
}

/** A failure that says nothing about the task: no answer, or the server (or its proxy) asking to come back. */
export function isTransient(err: unknown): err is TaskgateError {
  if (err instanceof NetworkError || err instanceof RequestTimeoutError) return true;
  return err instanceof TaskgateError && RETRYABLE_STATUS.has(err.status);
}
