// A chat completion request turned into the agent task it runs (POST /v1/chat/completions): what is
// refused (OpenAI's 400s), which model ids map to which tier, and the submit-time check every
// agent task passes (shared with POST /api/v1/tasks).
import { ApiError } from '../contract/errors.js';
import { ID_REGEX, type SubmitTaskBody } from '../contract/tasks.js';
import { MODEL_TIERS, ModelRouteError, knownModels, llmNotConfiguredMessage, priceFor, resolveModel, tokenBudgetProblem, type LlmConfig, type ModelTier } from '../config/llm.js';
import { OpenAiError, invalid } from './openai-errors.js';

/** The model id that means "the default tier"; `taskgate-<tier>` picks a tier. */
export const TASKGATE_MODEL = 'taskgate';

function textOf(content: unknown, index: number): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    return content
      .map((part: { type?: unknown; text?: unknown }, j) => {
        if (part?.type !== 'text') {
          throw invalid(`messages[${index}].content: only text parts are supported, got ${String(part?.type)}`, `messages[${index}].content`, 'unsupported_content');
        }
        if (typeof part.text !== 'string') throw invalid(`messages[${index}].content[${j}].text must be a string`, `messages[${index}].content[${j}].text`);
        return part.text;
      })
      .join('');
  }
  throw invalid(`messages[${index}].content must be a string or an array of text parts`, `messages[${index}].content`);
}

export interface ChatBody {
  model?: unknown;
  messages?: unknown;
  stream?: unknown;
  stream_options?: { include_usage?: unknown } | null;
  n?: unknown;
  tools?: unknown;
  functions?: unknown;
  response_format?: unknown;
  mode?: unknown;
  research_strategy?: unknown;
}

/** Maps a chat model id to the agent's model fields; undefined when unknown. */
export function chatModelFields(llm: LlmConfig, model: string): Pick<SubmitTaskBody, 'model_tier' | 'model_override'> | undefined {
  if (model === TASKGATE_MODEL) return {};
  const tier = model.startsWith(`${TASKGATE_MODEL}-`) ? model.slice(TASKGATE_MODEL.length + 1) : undefined;
  if (tier && MODEL_TIERS.includes(tier as ModelTier)) return { model_tier: tier as ModelTier };
  if (knownModels(llm).some((r) => r.model === model) || priceFor(llm, model) !== undefined) return { model_override: model };
  return undefined;
}

export function listModels(llm: LlmConfig | undefined, created: number) {
  if (!llm) return [];
  const out = [TASKGATE_MODEL, ...MODEL_TIERS.map((t) => `${TASKGATE_MODEL}-${t}`)].map((id) => ({ id, object: 'model' as const, created, owned_by: 'taskgate' }));
  const seen = new Set(out.map((m) => m.id));
  for (const r of knownModels(llm)) {
    if (seen.has(r.model)) continue;
    seen.add(r.model);
    out.push({ id: r.model, object: 'model', created, owned_by: r.provider });
  }
  return out;
}

/**
 * Validates a chat request and turns it into the agent task body. A malformed request is a 400
 * whether or not an LLM is configured; a well-formed one without an LLM is 422 llm_not_configured.
 */
