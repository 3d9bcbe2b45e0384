// What the provider clients read from a provider is bounded in bytes: huge error bodies, against
// the fake servers speaking the real protocols.
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { LlmClient } from '../../src/executors/agent/llm-client.js';
import { MAX_ERROR_BODY_BYTES } from '../../src/executors/agent/providers/bounded-fetch.js';
import { MAX_PROVIDER_MESSAGE_CHARS } from '../../src/executors/agent/providers/types.js';
import { RetryAfterError } from '../../src/executors/types.js';
import { pour, type CustomStep } from '../helpers/fake-llm/server.js';
import { useFakeProviders } from '../helpers/fake-llm/providers.js';

const OPENAI_KEY = 'sk-SECRETKEY123456';
const fake = useFakeProviders({ openai: OPENAI_KEY });

const MiB = 1024 * 1024;
const noSleep = async () => {};
const ask = { messages: [{ role: 'user' as const, content: 'q' }] };
const tiers = { openai: [{ provider: 'openai', model: 'm' }], anthropic: [{ provider: 'anthropic', model: 'claude' }] };
const fakes = () => ({ openai: fake.oai, anthropic: fake.ant });

/** The error a call to `tier` ends with (a call that succeeds fails the test). */
function callError(tier: keyof typeof tiers, config: Partial<typeof fake.config> = {}, onRetry?: (error: string) => void): Promise<Error> {
  return new LlmClient({ ...fake.config, ...config }, { sleep: noSleep }).call(tiers[tier], { ...ask, signal: new AbortController().signal, onRetry: (r) => onRetry?.(r.error) }).then(
    (res) => new Error(`the call succeeded with ${res.text.length} characters`),
    (e: unknown) => e as Error,
  );
}

/** A custom step that records how many bytes of its body it managed to write. */
function pouring(send: (res: ServerResponse) => Promise<number>): CustomStep & { written: Promise<number> } {
  let done!: (n: number) => void;
  const written = new Promise<number>((resolve) => (done = resolve));
  return { kind: 'custom', send: async (res) => done(await send(res)), written };
}

describe(`an error body is read up to MAX_ERROR_BODY_BYTES (${MAX_ERROR_BODY_BYTES})`, () => {
  const total = 32 * MiB;
  for (const tier of ['openai', 'anthropic'] as const) {
    it(`${tier}: a 32 MiB error body fails the call with its status and a cut message, and the connection is closed early`, async () => {
      const step = pouring(async (res) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.write('{"error":{"message":"');
        const n = await pour(res, 'a'.repeat(64 * 1024), total);
        if (!res.destroyed) res.end('"}}');
        return n;
      });
      fakes()[tier].script(step);
      const err = await callError(tier, { maxRetries: 0 });
      expect(err).toBeInstanceOf(RetryAfterError);
      expect(err.message).toContain(`${tier}: HTTP 500: `);
      expect(err.message).toMatch(/a…$/);
      expect(err.message.length).toBeLessThan(MAX_PROVIDER_MESSAGE_CHARS + 200);
      await fakes()[tier].requests[0]!.closed;
      expect(await step.written).toBeLessThan(total);
    });
  }
});
