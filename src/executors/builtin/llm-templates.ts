// Seed 004's LLM task kinds as shipped `agent` definitions: the input (seed 004's `args`) is
// validated against its schema, then config.prompt is rendered from it and run in simple mode.
// email_draft's schema is seed 004's EMAIL_DRAFT_ARGS_SCHEMA verbatim; the seed gives the other
// two only as "an object with at least one property", so theirs are written in the same style.
import type { TaskDefinition } from '../types.js';

const anyOutput = {
  description: 'The answer is in `result`; `output` holds it parsed when the model answered with JSON, else null.',
};

export const emailDraft: TaskDefinition = {
  id: 'email_draft',
  name: 'Email draft',
  description: 'Drafts an email to a recipient about a subject from the given content (LLM)',
  version: '1.0.0',
  kind: 'agent',
  type: 'email_draft',
  input_schema: {
    type: 'object',
    properties: {
      recipient: { type: 'string', format: 'email' },
      subject: { type: 'string', minLength: 1, maxLength: 200 },
      content: { type: 'string', minLength: 1 },
      tone: { type: 'string', enum: ['formal', 'casual', 'friendly', 'professional'] },
      length: { type: 'string', enum: ['short', 'medium', 'long'] },
    },
    required: ['recipient', 'subject', 'content'],
    additionalProperties: false,
  },
  output_schema: anyOutput,
  timeout_ms: 120_000,
  config: {
    mode: 'simple',
    model_tier: 'small',
    system: 'You write clear, well-structured emails. Reply with the email only: a "Subject:" line, a blank line, then the body. No commentary.',
    prompt:
      'Draft an email to {{recipient}} with the subject "{{subject}}".\n' +
      'Tone: {{tone|professional}}. Length: {{length|medium}}.\n' +
      'What the email must say:\n{{content}}',
  },
};

export const reportGeneration: TaskDefinition = {
  id: 'report_generation',
  name: 'Report generation',
  description: 'Writes a structured report on a title from source content (LLM)',
  version: '1.0.0',
  kind: 'agent',
  type: 'report_generation',
  input_schema: {
    type: 'object',
    properties: {
      title: { type: 'string', minLength: 1, maxLength: 200 },
      content: { type: 'string', minLength: 1, description: 'source material, notes or data the report is based on' },
      audience: { type: 'string', maxLength: 200 },
      sections: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 200 }, maxItems: 20 },
      format: { type: 'string', enum: ['markdown', 'html', 'text'] },
      length: { type: 'string', enum: ['short', 'medium', 'long'] },
    },
    required: ['title', 'content'],
    additionalProperties: false,
  },
  output_schema: anyOutput,
  timeout_ms: 300_000,
  config: {
    mode: 'simple',
    model_tier: 'medium',
    system: 'You are an analyst who writes accurate, well-organised reports. Use only the source material; say so when it is insufficient.',
    prompt:
      'Write a {{length|medium}} report titled "{{title}}" in {{format|markdown}}.\n' +
      '{{#audience}}Audience: {{audience}}.\n{{/audience}}' +
      '{{#sections}}Sections, in this order: {{sections}}.\n{{/sections}}' +
      'Source material:\n{{content}}',
  },
};

export const contentReview: TaskDefinition = {
  id: 'content_review',
  name: 'Content review',
  description: 'Reviews content against criteria and returns a JSON verdict with issues and suggestions (LLM)',
  version: '1.0.0',
  kind: 'agent',
  type: 'content_review',
  input_schema: {
    type: 'object',
    properties: {
      content: { type: 'string', minLength: 1 },
      content_type: { type: 'string', enum: ['article', 'email', 'marketing', 'documentation', 'social_post', 'code', 'other'] },
      criteria: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 200 }, maxItems: 20 },
      guidelines: { type: 'string', maxLength: 10_000 },
    },
    required: ['content'],
    additionalProperties: false,
  },
  output_schema: anyOutput,
  timeout_ms: 120_000,
  config: {
    mode: 'simple',
    model_tier: 'small',
    system:
      'You are an exacting editor. Reply with JSON only, no prose and no code fences: ' +
      '{"approved": boolean, "score": number from 0 to 10, "issues": [string], "suggestions": [string], "summary": string}',
    prompt:
      'Review this {{content_type|other}} content.\n' +
      '{{#criteria}}Criteria: {{criteria}}.\n{{/criteria}}' +
      '{{#guidelines}}Guidelines:\n{{guidelines}}\n{{/guidelines}}' +
      'Content:\n{{content}}',
  },
};

/** The LLM-backed shipped definitions; without a provider their submits answer 422 LLM_NOT_CONFIGURED. */
export const llmTemplates: readonly TaskDefinition[] = [emailDraft, reportGeneration, contentReview];
