// The `http` executor: one HTTP call per task. A definition with a config owns the call: its
// method, URL template and headers (credentials, often) are fixed, and the input only fills the
// template's {{input.…}} placeholders and gives the body — a submitter cannot send the
// definition's headers elsewhere or change its method. The shipped `http_request` definition has
// no config and takes the whole call from its input.
import { httpCall, retryAfterMs } from './http-client.js';
import { PermanentError, RetryAfterError, type Executor, type TaskDefinition } from './types.js';


/** `text` with IPv4 and IPv6 addresses (and a port after one) replaced: a socket error names the address it tried. */
export function hideAddresses(text: string): string {
  return text
    .replace(/(?<![\w:])\[?(?:[0-9a-f]*:){2,}[0-9a-f.]*(?:%[\w.]+)?\]?(?::\d{1,5})?/gi, "the definition's address")
    .replace(/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b/g, "the definition's address");
}

export interface HttpExecutorOptions {
  timeoutMs: number;
  maxResponseBytes: number;
  allowList: readonly string[];
}

interface HttpInput {
  url?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  timeout_ms?: number;
}

/** Replaces `{{input.path}}` in a template with URL-encoded values from the input. */
export function expandTemplate(template: string, input: unknown): string {
  return template.replace(/\{\{\s*input\.([A-Za-z0-9_.]+)\s*\}\}/g, (_, path: string) => {
    let v: unknown = input;
    for (const part of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[part] : undefined;
    const text = v === undefined || v === null ? '' : String(v);
    // encodeURIComponent leaves dots alone: a whole `..` segment would climb out of the template's path
    if (text === '.' || text === '..') throw new PermanentError(`input.${path} cannot be "${text}" (a path segment of its own)`);
    return encodeURIComponent(text);
  });
}

export function createHttpExecutor(opts: HttpExecutorOptions): Executor {
  return {
    kind: 'http',
    async run(task, ctx) {
      const def = task.definition;
      const input = (task.input ?? {}) as HttpInput;
      const config = def?.config as { method?: string; url?: string; headers?: Record<string, string> } | undefined;
      // a configured definition's call is its own; only a definition without config (http_request) reads it from input
      const call = config ? { url: config.url ? expandTemplate(config.url, input) : undefined, method: config.method, headers: config.headers } : input;
      const url = call.url;
      if (!url) throw new PermanentError(config ? 'no URL: the definition has no config.url' : 'no URL: the input has no url');
      // config is write-only (its URL may carry credentials) and a submitter can break the URL
      // through a placeholder (`{"region": "eu%"}` in the host): the error must not show it
      if (config && !URL.canParse(url)) throw new PermanentError("the definition's url is invalid after its placeholders were filled: not an absolute URL");
      const method = (call.method ?? 'GET').toUpperCase();
      // names match in any case: a default must not go out beside the caller's `Content-Type` or
      // `User-Agent` (two of a name were sent, the default last, and it won)
      const headers: Record<string, string> = { ...call.headers };
      const named = (name: string): string[] => Object.keys(headers).filter((k) => k.toLowerCase() === name);
      if (!named('user-agent').length) headers['user-agent'] = 'taskgate';
      if (ctx.traceparent) {
        for (const k of named('traceparent')) delete headers[k];
        headers.traceparent = ctx.traceparent;
      }
      let body: string | undefined;
      if (input.body !== undefined && method !== 'GET' && method !== 'HEAD') {
        body = typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
        if (typeof input.body !== 'string' && !named('content-type').length) headers['content-type'] = 'application/json';
      }
      // a configured definition's input only fills placeholders and gives the body: its timeout_ms
      // went unchecked into the timer ("abc" → NaN, fired at once after sending, then retried)
      const timeoutMs = config ? opts.timeoutMs : Math.min(input.timeout_ms ?? opts.timeoutMs, opts.timeoutMs);
      // only a definitive answer is stored as the durable step: 429/5xx and network errors retry
      const res = await ctx.step('http', async () => {
        const r = await httpCall({
          url, method, headers, body,
          timeoutMs,
          maxResponseBytes: opts.maxResponseBytes, allowList: opts.allowList, signal: ctx.signal,
        }).catch((err: unknown) => {
          // nor its host ("refusing to call …", "cannot resolve host …", a socket error's name),
          // nor the address it resolved to ("connect ECONNREFUSED 10.1.2.3:8443")
          if (config && err instanceof Error) err.message = hideAddresses(err.message.split(new URL(url).hostname).join("the definition's host"));
          throw err;
        });
        // Retry-After in seconds or as an HTTP date (an upstream's maintenance window)
        if (r.status === 429 || r.status >= 500) throw new RetryAfterError(`upstream answered ${r.status}`, retryAfterMs(r.headers) ?? 0);
        return r;
      });
      // a JSON answer is its value (null included); one that does not parse stays text
      let answer: unknown = res.body;
      if ((res.headers['content-type'] ?? '').includes('json')) {
        try {
          answer = JSON.parse(res.body);
        } catch {
          answer = res.body;
        }
      }
      const output = { status: res.status, headers: res.headers, body: answer };
      if (res.status >= 400) throw new PermanentError(`upstream answered ${res.status}`);
      return { output };
    },
  };
}

export const httpRequest: TaskDefinition = {
  id: 'http_request',
  name: 'HTTP request',
  description: 'Calls an HTTP endpoint. Private, loopback and link-local targets are refused unless allow-listed.',
  version: '1.0.0',
  kind: 'http',
  type: 'INTEGRATION',
  input_schema: {
    type: 'object',
    properties: {
      url: { type: 'string', format: 'uri', maxLength: 4096 },
      method: { type: 'string', enum: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'] },
      headers: { type: 'object', additionalProperties: { type: 'string' } },
      body: {},
      timeout_ms: { type: 'integer', minimum: 1, maximum: 300_000 },
    },
    required: ['url'],
    additionalProperties: false,
  },
  output_schema: {
    type: 'object',
    properties: { status: { type: 'integer' }, headers: { type: 'object' }, body: {} },
    required: ['status', 'headers', 'body'],
  },
  retry_policy: { max_retries: 2, retry_interval_ms: 1_000, backoff_multiplier: 2 },
};
