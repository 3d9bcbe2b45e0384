// Wire schemas of the task routes (PRODUCT.md §3). One source: Fastify validates with them,
// handlers are typed from them, and /openapi.json is generated from them.
import { Type, type Static, type TSchema } from 'typebox';
import { ID_PATTERN } from '../domain/ids.js';

/** Tags a task may carry (metadata.tags), and their length: what the tag index holds. */
export const MAX_TAGS = 50;
export const MAX_TAG_CHARS = 128;

export const MAX_QUERY_CHARS = 10_000;
export const ID_REGEX = ID_PATTERN.source;

export const IdParam = Type.Object({ id: Type.String({ pattern: ID_REGEX }) });

// checked by the route (submit.ts), which names the allowed values: a pattern here answered
// `priority must match pattern …` for 'very_urgent' and refused ' Urgent ', which the route trims
const PriorityWord = Type.String({ maxLength: 64, description: 'low|medium|high|urgent, case-insensitive, surrounding spaces ignored' });

export const RetryPolicyBody = Type.Object(
  {
    max_retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    retry_interval_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
    backoff_multiplier: Type.Optional(Type.Number({ minimum: 1, maximum: 10 })),
    // seed 003 spellings
    maxRetries: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    retryInterval: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
    backoffMultiplier: Type.Optional(Type.Number({ minimum: 1, maximum: 10 })),
  },
  { additionalProperties: false },
);

export const SubmitTaskBody = Type.Object(
  {
    query: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_QUERY_CHARS })),
    session_id: Type.Optional(Type.String({ pattern: ID_REGEX })),
    context: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    mode: Type.Optional(Type.Union([Type.Literal('simple'), Type.Literal('standard'), Type.Literal('complex'), Type.Literal('supervisor')])),
    model_tier: Type.Optional(Type.Union([Type.Literal('small'), Type.Literal('medium'), Type.Literal('large')])),
    model_override: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    provider_override: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    research_strategy: Type.Optional(Type.Union([Type.Literal('quick'), Type.Literal('standard'), Type.Literal('deep'), Type.Literal('academic')])),
    max_iterations: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
    max_concurrent_agents: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
    enable_verification: Type.Optional(Type.Boolean()),

    task_definition_id: Type.Optional(Type.String({ pattern: ID_REGEX })),
    taskDefinitionId: Type.Optional(Type.String({ pattern: ID_REGEX })),
    type: Type.Optional(Type.String({ pattern: ID_REGEX })),
    input: Type.Optional(Type.Unknown()),
    args: Type.Optional(Type.Unknown()),

    priority: Type.Optional(PriorityWord),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
    retry_policy: Type.Optional(RetryPolicyBody),
    executionConfig: Type.Optional(
      Type.Object(
        { timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })), retryPolicy: Type.Optional(RetryPolicyBody) },
        { additionalProperties: false },
      ),
    ),
    run_at: Type.Optional(Type.String({ format: 'date-time', description: 'Start no earlier than this time (not with delay_ms).' })),
    delay_ms: Type.Optional(
      Type.Integer({
        minimum: 0, maximum: 31_536_000_000,
        description: "Start no earlier than this many ms after the task's created_at, on the database's clock (not with run_at).",
      }),
    ),
    metadata: Type.Optional(
      Type.Object(
        {
          tags: Type.Optional(
            Type.Array(Type.String({ maxLength: MAX_TAG_CHARS }), {
              maxItems: MAX_TAGS, description: `Labels to filter the list by (?tag=): at most ${MAX_TAGS}, each at most ${MAX_TAG_CHARS} characters.`,
            }),
          ),
        },
        { additionalProperties: true, description: 'Free keys, kept as given; `tags` is indexed.' },
      ),
    ),
    workflow_instance_id: Type.Optional(Type.String({ pattern: ID_REGEX })),
    workflowInstanceId: Type.Optional(Type.String({ pattern: ID_REGEX })),
  },
  { additionalProperties: false },
);
/** `metadata`: free keys kept as given (the schema's `additionalProperties: true`), `tags` checked. */
export type TaskMetadata = { tags?: string[]; [key: string]: unknown };
export type SubmitTaskBody = Omit<Static<typeof SubmitTaskBody>, 'metadata'> & { metadata?: TaskMetadata };

