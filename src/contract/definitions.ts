// Wire schemas of the definition routes (PRODUCT.md §3 "Definitions", seed 003 shapes): the API
// validates and documents with them, the SDK is typed from them.
import { Type, type Static } from 'typebox';
import { ID_REGEX } from './tasks.js';

const JsonSchemaObject = Type.Record(Type.String(), Type.Unknown(), {
  description: 'JSON Schema 2020-12 (draft-07 when `$schema` says so); must compile; no `$id`',
});
export const DefinitionConfig = Type.Object(
  {
    method: Type.Optional(Type.Union(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'].map((m) => Type.Literal(m)), { description: 'http' })),
    url: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'http: URL template with {{input.path}} placeholders (SSRF-guarded at run time)' })),
    headers: Type.Optional(Type.Record(
      Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$" }),
      Type.String({ maxLength: 8192, pattern: '^[\\t\\x20-\\x7e\\x80-\\xff]*$' }),
      { additionalProperties: false, maxProperties: 50, description: 'http: request headers; write-only (never returned: they may hold credentials)' },
    )),
    prompt: Type.Optional(Type.String({ minLength: 1, maxLength: 20_000, description: 'agent: prompt template with {{field}} placeholders from the input' })),
    system: Type.Optional(Type.String({ maxLength: 20_000, description: 'agent: system prompt' })),
    mode: Type.Optional(Type.Union([Type.Literal('simple'), Type.Literal('standard'), Type.Literal('complex'), Type.Literal('supervisor')], { description: 'agent' })),
    model_tier: Type.Optional(Type.Union([Type.Literal('small'), Type.Literal('medium'), Type.Literal('large')], { description: 'agent' })),
  },
  { additionalProperties: false, description: "Executor settings; each kind takes only its own keys (approval: none). Write-only: responses leave config out." },
);
export const DefinitionBody = Type.Object(
  {
    id: Type.Optional(Type.String({ pattern: ID_REGEX, description: 'if given, must equal the path id' })),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    version: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    kind: Type.Union([Type.Literal('http'), Type.Literal('agent'), Type.Literal('approval')], { description: 'declarative kinds only' }),
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'seed 003 classification, shown in listings' })),
    input_schema: Type.Optional(JsonSchemaObject),
    output_schema: Type.Optional(JsonSchemaObject),
    priority: Type.Optional(Type.Union([Type.Literal('low'), Type.Literal('medium'), Type.Literal('high'), Type.Literal('urgent')])),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
    retry_policy: Type.Optional(Type.Object(
      {
        max_retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
        retry_interval_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
        backoff_multiplier: Type.Optional(Type.Number({ minimum: 1, maximum: 10 })),
      },
      { additionalProperties: false },
    )),
    approval: Type.Optional(Type.Object(
      { required: Type.Boolean(), timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86_400_000 })) },
      { additionalProperties: false },
    )),
    config: Type.Optional(DefinitionConfig),
  },
  { additionalProperties: false },
);

export const DefinitionListQuery = Type.Object(
  {
    type: Type.Optional(Type.String({ maxLength: 64 })),
    search: Type.Optional(Type.String({ maxLength: 200 })),
    page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  },
  { additionalProperties: false },
);

export const DefinitionSummary = Type.Object({ id: Type.String(), name: Type.String(), description: Type.String(), type: Type.String(), kind: Type.String(), version: Type.String() });
export const DefinitionDetail = Type.Object({
  id: Type.String(), name: Type.String(), description: Type.String(), type: Type.String(), kind: Type.String(), version: Type.String(),
  input_schema: Type.Unknown(), output_schema: Type.Unknown(), priority: Type.String(), timeout_ms: Type.Union([Type.Number(), Type.Null()]),
  retry_policy: Type.Unknown(), approval: Type.Unknown(),
});
export const DefinitionList = Type.Object({
  items: Type.Array(DefinitionSummary),
  pagination: Type.Object({ page: Type.Integer(), limit: Type.Integer(), total_items: Type.Integer(), total_pages: Type.Integer() }),
});

export type DefinitionBody = Static<typeof DefinitionBody>;
export type DefinitionSummary = Static<typeof DefinitionSummary>;
export type DefinitionDetail = Static<typeof DefinitionDetail>;
export type DefinitionList = Static<typeof DefinitionList>;
