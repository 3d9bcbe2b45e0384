// LLM provider configuration: read once from TASKGATE_LLM_CONFIG (YAML or JSON) and the provider
// env keys into one frozen LlmConfig, plus the pure model router used at submit and at run time.
// docs/agents.md documents the file format; nothing here does I/O except reading that one file.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { MAX_JITTERED_TIMER_MS, MAX_TIMER_MS } from './parse.js';

/** More retries per provider than anyone means (each waits its backoff): a typo's 1e6 would hold a task for days. */
const MAX_LLM_RETRIES = 100;

export type ModelTier = 'small' | 'medium' | 'large';
export const MODEL_TIERS: readonly ModelTier[] = ['small', 'medium', 'large'];
export type ProviderType = 'openai' | 'anthropic';

/** Default session token budget: 0 = unlimited unless the session sets one. */
export const DEFAULT_TOKEN_BUDGET = 0;
/** Largest session token budget: sessions.token_budget is a PostgreSQL integer (2^31 − 1). */
export const MAX_SESSION_TOKEN_BUDGET = 2_147_483_647;
/** Earlier session turns sent as history, in estimated tokens (4 chars ≈ 1 token). */
export const DEFAULT_HISTORY_BUDGET_TOKENS = 8_000;
/** Whole-call deadline for one LLM request, first byte to last. */
export const DEFAULT_LLM_CALL_TIMEOUT_MS = 120_000;
/** A stream that sends nothing for this long is treated as stalled and retried. */
export const DEFAULT_LLM_STREAM_IDLE_TIMEOUT_MS = 30_000;
/** Retries per provider on 429/5xx/timeouts before failing over to the next one. */
export const DEFAULT_LLM_MAX_RETRIES = 2;
/** First backoff step; doubles per retry with ±20 % jitter, unless Retry-After says otherwise. */
export const DEFAULT_LLM_RETRY_BASE_MS = 500;
/** A Retry-After longer than this is not waited out in-process: the task is retried later instead. */
export const DEFAULT_LLM_MAX_RETRY_AFTER_MS = 60_000;
/** Output tokens requested per call (Anthropic requires a value). */
export const DEFAULT_LLM_MAX_OUTPUT_TOKENS = 4_096;

export interface ProviderConfig {
  readonly name: string;
  readonly type: ProviderType;
  readonly baseUrl: string;
  readonly apiKey: string;
  /** Models this provider serves (used for routing overrides and /v1/models). */
  readonly models: readonly string[];
}

export interface ModelRef {
  readonly provider: string;
  readonly model: string;
}

export interface ModelPrice {
  /** USD per million input tokens. */
  readonly input: number;
  /** USD per million output tokens. */
  readonly output: number;
}

export interface LlmConfig {
  readonly providers: readonly ProviderConfig[];
  /** Ordered candidates per tier: the first is used, the rest are failovers. */
  readonly tiers: Readonly<Record<ModelTier, readonly ModelRef[]>>;
  readonly defaultTier: ModelTier;
  /**
   * USD per million tokens by model name. A null-prototype object: look names up with
   * `priceFor` (own keys only), never `in` — `constructor` or `__proto__` are not models.
   */
  readonly prices: Readonly<Record<string, ModelPrice>>;
  /** Default session token budget; 0 = unlimited. */
  readonly tokenBudget: number;
  readonly historyBudgetTokens: number;
  readonly callTimeoutMs: number;
  readonly streamIdleTimeoutMs: number;
  readonly maxRetries: number;
  readonly retryBaseMs: number;
  readonly maxRetryAfterMs: number;
  readonly maxOutputTokens: number;
}

export class LlmConfigError extends Error {
  override name = 'LlmConfigError';
}

/** Thrown by resolveModel; the API answers it with 400 VALIDATION_ERROR. */
export class ModelRouteError extends Error {
  override name = 'ModelRouteError';
  constructor(readonly code: 'UNKNOWN_MODEL' | 'UNKNOWN_PROVIDER', message: string) {
    super(message);
  }
}

export const llmNotConfiguredMessage =
  'No LLM provider is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for any OpenAI-compatible server such as ' +
  'vLLM, Ollama, LM Studio or OpenRouter), ANTHROPIC_API_KEY, or point TASKGATE_LLM_CONFIG at a providers file (see docs/agents.md)';

/** Explicit so the SDKs never fall back to their own environment variables. */
export const DEFAULT_BASE_URLS: Readonly<Record<ProviderType, string>> = {
  openai: 'https://api.openai.com/v1',
  anthropic: 'https://api.anthropic.com',
};

