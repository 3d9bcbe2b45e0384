// `http_fetch`: GET (or POST) a public URL through the same SSRF-guarded client as the http
// executor (DNS checked at connect time, private/loopback/link-local refused unless allow-listed).
import { httpCall } from '../../http-client.js';
import { clip, ToolError, type AgentTool } from './types.js';

export interface HttpFetchOptions {
  /** Hosts, IPs or CIDRs allowed even if private (TASKGATE_HTTP_ALLOW_LIST). */
  allowList: readonly string[];
  timeoutMs: number;
  maxResponseBytes: number;
  /** Characters of body text given back to the model. Default 20,000 (~5k tokens). */
  maxChars?: number;
}

/** HTML → readable text: drops scripts/styles/tags, collapses whitespace. Linear in the input. */
export function htmlToText(html: string): string {
  return dropTags(dropRawText(html))
    .replace(/&nbsp;/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * What `/<(script|style|noscript)[^>]*>[\s\S]*?<\/\1>/gi` → ' ' does, in one pass. The regex
 * rescans to the end from every opening that has no `>` or no closing tag after it: 40 KB of
 * `<script` took 1.2 s, 5 MiB (the response cap) hours on the event loop. Here the next `>` and
 * each name's next closing tag are searched for once and reused until the scan passes them.
 */
function dropRawText(html: string): string {
  const open = /<(script|style|noscript)/gi;
  const nextClose = new Map<string, number>(); // name → index of its next `</name>` (-1: none left)
  let nextGt = -1;
  let out = '';
  let kept = 0;
  for (let m = open.exec(html); m !== null; m = open.exec(html)) {
    if (nextGt < m.index) nextGt = html.indexOf('>', m.index);
    if (nextGt === -1) break; // no opening from here on can end
    const name = m[1]!.toLowerCase();
    let close = nextClose.get(name);
    if (close === undefined || (close !== -1 && close <= nextGt)) {
      const closing = new RegExp(`</${name}>`, 'gi');
      closing.lastIndex = nextGt + 1;
      close = closing.exec(html)?.index ?? -1;
      nextClose.set(name, close);
    }
    if (close === -1) continue; // not closed: left to dropTags, as the regex did
    out += `${html.slice(kept, m.index)} `;
    kept = close + name.length + 3;
    open.lastIndex = kept;
  }
  return out + html.slice(kept);
}

/**
 * `<[^>]+>` → ' '. Run on the whole text the regex rescans to the end from every `<` that no `>`
 * follows (quadratic on `'<'.repeat(n)`); before the last `>` every attempt stops at the next `>`
 * and after it no tag can close, so the tail is kept as it is.
 */
function dropTags(text: string): string {
  const end = text.lastIndexOf('>') + 1;
  return text.slice(0, end).replace(/<[^>]+>/g, ' ') + text.slice(end);
}

export function httpFetchTool(opts: HttpFetchOptions): AgentTool {
  return {
    spec: {
      name: 'http_fetch',
      description: 'Fetch a public http(s) URL and return its status and body text (HTML is converted to plain text). Private and internal addresses are refused.',
      parameters: {
        type: 'object',
        properties: {
          url: { type: 'string', description: 'absolute http or https URL' },
          method: { type: 'string', enum: ['GET', 'POST'], description: 'default GET' },
          body: { type: 'string', description: 'request body for POST (sent as application/json if it parses as JSON)' },
        },
        required: ['url'],
      },
    },
    async run(args, ctx) {
      if (typeof args.url !== 'string') throw new ToolError('url (a string) is required');
      const method = args.method === 'POST' ? 'POST' : 'GET';
      const body = method === 'POST' && typeof args.body === 'string' ? args.body : undefined;
      let res;
      try {
        res = await httpCall({
          url: args.url,
          method,
          body,
          headers: { 'user-agent': 'taskgate-agent', accept: 'text/html,application/json,text/plain;q=0.9,*/*;q=0.5', ...(body ? { 'content-type': 'application/json' } : {}), ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}) },
          timeoutMs: opts.timeoutMs,
          maxResponseBytes: opts.maxResponseBytes,
          allowList: opts.allowList,
          signal: ctx.signal,
        });
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        throw new ToolError(`fetch failed: ${(err as Error).message}`);
      }
      const type = res.headers['content-type'] ?? '';
      const text = type.includes('html') ? htmlToText(res.body) : res.body;
      return JSON.stringify({ status: res.status, content_type: type, body: clip(text, opts.maxChars ?? 20_000) });
    },
  };
}
