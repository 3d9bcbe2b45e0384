// Provider-neutral chat types: the agent speaks these, and each adapter translates them to its
// wire protocol (OpenAI Chat Completions, Anthropic Messages).
import type { ProviderType } from '../../../config/llm.js';
import { retryAfterMs } from '../../http-client.js';

export interface ToolCall {
  id: string;
  name: string;
  /** The model's raw JSON argument text (may be invalid JSON; tools parse it). */
  arguments: string;
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls?: ToolCall[] }
  | { role: 'tool'; toolCallId: string; name: string; content: string };

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export interface LlmRequest {
  model: string;
  messages: ChatMessage[];
  tools?: ToolSpec[];
  /** Output token cap (sent to Anthropic, which requires one). */
  maxOutputTokens: number;
}

/** Token counts as the provider reported them; undefined: it reported none (the runtime counts an estimate). */
export interface LlmUsage {
  input_tokens?: number;
  output_tokens?: number;
}

export interface LlmResponse {
  text: string;
  toolCalls: ToolCall[];
  usage: LlmUsage;
  finishReason: string;
  /** The model the provider says answered (falls back to the requested one). */
  model: string;
}

export interface CallHooks {
  signal: AbortSignal;
  /** W3C traceparent of the request that submitted the task: sent with the provider call. */
  traceparent?: string;
  /** Each text delta as it arrives. */
  onDelta?: (text: string) => void;
  /** Called on every chunk of bytes received from the provider, SSE comments included (feeds the stall detector). */
  onActivity?: () => void;
}

export interface LlmProvider {
  readonly name: string;
  readonly type: ProviderType;
  complete(req: LlmRequest, hooks: CallHooks): Promise<LlmResponse>;
}

/** A provider call failed; `retryable` says whether trying again (or elsewhere) may help. */
export class ProviderError extends Error {
  override name = 'ProviderError';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status: number | undefined,
    /** From Retry-After / retry-after-ms, when the provider sent one. */
    readonly retryAfterMs: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Statuses worth retrying: timeouts, conflicts, rate limits, overload and server errors. */
export function isRetryableStatus(status: number | undefined): boolean {
  return status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
}

/** Largest token count we accept from a provider: far above any real call, far below bigint's limit. */
export const MAX_USAGE_TOKENS = 1e12;

/**
 * A provider-reported token count as a non-negative safe integer: finite numbers and numeric
 * strings are rounded and capped at MAX_USAGE_TOKENS; anything else (negative, NaN, objects) is 0.
 * Usage feeds budgets and bigint columns, so a provider's -1e6, "10" or 1e308 must not reach them.
 */
export function tokenCount(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || n <= 0) return 0;
  return Math.min(Math.round(n), MAX_USAGE_TOKENS);
}

/**
 * Most characters (text plus tool-call arguments) one LLM answer may have: 4 MiB, about 1M tokens,
 * far beyond any model's output limit. Unbounded, a 20 MB answer was stored whole and 80 MB ran
 * PGlite out of memory and looped through retries.
 */
export const MAX_RESPONSE_CHARS = 4 * 1024 * 1024;

/** Throws the permanent ProviderError for an answer past MAX_RESPONSE_CHARS (not retried: it would pay again). */
export function checkResponseSize(provider: string, chars: number): void {
  if (chars > MAX_RESPONSE_CHARS) {
    throw new ProviderError(`${provider}: answer exceeds the limit of ${MAX_RESPONSE_CHARS} characters`, false, undefined, undefined);
  }
}

/** The ProviderError for a stream that closed without its final event (finish_reason, message_stop). */
export function truncatedStreamError(provider: string): ProviderError {
  return new ProviderError(`${provider}: stream ended before the answer was complete`, true, undefined, undefined);
}

/** notProtocolError for an answer of the wrong content type; its body, never read, is let go. */
export function wrongContentType(provider: string, response: Response): ProviderError {
  void response.body?.cancel().catch(() => {});
  const type = response.headers.get('content-type');
  return notProtocolError(provider, `content-type ${type || '(none)'}`);
}