const DEFAULT_TIER_MODELS: Record<ProviderType, Record<ModelTier, string>> = {
  openai: { small: 'gpt-4o-mini', medium: 'gpt-4o', large: 'gpt-4.1' },
  anthropic: { small: 'claude-haiku-4-5', medium: 'claude-sonnet-4-6', large: 'claude-opus-4-6' },
};

/** List prices (USD per million tokens) of the default models; a config file's `prices` win. */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = {
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-5-mini': { input: 0.25, output: 2 },
  'gpt-5': { input: 1.25, output: 10 },
  'claude-haiku-4-5': { input: 1, output: 5 },
  'claude-sonnet-4-6': { input: 3, output: 15 },
  'claude-opus-4-6': { input: 5, output: 25 },
};

type Env = Record<string, string | undefined>;
type Raw = Record<string, unknown>;

function isObj(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A whole number from 0 to `max` (a string of digits too: '' or '0x10' is no number): a timer
 * over MAX_TIMER_MS fires after 1 ms in Node (call_timeout_ms 3e9 failed every LLM call at once),
 * and a retry count or a token count has no fractions.
 */
function whole(name: string, v: unknown, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined || v === null) return fallback;
  const n = typeof v === 'string' ? (/^\d+$/.test(v.trim()) ? Number(v) : NaN) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > max) throw new LlmConfigError(`${name} must be a whole number from 0 to ${max}, got ${String(v)}`);
  return n;
}

/** A price: a non-negative finite number (a string of one too). */
function nonNeg(name: string, v: unknown, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  const n = typeof v === 'string' ? (/^\s*\d+(\.\d+)?([eE][+-]?\d+)?\s*$/.test(v) ? Number(v) : NaN) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new LlmConfigError(`${name} must be a non-negative number, got ${String(v)}`);
  return n;
}

function envProviders(env: Env): Raw[] {
  const out: Raw[] = [];
  if (env.OPENAI_API_KEY || env.OPENAI_BASE_URL) out.push({ name: 'openai', type: 'openai' });
  if (env.ANTHROPIC_API_KEY || env.ANTHROPIC_BASE_URL) out.push({ name: 'anthropic', type: 'anthropic' });
  return out;
}

function parseProvider(raw: unknown, env: Env): ProviderConfig {
  if (!isObj(raw)) throw new LlmConfigError('each entry of providers must be an object');
  const type = (raw.type ?? raw.name) as string;
  if (type !== 'openai' && type !== 'anthropic') throw new LlmConfigError(`provider type must be openai or anthropic, got ${String(type)}`);
  const name = typeof raw.name === 'string' && raw.name ? raw.name : type;
  const prefix = type === 'openai' ? 'OPENAI' : 'ANTHROPIC';
  const keyEnv = typeof raw.api_key_env === 'string' ? raw.api_key_env : undefined;
  const apiKey =
    (typeof raw.api_key === 'string' ? raw.api_key : undefined) ??
    (keyEnv ? env[keyEnv] : undefined) ??
    (name === type ? env[`${prefix}_API_KEY`] : undefined) ??
    // OpenAI-compatible local servers (Ollama, vLLM, LM Studio) ignore the key but the client requires one
    'not-needed';
  const fromFile = typeof raw.base_url === 'string' ? raw.base_url : undefined;
  const baseUrl = fromFile ?? (name === type ? env[`${prefix}_BASE_URL`] : undefined);
  if (baseUrl) checkBaseUrl(fromFile !== undefined ? `providers[${name}].base_url` : `${prefix}_BASE_URL`, baseUrl);
  const models = Array.isArray(raw.models) ? raw.models.map(String) : [];
  return { name, type, baseUrl: baseUrl || DEFAULT_BASE_URLS[type], apiKey, models: Object.freeze(models) };
}

/** An http(s) URL, checked at start: `notaurl` failed every agent task at run time ("Invalid URL"), each retried. */
function checkBaseUrl(setting: string, raw: string): void {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new LlmConfigError(`${setting} must be an http(s) URL such as https://api.openai.com/v1, got ${raw.slice(0, 200)}`);
  }
}

/** `model`, `provider:model` (when the prefix names a provider) or `{provider, model}`. */
function parseRef(raw: unknown, providers: readonly ProviderConfig[]): ModelRef[] {
  if (isObj(raw)) {
    const provider = String(raw.provider ?? '');
    if (!providers.some((p) => p.name === provider)) throw new LlmConfigError(`tier entry names unknown provider ${provider}`);
    return [{ provider, model: String(raw.model ?? '') }];
  }
  const s = String(raw);
  const colon = s.indexOf(':');
  if (colon > 0 && providers.some((p) => p.name === s.slice(0, colon))) return [{ provider: s.slice(0, colon), model: s.slice(colon + 1) }];
  const serving = providers.filter((p) => p.models.includes(s));
  return (serving.length ? serving : providers.slice(0, 1)).map((p) => ({ provider: p.name, model: s }));
}

