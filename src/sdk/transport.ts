// The SDK's transport helpers: the base URL and default headers, pauses that an AbortSignal ends,
// Retry-After and its jitter, signals combined, which answers are worth another try, and what a
// failed fetch says. No Node-only API (the SDK runs in browsers too).
import { ValidationError } from './errors.js';
import { SDK_VERSION } from './version.js';

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

type CodedError = Error & { code?: unknown; address?: unknown; port?: unknown; hostname?: unknown; errors?: unknown };

/**
 * What a failed fetch says beneath its bare "fetch failed": the innermost code in the cause chain
 * (ECONNREFUSED, ENOTFOUND, ERR_SSL_…, UND_ERR_SOCKET) with the address or host it concerns, else
 * the innermost message. A browser's fetch has no cause: its own message is all there is.
 */
export function failureText(err: unknown): string {
  let coded: CodedError | undefined;
  let inner: unknown = err;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    inner = e;
    if (typeof (e as CodedError).code === 'string') coded = e as CodedError;
  }
  if (!coded) return inner instanceof Error ? inner.message : String(inner);
  const code = coded.code as string;
  // (an AggregateError from trying each address of a name: the addresses are in its errors)
  const parts = Array.isArray(coded.errors) ? (coded.errors as CodedError[]) : [coded];
  const where = parts.map(whereOf).filter(Boolean).join(', ') || (typeof coded.hostname === 'string' ? coded.hostname : '');
  if (where) return `${code} ${where}`;
  const msg = coded.message;
  return msg && !msg.includes(code) && !msg.includes('\n') && msg.length <= 120 ? `${code} (${msg})` : code;
}

function whereOf(e: CodedError): string {
  if (typeof e.address !== 'string') return '';
  const host = e.address.includes(':') ? `[${e.address}]` : e.address;
  return typeof e.port === 'number' ? `${host}:${e.port}` : host;
}

/**
 * The base URL without trailing slashes, or ValidationError (INVALID_OPTION) at construction: a
 * bare `127.0.0.1:8080` otherwise failed every call with a TypeError, and `localhost:8080` parses
 * as a URL of scheme `localhost:`.
 */
export function checkBaseUrl(raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  const bad = (why: string) => new ValidationError({ status: 0, code: 'INVALID_OPTION', message: `baseUrl ${why}`, details: { path: 'baseUrl' } });
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw bad(`${JSON.stringify(raw)} is not a URL starting with http:// or https:// (e.g. http://127.0.0.1:8080)`);
  }
  // (never echoed: it holds a password)
  if (url.username || url.password) throw bad('must not carry credentials: pass the key as apiKey');
  if (url.search || url.hash) throw bad(`${JSON.stringify(raw)} must not have a query or fragment: paths are appended to it`);
  return raw.replace(/\/+$/, '');
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
