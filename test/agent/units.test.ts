// Pure parts of the agent: calculator, prompt templates, strategy presets and auto mode,
// history trimming, usage breakdown, JSON extraction, shipped LLM templates.
import { describe, expect, it } from 'vitest';
import { evaluate } from '../../src/executors/agent/tools/calculator.js';
import { htmlToText } from '../../src/executors/agent/tools/http-fetch.js';
import { renderPrompt } from '../../src/executors/agent/templates.js';
import { autoMode, resolveAgentOptions } from '../../src/executors/agent/strategy.js';
import { clientHistory, historyMessages } from '../../src/executors/agent/history.js';
import { UsageLedger } from '../../src/executors/agent/usage.js';
import { parseJsonObject } from '../../src/executors/agent/prompts.js';
import { llmTemplates } from '../../src/executors/builtin/llm-templates.js';
import { validateAgainst } from '../../src/executors/schema.js';

describe('calculator', () => {
  it.each([
    ['1 + 2 * 3', 7], ['(1 + 2) * 3', 9], ['2 ^ 3 ^ 2', 512], ['2 ** 10', 1024], ['-3 + +4', 1], ['10 % 4', 2],
    ['sqrt(16) + abs(-2)', 6], ['max(1, 5, 3)', 5], ['round(2.5)', 3], ['pi', Math.PI], ['2e3 / 4', 500], ['.5 * 4', 2],
    // a sign binds looser than a power (mathematics, Python): -2^2 = 0-2^2
    ['-2^2', -4], ['-3**2', -9], ['0-2^2', -4], ['2^-1', 0.5], ['(-2)^2', 4], ['2*-3', -6], ['-2^-2', -0.25], ['2^-2^2', 1 / 16],
  ])('%s = %d', (expr, want) => expect(evaluate(expr)).toBeCloseTo(want, 12));

  it.each(['2 +', '(1', 'foo(1)', '1 / 0', 'process.exit()', '1 2', 'x'.repeat(1001)])('refuses %s', (expr) => expect(() => evaluate(expr)).toThrow());
  it.each(['constructor(5)', 'valueOf(1)', '__proto__', 'hasOwnProperty(1)', 'toString'])('%s is an unknown symbol, not an inherited property', (expr) =>
    expect(() => evaluate(expr)).toThrow(/unknown symbol/));
});

describe('templates', () => {
  it('fills fields, defaults and optional sections', () => {
    expect(renderPrompt('Hi {{name}}, {{tone|warm}}{{#extra}} [{{extra}}]{{/extra}}.', { name: 'Ada' })).toBe('Hi Ada, warm.');
    expect(renderPrompt('{{#extra}}[{{extra}}]{{/extra}} {{list}} {{obj.k}}', { extra: 'x', list: ['a', 'b'], obj: { k: 1 } })).toBe('[x] a, b 1');
    // an empty list is no section (report_generation's sections: [] said "Sections, in this order: .")
    expect(renderPrompt('Report.{{#s}} Sections: {{s}}.{{/s}}', { s: [] })).toBe('Report.');
  });

  it('ships email_draft with seed 004 args schema, plus report_generation and content_review', () => {
    expect(llmTemplates.map((d) => [d.id, d.kind])).toEqual([['email_draft', 'agent'], ['report_generation', 'agent'], ['content_review', 'agent']]);
    const email = llmTemplates[0]!;
    expect(validateAgainst(email.input_schema, { recipient: 'a@b.co', subject: 'Hi', content: 'x' })).toBeUndefined();
    expect(validateAgainst(email.input_schema, { recipient: 'not-an-email', subject: 'Hi', content: 'x' })).toBeDefined();
    expect(validateAgainst(email.input_schema, { recipient: 'a@b.co', subject: 'Hi' })).toBeDefined();
    expect(validateAgainst(email.input_schema, { recipient: 'a@b.co', subject: 'Hi', content: 'x', tone: 'angry' })).toBeDefined();
    for (const d of llmTemplates) expect(validateAgainst(d.output_schema, null)).toBeUndefined();
    const prompt = renderPrompt(String(email.config!.prompt), { recipient: 'a@b.co', subject: 'Launch', content: 'We ship Monday.' });
    expect(prompt).toBe('Draft an email to a@b.co with the subject "Launch".\nTone: professional. Length: medium.\nWhat the email must say:\nWe ship Monday.');
  });
});

