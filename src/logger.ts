// The process logger: JSON lines via pino, with credentials redacted wherever they could appear
// (headers, and the api_key/token query parameters SSE clients use).
import pino, { type Logger } from 'pino';
import type { TaskLogger } from './executors/types.js';

/**
 * Credential query parameters, by decoded lower-case name: `api_key`, `token`, `access_token` (the
 * stream routes authenticate with them), their `api_key[]` / `token[0]`-style variants (refused by
 * authentication, still secrets in the log), and any name that looks like one a client may have
 * put a credential under by mistake (`apikey`, `key`, `auth`, `password`, …): its value is
 * redacted too (a name that merely contains one, such as `monkey`, as well: harmless).
 */
const SECRET_PARAM = /key|token|secret|passw|auth|credential/;
/** Runs of URL characters long enough to hold a credential: each is looked at once (linear time). */
const TOKEN_RUN = /[A-Za-z0-9_.-]{16,}/g;
/**
 * An API key from here on (generated ones, and `sk_` keys an operator chose) — an `sk_` that no
 * letter or digit precedes: every task id (`task_…`) has one inside, and was logged redacted.
 */
const API_KEY_AT = /(?<![A-Za-z0-9])sk_[A-Za-z0-9_-]{16,}/g;
/** A JWT from the start of the string (anchored: tried once per run, never at every `eyJ`). */
const JWT_FROM = /^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\./;

/** A run with any API key or JWT in it redacted. */
function scrubRun(run: string): string {
  run = run.replace(API_KEY_AT, '[REDACTED]');
  const jwt = run.indexOf('eyJ');
  return jwt >= 0 && JWT_FROM.test(run.slice(jwt)) ? `${run.slice(0, jwt)}[REDACTED]` : run;
}

function paramName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}

/**
 * The URL with the values of credential query parameters replaced, matched by their decoded names
 * (`api%5Fkey` is `api_key` to the query parser that authenticates it). Everything after the `?`
 * is the query: a request target has no fragment, and the query parser reads a raw `#` as an
 * ordinary character (`?x=#&api_key=sk_…` authenticates).
 */
export function redactUrl(url: string): string {
  // every request's URL is logged at info: most name no credential, even encoded
  if (!/key|token|secret|pass|auth|cred|%|sk_|eyj/i.test(url)) return url;
  // an API key or a JWT anywhere (say, under an encoded `?` in the path)
  url = url.replace(TOKEN_RUN, scrubRun);
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url.slice(q + 1);
  // `;` separates pairs too for some parsers (and for whoever reads the log): split on both,
  // keeping each separator (split with a capture group puts them at the odd indexes)
  const redacted = query
    .split(/([&;])/)
    .map((pair, i) => {
      if (i % 2 === 1) return pair;
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      return SECRET_PARAM.test(paramName(name)) ? `${name}=[REDACTED]` : pair;
    })
    .join('');
  return url.slice(0, q + 1) + redacted;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'taskgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', 'headers.authorization',
          'headers["x-api-key"]', 'req.headers["x-taskgate-unlimited"]', 'headers["x-taskgate-unlimited"]',
          '*.authorization', '*.apiKey', '*.api_key', '*.password', '*.token',
        ],
        censor: '[REDACTED]',
      },
      serializers: {
        req: (req: { method?: string; url?: string; id?: string; ip?: string }) => ({ method: req.method, url: req.url ? redactUrl(req.url) : undefined, request_id: req.id, remote: req.ip }),
        err: pino.stdSerializers.err,
      },
    },
    destination,
  );
}

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * A child logger that serializes its bindings only when it first logs at an enabled level. Fastify
 * makes one child per request; at the usual `info`/`warn` levels most requests never log, and
 * building the child (bindings through redaction and JSON) was ~5 % of a submit's CPU.
 */
export class LazyChildLogger {
  readonly #parent: Logger;
  readonly #bindings: () => pino.Bindings;
  readonly #options: pino.ChildLoggerOptions | undefined;
  #child: Logger | undefined;

  /** `bindings` is called only when the child is built (the first line logged). */
  constructor(parent: Logger, bindings: () => pino.Bindings, options?: pino.ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    // a child with its own level or serializers is built at once: it cannot defer to the parent
    this.#options = options && Object.keys(options).length ? options : undefined;
    if (this.#options) this.#real();
  }

  #real(): Logger {
    return (this.#child ??= this.#parent.child(this.#bindings(), this.#options));
  }

  #log(level: Level, args: unknown[]): void {
    const target = this.#child ?? (this.#parent.isLevelEnabled(level) ? this.#real() : undefined);
    if (target) (target[level] as (...a: unknown[]) => void)(...args);
  }

  get level(): string {
    return (this.#child ?? this.#parent).level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  isLevelEnabled(level: string): boolean {
    return (this.#child ?? this.#parent).isLevelEnabled(level);
  }

  bindings(): pino.Bindings {
    return this.#real().bindings();
  }

  child(bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger {
    return this.#real().child(bindings, options);
  }

  fatal(...args: unknown[]): void { this.#log('fatal', args); }
  error(...args: unknown[]): void { this.#log('error', args); }
  warn(...args: unknown[]): void { this.#log('warn', args); }
  info(...args: unknown[]): void { this.#log('info', args); }
  debug(...args: unknown[]): void { this.#log('debug', args); }
  trace(...args: unknown[]): void { this.#log('trace', args); }
  silent(): void {}
}

export function taskLogger(log: Logger): TaskLogger {
  return {
    info: (msg, data) => log.info(data ?? {}, msg),
    warn: (msg, data) => log.warn(data ?? {}, msg),
    error: (msg, data) => log.error(data ?? {}, msg),
  };
}