export const SubmitTaskResponse = Type.Object({
  task_id: Type.String(),
  workflow_id: Type.String(),
  session_id: Type.Union([Type.String(), Type.Null()]),
  status: Type.String(),
  message: Type.String(),
  created_at: Type.String(),
});
export type SubmitTaskResponse = Static<typeof SubmitTaskResponse>;

export const SubmitStreamResponse = Type.Object({
  task_id: Type.String(),
  workflow_id: Type.String(),
  session_id: Type.Union([Type.String(), Type.Null()]),
  stream_url: Type.String(),
});
export type SubmitStreamResponse = Static<typeof SubmitStreamResponse>;

/** `T | null` on the wire (every contract file's nullable fields). */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const Usage = Type.Object({
  input_tokens: Type.Number(),
  output_tokens: Type.Number(),
  total_tokens: Type.Number(),
  estimated_cost: Type.Number(),
});
export type Usage = Static<typeof Usage>;

export const TaskView = Type.Object({
  task_id: Type.String(),
  workflow_id: Type.String(),
  status: Type.String(),
  query: Type.String(),
  input: Type.Unknown(),
  task_definition_id: Nullable(Type.String()),
  session_id: Nullable(Type.String()),
  mode: Nullable(Type.String()),
  priority: Type.String(),
  context: Type.Unknown(),
  result: Nullable(Type.String()),
  response: Type.Unknown(),
  output: Type.Unknown(),
  error: Nullable(Type.String()),
  attempts: Type.Integer(),
  max_attempts: Type.Integer(),
  model_used: Nullable(Type.String()),
  provider: Nullable(Type.String()),
  usage: Usage,
  metadata: Type.Unknown(),
  workflow_instance_id: Nullable(Type.String()),
  run_at: Type.String(),
  execution_metadata: Type.Object({
    start_time: Nullable(Type.String()),
    end_time: Nullable(Type.String()),
    duration_ms: Nullable(Type.Number()),
    worker_id: Nullable(Type.String()),
  }),
  created_at: Type.String(),
  started_at: Nullable(Type.String()),
  completed_at: Nullable(Type.String()),
  updated_at: Type.String(),
});
export type TaskView = Static<typeof TaskView>;

/** Deepest offset a list may start at (the database reads every row before it). */
export const MAX_LIST_OFFSET = 1_000_000;

export const ListTasksQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_LIST_OFFSET })),
    page: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: '1-based; (page - 1) × limit at most 1,000,000, as offset' })),
    status: Type.Optional(Type.String({ maxLength: 200 })),
    session_id: Type.Optional(Type.String({ pattern: ID_REGEX })),
    task_definition_id: Type.Optional(Type.String({ pattern: ID_REGEX })),
    type: Type.Optional(Type.String({ pattern: ID_REGEX })),
    workflow_instance_id: Type.Optional(Type.String({ pattern: ID_REGEX })),
    workflowInstanceId: Type.Optional(Type.String({ pattern: ID_REGEX, description: 'seed 003 spelling of workflow_instance_id' })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);
export type ListTasksQuery = Static<typeof ListTasksQuery>;

export const TaskListItem = Type.Object({
  task_id: Type.String(),
  query: Type.String(),
  status: Type.String(),
  mode: Nullable(Type.String()),
  priority: Type.String(),
  task_definition_id: Nullable(Type.String()),
  session_id: Nullable(Type.String()),
  created_at: Type.String(),
  completed_at: Nullable(Type.String()),
  total_token_usage: Type.Object({
    total_tokens: Type.Number(),
    cost_usd: Type.Number(),
    prompt_tokens: Type.Number(),
    completion_tokens: Type.Number(),
  }),
});
export type TaskListItem = Static<typeof TaskListItem>;

export const ListTasksResponse = Type.Object({
  tasks: Type.Array(TaskListItem),
  total_count: Type.Integer(),
  limit: Type.Integer(),
  offset: Type.Integer(),
});
export type ListTasksResponse = Static<typeof ListTasksResponse>;

export const EventsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
  },
  { additionalProperties: false },
);

export const TaskEventSchema = Type.Object({
  workflow_id: Type.String(),
  type: Type.String(),
  agent_id: Type.Optional(Nullable(Type.String())),
  message: Type.Optional(Nullable(Type.String())),
  payload: Type.Optional(Type.Unknown()),
  timestamp: Type.String(),
  seq: Type.Integer(),
  stream_id: Type.Optional(Nullable(Type.String())),
});