/**
 * The ProviderError for a 200 that does not speak the provider's protocol (an HTML page, a JSON
 * body that is no completion): a base URL pointing at the wrong server, not a passing fault — so
 * it is not retried (it fails over like a 4xx) instead of costing every retry of every attempt.
 */
export function notProtocolError(provider: string, what: string): ProviderError {
  return new ProviderError(`${provider}: HTTP 200 with ${what}, not the provider's protocol (is the base URL right?)`, false, 200, undefined);
}

/** Shortest piece of the configured key that is redacted wherever it appears in a provider's message. */
export const MIN_KEY_PIECE_CHARS = 8;
/** Longest provider message relayed (after redaction) into a task's error: the status code stays in front. */
export const MAX_PROVIDER_MESSAGE_CHARS = 500;

/**
 * `msg` with every run of MIN_KEY_PIECE_CHARS or more characters that also appears in `key`
 * replaced by [REDACTED] (a key shorter than that: exact copies only). A provider echoing the key
 * less its last 2 characters, or only its first 12, leaked most of it past an exact-copy check.
 * Linear in `msg` but for runs that match (each grows at most to the key's length); the output is
 * built from slices between matches, since appending one character at a time took 1.1 s per MB.
 */
export function redactKeyPieces(msg: string, key: string): string {
  if (key.length < MIN_KEY_PIECE_CHARS) return msg.split(key).join('[REDACTED]');
  const grams = new Set<string>();
  for (let i = 0; i + MIN_KEY_PIECE_CHARS <= key.length; i++) grams.add(key.slice(i, i + MIN_KEY_PIECE_CHARS));
  const parts: string[] = [];
  let kept = 0;
  let i = 0;
  while (i + MIN_KEY_PIECE_CHARS <= msg.length) {
    if (!grams.has(msg.slice(i, i + MIN_KEY_PIECE_CHARS))) {
      i++;
      continue;
    }
    let end = i + MIN_KEY_PIECE_CHARS;
    while (end < msg.length && end - i < key.length && key.includes(msg.slice(i, end + 1))) end++;
    parts.push(msg.slice(kept, i), '[REDACTED]');
    i = kept = end;
  }
  parts.push(msg.slice(kept));
  return parts.join('');
}

/**
 * The part of a provider's message that redaction has to look at: MAX_PROVIDER_MESSAGE_CHARS plus
 * the key's length, so that a key straddling the cut is still found whole. Redacting the whole
 * message first blocked the process for 12 s on a 20 MB error body and ran it out of memory on 400 MB.
 */
function messageHead(raw: string, apiKey: string | undefined): string {
  const keep = MAX_PROVIDER_MESSAGE_CHARS + (apiKey?.length ?? 0);
  return raw.length > keep ? raw.slice(0, keep) : raw;
}

/**
 * Maps an SDK error (both SDKs share the shape: status + headers) to a ProviderError. `apiKey`,
 * when given, is redacted from the message, whole or in pieces (redactKeyPieces): providers echo
 * a wrong key back ("Incorrect API key provided: …") and the message lands in task errors and
 * events. The cause is then dropped, since its message still holds the key; so it is too when the
 * message was cut, since the part never read may hold it. The message is cut to
 * MAX_PROVIDER_MESSAGE_CHARS after the status code.
 */
export function toProviderError(provider: string, err: unknown, apiKey?: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = err as { status?: unknown; headers?: unknown; message?: unknown };
  const status = typeof e?.status === 'number' ? e.status : undefined;
  const headers = e?.headers instanceof Headers ? e.headers : undefined;
  const raw = typeof e?.message === 'string' ? e.message : String(err);
  const head = messageHead(raw, apiKey);
  let msg = apiKey ? redactKeyPieces(head, apiKey) : head;
  const leaks = msg !== head || (Boolean(apiKey) && head.length < raw.length);
  if (msg.length > MAX_PROVIDER_MESSAGE_CHARS || head.length < raw.length) msg = `${msg.slice(0, MAX_PROVIDER_MESSAGE_CHARS)}…`;
  return new ProviderError(`${provider}: ${status ? `HTTP ${status}: ` : ''}${msg}`, isRetryableStatus(status), status, retryAfterMs(headers), leaks ? undefined : { cause: err });
}