export function chatToTask(llm: LlmConfig | undefined, body: ChatBody, sessionHeader: string | undefined): { task: SubmitTaskBody; model: string; stream: boolean; includeUsage: boolean; lastIndex: number } {
  if (typeof body.model !== 'string' || !body.model) throw invalid('you must provide a model parameter', 'model');
  if (!Array.isArray(body.messages) || body.messages.length === 0) throw invalid('messages must be a non-empty array', 'messages');
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw invalid('only n = 1 is supported', 'n');
  if ((Array.isArray(body.tools) && body.tools.length) || (Array.isArray(body.functions) && body.functions.length)) {
    throw invalid('client-side tools are not supported: Taskgate agents run their own tools', 'tools', 'unsupported_parameter');
  }
  // structured-output helpers (openai .parse, AI SDK generateObject, LangChain withStructuredOutput)
  // would get the agent's prose and fail to parse it; the sampling parameters are taken and
  // ignored instead (the agent's configuration decides them), as they change no answer's shape
  const format = body.response_format as { type?: unknown } | null | undefined;
  if (format !== undefined && format !== null && format?.type !== 'text') {
    const type = typeof format === 'object' ? String(format.type) : typeof format;
    throw invalid(`response_format ${type} is not supported: Taskgate agents answer in text`, 'response_format', 'unsupported_parameter');
  }
  const messages = body.messages.map((m: { role?: unknown; content?: unknown }, i) => {
    if (typeof m?.role !== 'string') throw invalid(`messages[${i}].role is required`, `messages[${i}].role`);
    return { role: m.role, content: textOf(m.content, i) };
  });
  for (const name of ['mode', 'research_strategy'] as const) {
    // its values are the canonical submit's to check; a value that is not even a string is refused here, not dropped
    if (body[name] !== undefined && body[name] !== null && typeof body[name] !== 'string') throw invalid(`${name} must be a string`, name);
  }
  const last = messages[messages.length - 1]!;
  if (last.role !== 'user' || !last.content.trim()) throw invalid('the last message must be a non-empty user message', `messages[${messages.length - 1}]`);
  if (sessionHeader !== undefined && !new RegExp(ID_REGEX).test(sessionHeader)) throw invalid('X-Session-ID must match ' + ID_REGEX, 'X-Session-ID');
  if (!llm) throw new OpenAiError(422, llmNotConfiguredMessage, 'invalid_request_error', 'llm_not_configured');
  const fields = chatModelFields(llm, body.model);
  if (!fields) throw new OpenAiError(404, `The model '${body.model}' does not exist`, 'invalid_request_error', 'model_not_found', 'model');
  const earlier = messages.slice(0, -1).filter((m) => ['system', 'developer', 'user', 'assistant'].includes(m.role));
  // with a session the server remembers the turns; only instructions are taken from the request
  const history = sessionHeader ? earlier.filter((m) => m.role === 'system' || m.role === 'developer') : earlier;
  const task: SubmitTaskBody = {
    query: last.content,
    ...fields,
    ...(sessionHeader ? { session_id: sessionHeader } : {}),
    context: { ...(history.length ? { history } : {}), source: 'openai' },
    ...(typeof body.mode === 'string' ? { mode: body.mode as SubmitTaskBody['mode'] } : {}),
    ...(typeof body.research_strategy === 'string' ? { research_strategy: body.research_strategy as SubmitTaskBody['research_strategy'] } : {}),
    metadata: { source: 'openai', tags: ['openai'] },
  };
  const stream = body.stream === true;
  return { task, model: body.model, stream, includeUsage: stream && body.stream_options?.include_usage === true, lastIndex: messages.length - 1 };
}

/**
 * The submit's refusals of fields the chat route made up, named by the field the client sent: the
 * earlier messages become `context.history` (capped at TASKGATE_MAX_OBJECT_BYTES, 64 KiB by
 * default) and the last one `query` (10,000 characters) — a client told about `context` has no
 * such field to fix.
 */
export function inTermsOfMessages(err: unknown, lastIndex: number): unknown {
  if (!(err instanceof ApiError) || err.code !== 'VALIDATION_ERROR') return err;
  const path = err.details?.path;
  if (path === 'context' || (typeof path === 'string' && path.startsWith('context.history'))) {
    const bytes = /(\d+) bytes/.exec(err.message)?.[1];
    const limit = bytes ? ` (at most ${bytes} bytes)` : '';
    return invalid(
      `messages: the conversation before the last message is too large${limit}; send fewer or shorter messages, or an X-Session-ID header so the server keeps the turns`,
      'messages', 'context_length_exceeded',
    );
  }
  if (path === 'query') {
    const param = `messages[${lastIndex}].content`;
    return invalid(err.message.replace(/^query\b/, param), param);
  }
  return err;
}

/**
 * The submit-time check for tasks an agent runs (free-text tasks and `agent` definitions):
 * 400 for a context.token_budget no session can hold, 422 LLM_NOT_CONFIGURED without a provider,
 * 400 for an unknown model_override/provider_override. Shared by POST /api/v1/tasks and the chat route.
 */
export function assertAgentTaskRunnable(llm: LlmConfig | undefined, task: { kind: string; options: Record<string, unknown>; context: Record<string, unknown> }, definitionKind?: string): void {
  const runsAgent = task.kind === 'agent' ? task.context?.disable_ai !== true : definitionKind === 'agent';
  if (!runsAgent) return;
  const budgetProblem = tokenBudgetProblem(task.context?.token_budget);
  if (budgetProblem) throw new ApiError('VALIDATION_ERROR', budgetProblem, { path: 'context.token_budget', reason: 'invalid value' });
  if (!llm) throw new ApiError('LLM_NOT_CONFIGURED', llmNotConfiguredMessage);
  const o = task.options ?? {};
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  try {
    resolveModel(llm, { model_tier: str(o.model_tier), model_override: str(o.model_override), provider_override: str(o.provider_override) });
  } catch (err) {
    if (!(err instanceof ModelRouteError)) throw err;
    const path = err.code === 'UNKNOWN_MODEL' ? 'model_override' : 'provider_override';
    throw new ApiError('VALIDATION_ERROR', err.message, { path, reason: err.code === 'UNKNOWN_MODEL' ? 'unknown model' : 'unknown provider' });
  }
}
