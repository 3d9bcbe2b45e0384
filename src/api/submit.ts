// From a submit body to a stored task: aliases resolved, definition looked up and its input
// validated, defaults applied (definition, then built-in), limits checked.
import { ApiError } from '../contract/errors.js';
import type { SubmitTaskBody } from '../contract/tasks.js';
import { DEFAULT_RETRY_POLICY, PRIORITIES, parsePriority, priorityRank, type Priority } from '../domain/lifecycle.js';
import { notOneOf } from './errors.js';
import { newSessionId, newTaskId } from '../domain/ids.js';
import type { NewTask } from '../storage/queries/tasks.js';
import type { Principal } from '../auth/scopes.js';
import type { DefinitionCatalog } from './deps.js';
import { parseInstant } from './task-view.js';

const AGENT_OPTION_KEYS = [
  'model_tier', 'model_override', 'provider_override', 'research_strategy', 'max_iterations', 'max_concurrent_agents', 'enable_verification',
] as const;
const MODEL_FIELDS = ['model_tier', 'model_override', 'provider_override'] as const;

export interface SubmitLimits {
  maxObjectBytes: number;
  defaultTimeoutMs: number;
}

function byteSize(value: unknown): number {
  return value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value));
}

/**
 * The value of a field sent under its canonical name or an alias (seed spellings): a 400 when two
 * of them disagree — the one that would have lost was silently ignored (a task ran `noop` while
 * its `type` said `sleep`). The same value twice is fine.
 */
export function aliased<T>(fields: readonly (readonly [name: string, value: T | undefined])[]): T | undefined {
  let first: readonly [string, T] | undefined;
  for (const [name, value] of fields) {
    if (value === undefined) continue;
    if (!first) first = [name, value];
    else if (value !== first[1]) {
      const [canonical, ...aliases] = fields.map(([n]) => n);
      throw new ApiError('VALIDATION_ERROR', `send ${canonical} or its alias${aliases.length > 1 ? 'es' : ''} ${aliases.join(', ')}, not several with different values`, {
        path: name, reason: `conflicts with ${first[0]}`,
      });
    }
  }
  return first?.[1];
}

/** The priority words, lowest first (as the docs list them; any case is accepted). */
const PRIORITY_WORDS = [...PRIORITIES].reverse();

/** The definition a submit names (task_definition_id, or its aliases taskDefinitionId and type). */
export function definitionIdOf(body: SubmitTaskBody): string | undefined {
  return aliased([['task_definition_id', body.task_definition_id], ['taskDefinitionId', body.taskDefinitionId], ['type', body.type]]);
}

