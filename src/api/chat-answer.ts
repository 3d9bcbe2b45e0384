// What a chat completion answers for its agent task: the answer text a stream may send as it
// comes (ChatAnswer), the finish_reason and usage OpenAI's clients read, and the error for a task
// that ended without an answer.
import type { TaskEvent } from '../contract/events.js';
import { NO_RETRY, OpenAiError } from './openai-errors.js';

export interface ChatTaskView {
  status: string;
  result: string | null;
  error: string | null;
  usage: { input_tokens: number; output_tokens: number; total_tokens: number; estimated_cost: number } | null;
  model_used: string | null;
}

/** OpenAI's usage object of a task's usage (zeros for a task that has none). */
export function usageOf(v: ChatTaskView) {
  const u = v.usage ?? { input_tokens: 0, output_tokens: 0, total_tokens: 0 };
  return { prompt_tokens: u.input_tokens, completion_tokens: u.output_tokens, total_tokens: u.total_tokens };
}

/**
 * The choice's finish_reason: the provider's, from the task's last LLM_OUTPUT event (the answer's
 * call), when OpenAI's clients know it — `length` tells them the text was cut at the output limit
 * (Anthropic's `max_tokens`); anything else (`tool_calls`, `end_turn`, none) is `stop`.
 */
export function finishReasonOf(payload: Record<string, unknown> | null | undefined): string {
  const reason = payload?.finish_reason;
  if (reason === 'length' || reason === 'max_tokens') return 'length';
  return reason === 'content_filter' ? 'content_filter' : 'stop';
}

/**
 * What a chat stream sends of an agent's answer deltas, so that what the client adds up is the
 * task's `result` — or, when it cannot be, the stream says so instead of ending on other text.
 * The answer is the text of the task's last answer call; the client's text (`sent`) only ever
 * grows, so a call's text is sent as far as it extends `sent`:
 * - a call that may end in tool calls (`with_tools`) is held: text a model writes before calling
 *   a tool is not the answer. It is offered when its LLM_OUTPUT shows no tool calls;
 * - a retried call (`attempt`) or task (`task_attempt`, WORKFLOW_STARTED) starts its text over:
 *   nothing is sent until it passes what the client has, and nothing at all if it differs.
 * Replayed calls send no deltas; `finish` sends the rest of the result in one piece.
 */
export class ChatAnswer {
  /** The text the client has, or is queued for it (ChatStreamWriter). */
  sent = '';
  #texts = new Map<string, string>();
  #latest = new Map<string, string>();
  /** The call (key) whose text `sent` is: its next delta is what the client lacks. */
  #sentKey: string | undefined;

  /** The content to send for a followed event ('' for none). */
  push(event: TaskEvent): string {
    const p = event.payload ?? {};
    if (event.type === 'WORKFLOW_STARTED') {
      this.#texts.clear();
      this.#latest.clear();
      this.#sentKey = undefined;
      return '';
    }
    if (event.type === 'LLM_OUTPUT') {
      const key = typeof p.call_id === 'string' ? this.#latest.get(p.call_id) : undefined;
      const toolCalls = Array.isArray(p.tool_calls) ? p.tool_calls.length : 0;
      return key !== undefined && toolCalls === 0 ? this.#offer(key, this.#texts.get(key) ?? '') : '';
    }
    if (event.type !== 'LLM_PARTIAL' || p.answer !== true) return '';
    const delta = typeof p.delta === 'string' ? p.delta : event.message ?? '';
    const callId = String(p.call_id ?? '');
    const key = `${String(p.task_attempt ?? '')}|${callId}|${String(p.attempt ?? '')}`;
    const text = (this.#texts.get(key) ?? '') + delta;
    this.#texts.set(key, text);
    this.#latest.set(callId, key);
    if (p.with_tools === true) return '';
    // the call the client follows: no comparison of the whole text per delta (O(answer) each: an
    // answer of 38,000 deltas of 100 characters blocked the event loop for minutes, past the lease)
    if (key === this.#sentKey) {
      this.sent = text;
      return delta;
    }
    return this.#offer(key, text);
  }

  /** The rest of `result` to send, or undefined when the client was sent text that is not its start. */
  finish(result: string): string | undefined {
    if (!result.startsWith(this.sent)) return undefined;
    const rest = result.slice(this.sent.length);
    this.sent = result;
    this.#sentKey = undefined;
    return rest;
  }

  #offer(key: string, text: string): string {
    if (text.length <= this.sent.length || !text.startsWith(this.sent)) return '';
    const rest = text.slice(this.sent.length);
    this.sent = text;
    this.#sentKey = key;
    return rest;
  }
}

/**
 * The answer for a task that ended without one. A cancel is a 400, a status no client retries (the
 * Vercel AI SDK ignores x-should-retry and retries 409 and ≥500 — a cancel is the one outcome it
 * must not undo).
 */
export function failureOf(v: ChatTaskView | undefined): OpenAiError {
  if (!v) return new OpenAiError(500, 'the task disappeared', 'server_error', 'task_lost');
  if (v.status === 'TIMEOUT') return new OpenAiError(504, v.error ?? 'the task timed out', 'server_error', 'timeout', null, NO_RETRY);
  if (v.status === 'CANCELLED') return new OpenAiError(400, 'the task was cancelled', 'invalid_request_error', 'task_cancelled', null, NO_RETRY);
  return new OpenAiError(500, v.error ?? 'the task failed', 'server_error', 'task_failed', null, NO_RETRY);
}
