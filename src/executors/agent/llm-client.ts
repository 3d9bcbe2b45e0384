// One resilient LLM call: per-attempt deadline and stall detector, retries with exponential
// backoff honouring Retry-After on 429/5xx/timeouts, then failover to the next candidate model of
// the route. The task's AbortSignal aborts the in-flight HTTP request at once.
import type { LlmConfig, ModelRef } from '../../config/llm.js';
import { PermanentError, RetryAfterError } from '../types.js';
import { AnthropicProvider } from './providers/anthropic.js';
import { OpenAiProvider } from './providers/openai.js';
import { ProviderError, toProviderError, type ChatMessage, type LlmProvider, type LlmResponse, type ToolSpec } from './providers/types.js';

export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export const abortableSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });

export function createProviders(config: LlmConfig): Map<string, LlmProvider> {
  const map = new Map<string, LlmProvider>();
  for (const p of config.providers) {
    map.set(p.name, p.type === 'anthropic' ? new AnthropicProvider(p, config.callTimeoutMs) : new OpenAiProvider(p, config.callTimeoutMs));
  }
  return map;
}

export interface RetryInfo {
  provider: string;
  model: string;
  /** 1-based number of the attempt that failed. */
  attempt: number;
  delayMs: number;
  error: string;
}

export interface CallInput {
  messages: ChatMessage[];
  tools?: ToolSpec[];
  signal: AbortSignal;
  /** W3C traceparent of the submitting request, passed on to the provider. */
  traceparent?: string;
  onDelta?: (text: string) => void;
  onRetry?: (info: RetryInfo) => void;
  onFailover?: (from: ModelRef, to: ModelRef, error: string) => void;
}

export interface CallOutput extends LlmResponse {
  provider: string;
  /** The candidate's model name as routed and sent; `model` is the one the provider reports. */
  requestedModel: string;
  /** Attempts made in total, across providers. */
  attempts: number;
}

export interface LlmClientOptions {
  providers?: Map<string, LlmProvider>;
  sleep?: Sleep;
  /** Jitter source, [0, 1). */
  random?: () => number;
}

export class LlmClient {
  readonly #config: LlmConfig;
  readonly #providers: Map<string, LlmProvider>;
  readonly #sleep: Sleep;
  readonly #random: () => number;

  constructor(config: LlmConfig, opts: LlmClientOptions = {}) {
    this.#config = config;
    this.#providers = opts.providers ?? createProviders(config);
    this.#sleep = opts.sleep ?? abortableSleep;
    this.#random = opts.random ?? Math.random;
  }

  /** Backoff before retry number `n` (0-based): base · 2^n, ±20 % jitter. */
  backoffMs(n: number): number {
    return Math.round(this.#config.retryBaseMs * 2 ** n * (0.8 + 0.4 * this.#random()));
  }

  async call(candidates: readonly ModelRef[], input: CallInput): Promise<CallOutput> {
    let last: ProviderError | undefined;
    let attempts = 0;
    for (let c = 0; c < candidates.length; c++) {
      const cand = candidates[c]!;
      const provider = this.#providers.get(cand.provider);
      if (!provider) throw new PermanentError(`provider ${cand.provider} is not configured`);
      if (c > 0 && last) input.onFailover?.(candidates[c - 1]!, cand, last.message);
      for (let retry = 0; ; retry++) {
        attempts++;
        try {
          const res = await this.#attempt(provider, cand.model, input);
          return { ...res, provider: provider.name, requestedModel: cand.model, attempts };
        } catch (err) {
          if (input.signal.aborted) throw input.signal.reason ?? err;
          last = toProviderError(provider.name, err);
          if (!last.retryable || retry >= this.#config.maxRetries) break;
          const delayMs = last.retryAfterMs ?? this.backoffMs(retry);
          if (delayMs > this.#config.maxRetryAfterMs) break;
          input.onRetry?.({ provider: provider.name, model: cand.model, attempt: retry + 1, delayMs, error: last.message });
          await this.#sleep(delayMs, input.signal);
        }
      }
    }
    const msg = `LLM call failed on ${candidates.map((x) => `${x.provider}/${x.model}`).join(', ')}: ${last?.message ?? 'no candidates'}`;
    if (last?.retryable) throw new RetryAfterError(msg, last.retryAfterMs ?? this.backoffMs(this.#config.maxRetries));
    throw new PermanentError(msg, { cause: last });
  }

  async #attempt(provider: LlmProvider, model: string, input: CallInput): Promise<LlmResponse> {
    const ctl = new AbortController();
    const signal = AbortSignal.any([input.signal, ctl.signal]);
    const { callTimeoutMs, streamIdleTimeoutMs } = this.#config;
    const deadline = callTimeoutMs
      ? setTimeout(() => ctl.abort(new ProviderError(`${provider.name}: no complete answer within ${callTimeoutMs} ms`, true, undefined, undefined)), callTimeoutMs)
      : undefined;
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      if (!streamIdleTimeoutMs) return;
      clearTimeout(idle);
      idle = setTimeout(() => ctl.abort(new ProviderError(`${provider.name}: stream stalled, nothing received for ${streamIdleTimeoutMs} ms`, true, undefined, undefined)), streamIdleTimeoutMs);
    };
    touch();
    try {
      return await provider.complete(
        { model, messages: input.messages, tools: input.tools, maxOutputTokens: this.#config.maxOutputTokens },
        { signal, traceparent: input.traceparent, onDelta: input.onDelta, onActivity: touch },
      );
    } catch (err) {
      if (!input.signal.aborted && ctl.signal.aborted) throw ctl.signal.reason;
      throw err;
    } finally {
      clearTimeout(deadline);
      clearTimeout(idle);
    }
  }
}