function defaultTiers(providers: readonly ProviderConfig[]): Record<ModelTier, ModelRef[]> {
  const tiers: Record<ModelTier, ModelRef[]> = { small: [], medium: [], large: [] };
  for (const tier of MODEL_TIERS) {
    for (const p of providers) {
      const model = p.models.length ? p.models[Math.min(MODEL_TIERS.indexOf(tier), p.models.length - 1)]! : DEFAULT_TIER_MODELS[p.type][tier];
      tiers[tier].push({ provider: p.name, model });
    }
  }
  return tiers;
}

function readFile(path: string): Raw {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new LlmConfigError(`cannot read TASKGATE_LLM_CONFIG ${path}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    // (the YAML parser's message goes on with a snippet of the file: its first line says where)
    throw new LlmConfigError(`TASKGATE_LLM_CONFIG ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  if (!isObj(parsed)) throw new LlmConfigError(`TASKGATE_LLM_CONFIG ${path} must hold an object`);
  return parsed;
}

function parsePrices(raw: unknown): Record<string, ModelPrice> {
  // null prototype: a model name such as __proto__ or constructor is a key like any other
  const prices: Record<string, ModelPrice> = Object.assign(Object.create(null) as Record<string, ModelPrice>, DEFAULT_PRICES);
  if (raw === undefined) return prices;
  if (!isObj(raw)) throw new LlmConfigError('prices must map model names to {input, output}');
  for (const [model, p] of Object.entries(raw)) {
    if (!isObj(p)) throw new LlmConfigError(`prices.${model} must be {input, output}`);
    prices[model] = Object.freeze({ input: nonNeg(`prices.${model}.input`, p.input, 0), output: nonNeg(`prices.${model}.output`, p.output, 0) });
  }
  return prices;
}

/** Reads the LLM configuration; undefined when no provider is configured at all. */
export function loadLlmConfig(env: Env): LlmConfig | undefined {
  const file = env.TASKGATE_LLM_CONFIG ? readFile(env.TASKGATE_LLM_CONFIG) : {};
  const rawProviders = file.providers === undefined ? envProviders(env) : file.providers;
  if (!Array.isArray(rawProviders)) throw new LlmConfigError('providers must be a list');
  const providers = rawProviders.map((p) => parseProvider(p, env));
  if (providers.length === 0) return undefined;
  const names = new Set<string>();
  for (const p of providers) {
    if (names.has(p.name)) throw new LlmConfigError(`provider name ${p.name} is used twice`);
    names.add(p.name);
  }
  const tiers = defaultTiers(providers);
  if (file.tiers !== undefined) {
    if (!isObj(file.tiers)) throw new LlmConfigError('tiers must map small|medium|large to model lists');
    for (const [tier, entries] of Object.entries(file.tiers)) {
      if (!MODEL_TIERS.includes(tier as ModelTier)) throw new LlmConfigError(`unknown tier ${tier} (small, medium or large)`);
      tiers[tier as ModelTier] = (Array.isArray(entries) ? entries : [entries]).flatMap((e) => parseRef(e, providers));
    }
  }
  const defaultTier = (file.default_tier ?? 'medium') as ModelTier;
  if (!MODEL_TIERS.includes(defaultTier)) throw new LlmConfigError(`default_tier must be small, medium or large`);
  const config: LlmConfig = {
    providers: Object.freeze(providers),
    tiers: Object.freeze({
      small: Object.freeze(tiers.small),
      medium: Object.freeze(tiers.medium),
      large: Object.freeze(tiers.large),
    }),
    defaultTier,
    prices: Object.freeze(parsePrices(file.prices)),
    tokenBudget: whole('token_budget', file.token_budget, DEFAULT_TOKEN_BUDGET),
    historyBudgetTokens: whole('history_budget_tokens', file.history_budget_tokens, DEFAULT_HISTORY_BUDGET_TOKENS),
    callTimeoutMs: whole('call_timeout_ms', file.call_timeout_ms, DEFAULT_LLM_CALL_TIMEOUT_MS, MAX_TIMER_MS),
    streamIdleTimeoutMs: whole('stream_idle_timeout_ms', file.stream_idle_timeout_ms, DEFAULT_LLM_STREAM_IDLE_TIMEOUT_MS, MAX_TIMER_MS),
    maxRetries: whole('max_retries', file.max_retries, DEFAULT_LLM_MAX_RETRIES, MAX_LLM_RETRIES),
    retryBaseMs: whole('retry_base_ms', file.retry_base_ms, DEFAULT_LLM_RETRY_BASE_MS, MAX_JITTERED_TIMER_MS),
    maxRetryAfterMs: whole('max_retry_after_ms', file.max_retry_after_ms, DEFAULT_LLM_MAX_RETRY_AFTER_MS, MAX_JITTERED_TIMER_MS),
    maxOutputTokens: whole('max_output_tokens', file.max_output_tokens, DEFAULT_LLM_MAX_OUTPUT_TOKENS),
  };
  return Object.freeze(config);
}

/** Every model the configuration knows: tier entries, providers' model lists and priced models. */
export function knownModels(config: LlmConfig): { provider: string; model: string }[] {
  const seen = new Set<string>();
  const out: ModelRef[] = [];
  const add = (r: ModelRef) => {
    const k = `${r.provider}\u0000${r.model}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(r);
    }
  };
  for (const tier of MODEL_TIERS) config.tiers[tier].forEach(add);
  for (const p of config.providers) p.models.forEach((model) => add({ provider: p.name, model }));
  return out;
}

export interface ModelRequest {
  model_tier?: string | null | undefined;
  model_override?: string | null | undefined;
  provider_override?: string | null | undefined;
}

export interface ModelRoute {
  tier: ModelTier;
  /** Tried in order; later entries are failovers. */
  candidates: readonly ModelRef[];
}

/**
 * Chooses the models a task may use. An override routes exactly (no failover outside it); an
 * unknown model or provider throws ModelRouteError.
 */
export function resolveModel(config: LlmConfig, req: ModelRequest): ModelRoute {
  const tier = (req.model_tier && MODEL_TIERS.includes(req.model_tier as ModelTier) ? req.model_tier : config.defaultTier) as ModelTier;
  const provider = req.provider_override ?? undefined;
  if (provider !== undefined && !config.providers.some((p) => p.name === provider)) {
    throw new ModelRouteError('UNKNOWN_PROVIDER', `unknown provider_override ${provider}; configured: ${config.providers.map((p) => p.name).join(', ')}`);
  }
  const model = req.model_override ?? undefined;
  if (model !== undefined) {
    const known = knownModels(config).filter((r) => r.model === model);
    const priced = priceFor(config, model) !== undefined;
    if (known.length === 0 && !priced) throw new ModelRouteError('UNKNOWN_MODEL', `unknown model_override ${model}`);
    if (provider !== undefined) return { tier, candidates: [{ provider, model }] };
    if (known.length) return { tier, candidates: known };
    // a priced-only model goes to the providers of its family (a default model), else to all of them
    const family = config.providers.filter((p) => Object.values(DEFAULT_TIER_MODELS[p.type]).includes(model));
    return { tier, candidates: (family.length ? family : config.providers).map((p) => ({ provider: p.name, model })) };
  }
  if (provider !== undefined) {
    const order = [tier, ...MODEL_TIERS.filter((t) => t !== tier)];
    for (const t of order) {
      const hit = config.tiers[t].find((r) => r.provider === provider);
      if (hit) return { tier, candidates: [hit] };
    }
    const p = config.providers.find((x) => x.name === provider)!;
    return { tier, candidates: [{ provider, model: p.models[0] ?? DEFAULT_TIER_MODELS[p.type][tier] }] };
  }
  const candidates = config.tiers[tier].length ? config.tiers[tier] : config.tiers[config.defaultTier];
  return { tier, candidates };
}

/** The configured price of `model` (own entries only), undefined when it has none. */
export function priceFor(config: LlmConfig, model: string): ModelPrice | undefined {
  return Object.hasOwn(config.prices, model) ? config.prices[model] : undefined;
}

/**
 * USD cost of one call at the configured prices: 0 for unpriced models, and 0 rather than a
 * NaN or Infinity (added to a session's cost_usd, one NaN made it NaN for good).
 */
export function priceOf(config: LlmConfig, model: string, inputTokens: number, outputTokens: number): number {
  const p = priceFor(config, model);
  if (!p) return 0;
  const usd = (inputTokens * p.input + outputTokens * p.output) / 1_000_000;
  return Number.isFinite(usd) ? usd : 0;
}

/**
 * Why `context.token_budget` cannot be stored as a session budget, or undefined when it can
 * (absent or null count as not given). Checked at submit (400) and again by the executor.
 */
export function tokenBudgetProblem(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_SESSION_TOKEN_BUDGET) return undefined;
  return `context.token_budget must be an integer from 0 to ${MAX_SESSION_TOKEN_BUDGET} (tokens; 0 = unlimited), got ${JSON.stringify(v)?.slice(0, 40)}`;
}