describe('strategy', () => {
  const base = { query: 'hello', mode: null, options: {}, context: {} };

  it('applies presets and lets explicit fields win, top level over context', () => {
    expect(resolveAgentOptions({ ...base, options: { research_strategy: 'deep' } })).toMatchObject({ maxIterations: 8, maxConcurrentAgents: 5, verification: true, tier: 'medium', mode: 'complex', modeSource: 'auto' });
    const o = resolveAgentOptions({ ...base, mode: 'standard', options: { research_strategy: 'quick', max_iterations: 9, model_tier: 'large' }, context: { model_tier: 'small', enable_verification: true } });
    expect(o).toMatchObject({ mode: 'standard', modeSource: 'request', maxIterations: 9, maxConcurrentAgents: 2, tier: 'large', verification: true });
    expect(resolveAgentOptions({ ...base, context: { react_max_iterations: 4 } }).maxIterations).toBe(4);
  });

  it('ignores a research_strategy that only Object.prototype knows (constructor, toString)', () => {
    for (const name of ['constructor', 'toString', '__proto__']) {
      expect(resolveAgentOptions({ ...base, context: { research_strategy: name } })).toMatchObject({ strategy: undefined, mode: 'simple' });
    }
  });

  it('chooses a mode from the query when none is given', () => {
    expect(autoMode('hello', undefined)).toBe('simple');
    expect(autoMode('what is 17 * 23?', undefined)).toBe('standard');
    expect(autoMode('fetch https://example.com and summarise it', undefined)).toBe('standard');
    expect(autoMode('Compare the economic policies of France and Germany since 2000 and their effects on growth', undefined)).toBe('complex');
    expect(autoMode('hi', 'academic')).toBe('complex');
  });
});

describe('history', () => {
  it('keeps the newest turns that fit, oldest first', () => {
    const turns = [1, 2, 3].map((i) => ({ task_id: `t${i}`, query: `q${i}`.padEnd(40, '.'), result: `a${i}`.padEnd(40, '.') }));
    expect(historyMessages(turns, 1000).length).toBe(6);
    const two = historyMessages(turns, 45);
    expect(two.map((m) => m.content.slice(0, 2))).toEqual(['q2', 'a2', 'q3', 'a3']);
    expect(historyMessages(turns, 5)).toEqual([]);
  });

  it('accepts client-supplied OpenAI-style messages', () => {
    expect(clientHistory([{ role: 'system', content: 's' }, { role: 'user', content: 'u' }, { role: 'assistant', content: 'a' }, { role: 'tool', content: 'x' }, { role: 'user', content: [1] }])).toEqual({
      system: ['s'], messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a' }],
    });
  });
});

describe('usage and parsing', () => {
  it('breaks usage down per model with shares', () => {
    const l = new UsageLedger();
    l.record({ provider: 'openai', model: 'a', input_tokens: 60, output_tokens: 15, cost: 0.1 });
    l.record({ provider: 'openai', model: 'a', input_tokens: 0, output_tokens: 0, cost: 0.2 });
    l.record({ provider: 'anthropic', model: 'b', input_tokens: 20, output_tokens: 5, cost: 0.0000001 });
    expect(l.totals()).toEqual({ input_tokens: 80, output_tokens: 20, total_tokens: 100, estimated_cost: 0.3000001 });
    expect(l.breakdown()).toEqual({
      a: { provider: 'openai', executions: 2, input_tokens: 60, output_tokens: 15, total_tokens: 75, cost_usd: 0.3, percentage: 75 },
      b: { provider: 'anthropic', executions: 1, input_tokens: 20, output_tokens: 5, total_tokens: 25, cost_usd: 0.0000001, percentage: 25 },
    });
  });

  it('extracts JSON objects from model replies', () => {
    expect(parseJsonObject('{"a":1}')).toEqual({ a: 1 });
    expect(parseJsonObject('Sure!\n```json\n{"a": 2}\n```')).toEqual({ a: 2 });
    expect(parseJsonObject('here: {"a": 3} done')).toEqual({ a: 3 });
    expect(parseJsonObject('no json')).toBeUndefined();
  });

  it('turns HTML into text', () => {
    expect(htmlToText('<html><style>x{}</style><h1>T&amp;C</h1><script>evil()</script><p>a&nbsp;b</p></html>')).toBe('T&C a b');
  });
});

describe('clip', () => {
  it('keeps text within maxChars, its truncation marker included, and never splits a surrogate pair', async () => {
    const { clip } = await import('../../src/executors/agent/tools/types.js');
    expect(clip('short', 10)).toBe('short');
    for (const n of [4_001, 10_000, 3_145_728]) {
      const out = clip('x'.repeat(n), 4_000);
      expect(out.length, String(n)).toBeLessThanOrEqual(4_000);
      expect(out).toMatch(new RegExp(`\\n…\\[truncated ${n - out.indexOf('\n')} characters\\]$`));
    }
    const emoji = clip('😀'.repeat(3_000), 4_000);
    expect(emoji.length).toBeLessThanOrEqual(4_000);
    expect(emoji).not.toMatch(/[\uD800-\uDBFF]\n/);
  });
});
