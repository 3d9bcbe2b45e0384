// Outbound HTTP for tasks (the `http` executor, the agent's http_fetch tool): SSRF-guarded at
// connect time, with a timeout, a response size cap and the task's AbortSignal.
import http from 'node:http';
import https from 'node:https';
import { assertPublicUrl, guardedLookup } from './ssrf.js';
import { PermanentError, RetryAfterError } from './types.js';

export interface HttpCall {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxResponseBytes: number;
  allowList: readonly string[];
  signal: AbortSignal;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'host', 'upgrade', 'keep-alive', 'te', 'trailer', 'expect']);

/** A header the HTTP client sets itself (message framing, connection, proxy): a task may not. */
export const isFramingHeader = (name: string): boolean => FRAMING_HEADERS.has(name.toLowerCase()) || /^proxy-/i.test(name);

/** Parses `retry-after-ms` or `retry-after` (seconds or an HTTP date) into milliseconds; headers as fetch gives them or by lowercase name (an httpCall's,
 * an LLM provider's answer). */
export function retryAfterMs(headers: Headers | Readonly<Record<string, string | undefined>> | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const get = (name: string): string | null => (headers instanceof Headers ? headers.get(name) : (headers[name] ?? null));
  const ms = get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = get('retry-after');
  if (ra === null || ra.trim() === '') return undefined;
  if (Number.isFinite(Number(ra))) return Math.max(0, Number(ra) * 1000);
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export async function httpCall(call: HttpCall): Promise<HttpResult> {
  let url: URL;
  try {
    url = new URL(call.url);
  } catch {
    // the URL is not told: expanded from a definition's write-only config.url it may hold its credentials
    throw new PermanentError('invalid URL: not an absolute URL');
  }
  // a call Node refuses to send is refused for good (it would throw the same on every retry)
  if (call.method !== undefined && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(call.method)) throw new PermanentError(`invalid HTTP method: ${JSON.stringify(call.method)}`);
  for (const [name, value] of Object.entries(call.headers ?? {})) {
    // the client frames the message: `content-length: 0` with a body that is itself a request made
    // the upstream read two (request smuggling); hop-by-hop and proxy headers are not the task's either
    if (isFramingHeader(name)) throw new PermanentError(`header ${JSON.stringify(name)} cannot be set: the HTTP client sets the message framing and connection headers`);
    try {
      http.validateHeaderName(name);
      http.validateHeaderValue(name, value);
    } catch (err) {
      throw new PermanentError(`invalid header ${JSON.stringify(name)}: ${(err as Error).message}`);
    }
  }
  await assertPublicUrl(url, call.allowList);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise<HttpResult>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const fail = (err: unknown) => {
      settle(() => reject(err));
      req.destroy();
    };
    const req = mod.request(
      url,
      { method: call.method ?? 'GET', headers: call.headers, lookup: guardedLookup(call.allowList) as never, signal: call.signal },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > call.maxResponseBytes) return fail(new PermanentError(`response larger than ${call.maxResponseBytes} bytes`));
          chunks.push(chunk);
        });
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
          settle(() => resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') }));
        });
        res.on('error', fail);
        res.on('aborted', () => fail(new RetryAfterError('connection closed before the response ended', 0)));
      },
    );
    // one deadline for the whole exchange (connect, headers, body)
    const timer = setTimeout(() => fail(new RetryAfterError(`request timed out after ${call.timeoutMs} ms`, 0)), call.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => fail(err.code === 'ESSRF' ? new PermanentError(err.message) : err));
    if (call.body !== undefined) req.write(call.body);
    req.end();
  });
}
