// loadLlmConfig (env defaults, YAML/JSON files, validation) and the pure model router.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LlmConfigError, ModelRouteError, loadLlmConfig, priceOf, resolveModel, llmNotConfiguredMessage } from '../../src/config/llm.js';

const dir = mkdtempSync(join(tmpdir(), 'tg-llm-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('loadLlmConfig', () => {
  it('is undefined when nothing is configured, and the message names the settings', () => {
    expect(loadLlmConfig({})).toBeUndefined();
    for (const k of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'ANTHROPIC_API_KEY', 'TASKGATE_LLM_CONFIG']) expect(llmNotConfiguredMessage).toContain(k);
  });

  it('builds defaults from env keys alone: tiers across both providers, prices, frozen', () => {
    const c = loadLlmConfig({ OPENAI_API_KEY: 'k', ANTHROPIC_API_KEY: 'a' })!;
    expect(c.providers.map((p) => [p.name, p.type, p.baseUrl])).toEqual([
      ['openai', 'openai', 'https://api.openai.com/v1'],
      ['anthropic', 'anthropic', 'https://api.anthropic.com'],
    ]);
    expect(c.tiers.small).toEqual([{ provider: 'openai', model: 'gpt-4o-mini' }, { provider: 'anthropic', model: 'claude-haiku-4-5' }]);
    expect(c.defaultTier).toBe('medium');
    expect(c.prices['gpt-4o-mini']).toEqual({ input: 0.15, output: 0.6 });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.tiers.small)).toBe(true);
  });

  it('accepts an OpenAI-compatible base URL without a key (Ollama, vLLM)', () => {
    const c = loadLlmConfig({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' })!;
    expect(c.providers[0]).toMatchObject({ name: 'openai', baseUrl: 'http://127.0.0.1:11434/v1', apiKey: 'not-needed' });
  });

  it('reads a YAML file: providers, tier lists with failover, prices, budgets', () => {
    const path = file(
      'llm.yaml',
      `providers:
  - name: local
    type: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: LOCAL_KEY
    models: [llama3:8b, qwen2.5:32b]
  - name: claude
    type: anthropic
    api_key: sk-ant
tiers:
  small: [llama3:8b]
  medium: ["local:qwen2.5:32b", {provider: claude, model: claude-sonnet-4-6}]
default_tier: small
prices:
  llama3:8b: {input: 0.1, output: 0.2}
token_budget: 5000
history_budget_tokens: 100
call_timeout_ms: 1000
max_retries: 1
`,
    );
    const c = loadLlmConfig({ TASKGATE_LLM_CONFIG: path, LOCAL_KEY: 'lk' })!;
    expect(c.providers[0]).toMatchObject({ name: 'local', apiKey: 'lk', models: ['llama3:8b', 'qwen2.5:32b'] });
    expect(c.providers[1]).toMatchObject({ name: 'claude', type: 'anthropic', apiKey: 'sk-ant' });
    expect(c.tiers.small).toEqual([{ provider: 'local', model: 'llama3:8b' }]);
    expect(c.tiers.medium).toEqual([{ provider: 'local', model: 'qwen2.5:32b' }, { provider: 'claude', model: 'claude-sonnet-4-6' }]);
    expect(c.tiers.large).toEqual([{ provider: 'local', model: 'qwen2.5:32b' }, { provider: 'claude', model: 'claude-opus-4-6' }]);
    expect(c.defaultTier).toBe('small');
    expect(c.prices['llama3:8b']).toEqual({ input: 0.1, output: 0.2 });
    expect(c.prices['gpt-4o']).toBeDefined();
    expect([c.tokenBudget, c.historyBudgetTokens, c.callTimeoutMs, c.maxRetries]).toEqual([5000, 100, 1000, 1]);
  });

  it('reads a JSON file', () => {
    const path = file('llm.json', JSON.stringify({ providers: [{ type: 'openai', base_url: 'http://x/v1' }], tiers: { large: 'gpt-4o' } }));
    const c = loadLlmConfig({ TASKGATE_LLM_CONFIG: path })!;
    expect(c.tiers.large).toEqual([{ provider: 'openai', model: 'gpt-4o' }]);
  });

  it('rejects malformed files with a clear error', () => {
    expect(() => loadLlmConfig({ TASKGATE_LLM_CONFIG: join(dir, 'missing.yaml') })).toThrow(LlmConfigError);
    expect(() => loadLlmConfig({ TASKGATE_LLM_CONFIG: file('bad.yaml', 'providers: [{type: gemini}]') })).toThrow(/openai or anthropic/);
    expect(() => loadLlmConfig({ TASKGATE_LLM_CONFIG: file('bad2.yaml', 'providers: [{type: openai}]\ntiers: {huge: [x]}') })).toThrow(/unknown tier/);
    expect(() => loadLlmConfig({ TASKGATE_LLM_CONFIG: file('bad3.yaml', 'providers: [{type: openai}]\nprices: {m: {input: -1}}') })).toThrow(/non-negative/);
    expect(() => loadLlmConfig({ TASKGATE_LLM_CONFIG: file('bad4.json', '{') })).toThrow(/not valid JSON/);
    // timers past 2^31-1 ms fire after 1 ms in Node; counts are whole
    for (const [name, yaml, why] of [
      ['t1.yaml', 'call_timeout_ms: 3000000000', /call_timeout_ms must be a whole number from 0 to 2147483647, got 3000000000/],
      ['t2.yaml', 'stream_idle_timeout_ms: 1e10', /stream_idle_timeout_ms must be a whole number/],
      ['t3.yaml', 'max_retries: 1.5', /max_retries must be a whole number from 0 to 100/],
      ['t4.yaml', 'max_output_tokens: 0.5', /max_output_tokens must be a whole number/],
      ['t5.yaml', "retry_base_ms: '0x10'", /retry_base_ms must be a whole number/],
      ['t6.yaml', "token_budget: ''", /token_budget must be a whole number/],
    ] as const) {
      expect(() => loadLlmConfig({ TASKGATE_LLM_CONFIG: file(name, `providers: [{type: openai}]\n${yaml}`) }), name).toThrow(why);
    }
    expect(loadLlmConfig({ TASKGATE_LLM_CONFIG: file('t7.yaml', "providers: [{type: openai}]\ncall_timeout_ms: '2147483647'\nprices: {m: {input: '0.25', output: 1.5}}") })).toMatchObject({ callTimeoutMs: 2147483647, prices: { m: { input: 0.25, output: 1.5 } } });
    expect(() => loadLlmConfig({ TASKGATE_LLM_CONFIG: file('dup.yaml', 'providers: [{type: openai}, {type: openai}]') })).toThrow(/twice/);
    // one line, however long the parser's own report (it quotes the file)
    const yaml = (() => {
      try {
        loadLlmConfig({ TASKGATE_LLM_CONFIG: file('bad5.yaml', 'providers:\n  - type: openai\n   base_url: [x\n') });
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(yaml).toMatch(/not valid YAML/);
    expect(yaml).not.toContain('\n');
  });

  it('refuses a base URL that is not an http(s) URL at start, naming the setting (every agent task failed on it at run time)', () => {
    expect(() => loadLlmConfig({ OPENAI_BASE_URL: 'notaurl' })).toThrow(/^OPENAI_BASE_URL must be an http\(s\) URL/);
    expect(() => loadLlmConfig({ ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: 'ftp://x' })).toThrow(/^ANTHROPIC_BASE_URL must be an http\(s\) URL/);
    expect(() => loadLlmConfig({ TASKGATE_LLM_CONFIG: file('badurl.yaml', 'providers: [{type: openai, name: local, base_url: "localhost:11434"}]') }))
      .toThrow(/^providers\[local\]\.base_url must be an http\(s\) URL/);
    expect(loadLlmConfig({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' })!.providers[0]!.baseUrl).toBe('http://127.0.0.1:11434/v1');
  });
});

describe('resolveModel', () => {
  const c = loadLlmConfig({ OPENAI_API_KEY: 'k', ANTHROPIC_API_KEY: 'a' })!;

  it('uses the default tier, or the requested one, with failover candidates', () => {
    expect(resolveModel(c, {}).candidates.map((r) => r.model)).toEqual(['gpt-4o', 'claude-sonnet-4-6']);
    expect(resolveModel(c, { model_tier: 'large' })).toEqual({ tier: 'large', candidates: c.tiers.large });
  });

  it('routes overrides exactly', () => {
    expect(resolveModel(c, { model_override: 'claude-opus-4-6' }).candidates).toEqual([{ provider: 'anthropic', model: 'claude-opus-4-6' }]);
    expect(resolveModel(c, { provider_override: 'anthropic', model_tier: 'small' }).candidates).toEqual([{ provider: 'anthropic', model: 'claude-haiku-4-5' }]);
    expect(resolveModel(c, { provider_override: 'openai', model_override: 'gpt-4.1' }).candidates).toEqual([{ provider: 'openai', model: 'gpt-4.1' }]);
  });

  it('throws typed errors for unknown models and providers', () => {
    const e1 = (() => { try { resolveModel(c, { model_override: 'gpt-99' }); } catch (e) { return e; } })() as ModelRouteError;
    expect(e1).toBeInstanceOf(ModelRouteError);
    expect(e1.code).toBe('UNKNOWN_MODEL');
    expect(() => resolveModel(c, { provider_override: 'gemini' })).toThrow(/unknown provider_override gemini/);
  });

  it('prices calls per million tokens', () => {
    expect(priceOf(c, 'gpt-4o', 1_000_000, 500_000)).toBeCloseTo(2.5 + 5, 10);
    expect(priceOf(c, 'unpriced', 1000, 1000)).toBe(0);
    // inherited names are not models, and a non-finite product is no cost a session can add
    expect(priceOf(c, 'constructor', 1000, 1000)).toBe(0);
    expect(priceOf(c, 'gpt-4o', NaN, 1000)).toBe(0);
    expect(priceOf(c, 'gpt-4o', Infinity, 0)).toBe(0);
  });
});
