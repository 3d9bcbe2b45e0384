// The provider SDKs print nothing of their own: their logger would write a provider's unparsable
// chunk (part of an answer) to stderr, outside the service's logs and their levels. A file of its
// own: the SDKs bind console's methods the first time they log, so the spies must come first.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { LlmClient } from '../../src/executors/agent/llm-client.js';
import { useFakeProviders } from '../helpers/fake-llm/providers.js';

const printed = [vi.spyOn(console, 'error'), vi.spyOn(console, 'warn'), vi.spyOn(console, 'log'), vi.spyOn(console, 'info')];
afterAll(() => printed.forEach((s) => s.mockRestore()));
const fake = useFakeProviders();

describe('provider SDK logging', () => {
  it('an unparsable stream chunk fails the call as an error of ours, with nothing printed', async () => {
    const garbage = { kind: 'raw', contentType: 'text/event-stream', body: 'data: <b>not json</b>\n\n' } as const;
    fake.oai.script(garbage);
    fake.ant.script({ ...garbage, body: 'event: message_start\ndata: <b>not json</b>\n\n' });
    const client = new LlmClient({ ...fake.config, maxRetries: 0 }, { sleep: async () => {} });
    const ask = { messages: [{ role: 'user' as const, content: 'q' }] };
    for (const provider of ['openai', 'anthropic']) {
      const err = await client.call([{ provider, model: 'm' }], { ...ask, signal: new AbortController().signal }).catch((e: unknown) => e);
      expect((err as Error).message).toContain(`LLM call failed on ${provider}/m: ${provider}: `);
    }
    expect(printed.flatMap((s) => s.mock.calls)).toEqual([]);
  });
});