export function buildTask(
  body: SubmitTaskBody,
  principal: Principal,
  catalog: DefinitionCatalog,
  limits: SubmitLimits,
  traceparent: string | undefined,
): NewTask {
  const definitionId = definitionIdOf(body);
  const hasQuery = body.query !== undefined;
  if (hasQuery && definitionId) throw new ApiError('VALIDATION_ERROR', 'send either query (agent task) or task_definition_id (definition task), not both');
  if (!hasQuery && !definitionId) throw new ApiError('VALIDATION_ERROR', 'query is required (or task_definition_id for a definition task)', { path: 'query', reason: 'is required' });
  if (body.input !== undefined && body.args !== undefined) throw new ApiError('VALIDATION_ERROR', 'send input or its alias args, not both');
  // an agent task runs its query: an input beside it was stored as null, silently
  if (!definitionId) {
    for (const field of ['input', 'args'] as const) {
      if (body[field] !== undefined) throw new ApiError('VALIDATION_ERROR', `${field} is for definition tasks (with task_definition_id); an agent task takes query and context`, { path: field, reason: 'not allowed with query' });
    }
  }
  if (body.run_at !== undefined && body.delay_ms !== undefined) throw new ApiError('VALIDATION_ERROR', 'send run_at or delay_ms, not both');

  for (const [name, value] of [['context', body.context], ['metadata', body.metadata]] as const) {
    if (byteSize(value) > limits.maxObjectBytes) {
      throw new ApiError('VALIDATION_ERROR', `${name} is larger than ${limits.maxObjectBytes} bytes`, { path: name, reason: 'too large' });
    }
  }

  const context = { ...(body.context ?? {}) };
  if (context.disable_ai === true && MODEL_FIELDS.some((f) => body[f] !== undefined || context[f] !== undefined)) {
    throw new ApiError('VALIDATION_ERROR', 'context.disable_ai cannot be combined with model_tier, model_override or provider_override');
  }

  let priority: Priority | undefined;
  if (body.priority !== undefined) {
    priority = parsePriority(body.priority);
    if (!priority) throw notOneOf('priority', PRIORITY_WORDS);
  }

  let kind: NewTask['kind'] = 'agent';
  let input: unknown = null;
  const def = definitionId ? catalog.get(principal.tenantId, definitionId) : undefined;
  if (definitionId) {
    if (!def) throw new ApiError('NOT_FOUND', `task definition ${definitionId} not found`, { task_definition_id: definitionId });
    kind = 'definition';
    input = body.input ?? body.args ?? {};
    if (byteSize(input) > limits.maxObjectBytes * 4) throw new ApiError('VALIDATION_ERROR', `input is larger than ${limits.maxObjectBytes * 4} bytes`);
    const violation = catalog.validateInput(def, input);
    if (violation) {
      throw new ApiError('UNPROCESSABLE', `input ${violation.path === '/' ? '' : violation.path + ' '}${violation.reason}`.replace(/\s+/g, ' ').trim(), {
        path: violation.path, reason: violation.reason, task_definition_id: def.id,
      });
    }
  }

  // top-level agent fields (mode among them) win over the same keys in context — and the stored
  // context says so, so a client reading it back sees the setting the task ran with
  const options: Record<string, unknown> = {};
  for (const k of AGENT_OPTION_KEYS) {
    const v = body[k] ?? context[k];
    if (v === undefined) continue;
    options[k] = v;
    if (body[k] !== undefined && k in context) context[k] = body[k];
  }
  if (body.mode !== undefined && 'mode' in context) context.mode = body.mode;

  const rp = body.retry_policy ?? body.executionConfig?.retryPolicy;
  const defRp = def?.retry_policy;
  const maxRetries = rp?.max_retries ?? rp?.maxRetries ?? defRp?.max_retries ?? DEFAULT_RETRY_POLICY.maxRetries;
  const retryInterval = rp?.retry_interval_ms ?? rp?.retryInterval ?? defRp?.retry_interval_ms ?? DEFAULT_RETRY_POLICY.retryIntervalMs;
  const multiplier = rp?.backoff_multiplier ?? rp?.backoffMultiplier ?? defRp?.backoff_multiplier ?? DEFAULT_RETRY_POLICY.backoffMultiplier;
  const timeoutMs = body.timeout_ms ?? body.executionConfig?.timeout ?? def?.timeout_ms ?? limits.defaultTimeoutMs;

  const runAt = body.run_at === undefined ? null : parseInstant(body.run_at, 'run_at');

  const metadata: Record<string, unknown> = { ...(body.metadata ?? {}) };
  // checked by the schema (strings, at most MAX_TAGS of MAX_TAG_CHARS); the compat route's too
  const tags = Array.isArray(metadata.tags) ? (metadata.tags as string[]) : [];
  if (traceparent) metadata.traceparent = traceparent;

  const sessionId = body.session_id ?? (kind === 'agent' ? newSessionId() : null);
  return {
    id: newTaskId(),
    tenant_id: principal.tenantId,
    user_id: principal.userId,
    session_id: sessionId,
    kind,
    task_definition_id: def?.id ?? null,
    query: body.query ?? '',
    input,
    context,
    options,
    mode: body.mode ?? (typeof context.mode === 'string' ? context.mode : null),
    priority: priorityRank(priority ?? (def?.priority as Priority | undefined) ?? 'medium'),
    max_attempts: maxRetries + 1,
    retry_interval_ms: retryInterval,
    backoff_multiplier: multiplier,
    timeout_ms: timeoutMs,
    run_at: runAt,
    // on the database clock, like created_at: see NewTask.delay_ms (never sent with run_at)
    delay_ms: body.delay_ms || undefined,
    metadata,
    tags,
    workflow_instance_id: aliased([['workflow_instance_id', body.workflow_instance_id], ['workflowInstanceId', body.workflowInstanceId]]) ?? null,
  };
}
