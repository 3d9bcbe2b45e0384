// The fake OpenAI and Anthropic servers a test file shares: started once, reset before each test,
// stopped after the file, with an LlmConfig whose providers point at them.
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { loadLlmConfig, type LlmConfig } from '../../../src/config/llm.js';
import { startFakeAnthropic, type FakeAnthropic } from './anthropic.js';
import { startFakeOpenAi, type FakeOpenAi } from './openai.js';

export interface FakeProviders {
  oai: FakeOpenAi;
  ant: FakeAnthropic;
  /** Both providers configured with the given keys (loadLlmConfig's defaults otherwise). */
  config: LlmConfig;
}

/** Registers the file's hooks; the returned object is filled in by beforeAll. */
export function useFakeProviders(keys: { openai?: string; anthropic?: string } = {}): FakeProviders {
  const fakes = {} as FakeProviders;
  beforeAll(async () => {
    fakes.oai = await startFakeOpenAi();
    fakes.ant = await startFakeAnthropic();
    fakes.config = loadLlmConfig({
      OPENAI_API_KEY: keys.openai ?? 'sk-test',
      OPENAI_BASE_URL: fakes.oai.baseUrl,
      ANTHROPIC_API_KEY: keys.anthropic ?? 'ak-test',
      ANTHROPIC_BASE_URL: fakes.ant.baseUrl,
    })!;
  });
  afterAll(async () => {
    await fakes.oai?.stop();
    await fakes.ant?.stop();
  });
  beforeEach(() => {
    fakes.oai.reset();
    fakes.ant.reset();
  });
  return fakes;
}