export const EventsResponse = Type.Object({ events: Type.Array(TaskEventSchema), count: Type.Integer() });
export type EventsResponse = Static<typeof EventsResponse>;

/** Pause and resume: `{reason?}` (PRODUCT §3). */
export const ControlBody = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false });
export type ControlBody = Static<typeof ControlBody>;

/** Cancel: `{reason?, force?}` — force ends a running task at once instead of at its next step. */
export const CancelBody = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 1000 })), force: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export type CancelBody = Static<typeof CancelBody>;

export const ControlResponse = Type.Object({
  success: Type.Boolean(),
  message: Type.String(),
  task_id: Type.String(),
  status: Type.String(),
});
export type ControlResponse = Static<typeof ControlResponse>;

export const ControlState = Type.Object({
  is_paused: Type.Boolean(),
  is_cancelled: Type.Boolean(),
  paused_at: Nullable(Type.String()),
  pause_reason: Nullable(Type.String()),
  paused_by: Nullable(Type.String()),
  cancel_reason: Nullable(Type.String()),
  cancelled_by: Nullable(Type.String()),
  awaiting_approval: Type.Boolean(),
});
export type ControlState = Static<typeof ControlState>;

export const ErrorResponse = Type.Object({
  error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) }),
  request_id: Type.String(),
});

/** What each error status means, as /openapi.json describes it (docs/errors.md has the codes). */
const ERROR_STATUS_TEXT: Record<number, string> = {
  400: 'The request is invalid',
  401: 'Missing, invalid, expired or revoked credentials (with WWW-Authenticate)',
  403: 'The credential lacks the scope (or the standing) this route needs',
  404: "Not found (another tenant's objects are not found either)",
  405: 'Not allowed on this server',
  409: 'Conflict with the current state (or an Idempotency-Key still in progress)',
  413: 'Too large: the request body (or, for session events, the answer)',
  415: 'Content-Type must be application/json',
  422: 'Unprocessable (or an Idempotency-Key reused with another request)',
  429: 'Rate limited: too many requests, failed authentications from this address, or open streams (with Retry-After)',
  500: 'Internal server error',
  503: 'Unavailable: the server is shutting down or a dependency is down (with Retry-After)',
  504: 'Timed out',
};

export type RouteAccessKind = 'public' | 'authenticated' | 'scope';

/**
 * The error answers of a route, to spread into its schema's `response` (and so into
 * /openapi.json): what the app answers on every route of the kind, plus the route's own `own`
 * statuses. `schema` is the error body (default: the envelope). From src/api:
 * - every route: 400 (a query value holding a NUL: app.ts; a path that is not valid percent
 *   encoding: errors.ts), 500, and 503 (shutting down: app.ts; the database unreachable: errors.ts);
 * - behind a credential (auth.ts): 401, and 429 (failed authentications from the address, rate
 *   limits, stream caps); `scope` routes 403 too (`authenticated` ones check no scope);
 * - a method whose body Fastify parses (POST, PUT, PATCH, DELETE; json-parser.ts): 400 (malformed,
 *   too deep, schema), 413 (over the body limit), 415 (not application/json);
 * - a POST behind a credential (idempotency.ts): 400 (malformed Idempotency-Key), 409 (the key
 *   still in flight), 422 (the key used with another request).
 */
export function errorResponses<S extends TSchema = typeof ErrorResponse>(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  access: RouteAccessKind,
  own: readonly number[] = [],
  schema: S = ErrorResponse as unknown as S,
): Record<number, S> {
  const statuses = new Set<number>([...own, 400, 500, 503]);
  if (access !== 'public') [401, 429].forEach((s) => statuses.add(s));
  if (access === 'scope') statuses.add(403);
  if (method !== 'GET') [400, 413, 415].forEach((s) => statuses.add(s));
  if (method === 'POST' && access !== 'public') [400, 409, 422].forEach((s) => statuses.add(s));
  const out: Record<number, S> = {};
  for (const status of [...statuses].sort((a, b) => a - b)) out[status] = { ...schema, description: ERROR_STATUS_TEXT[status] ?? 'Error' };
  return out;
}
