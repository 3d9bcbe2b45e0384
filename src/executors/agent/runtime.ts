// One task's agent runtime: every LLM call and tool call is a durable step (a replay reads the
// stored result and never pays twice), with its events, usage, cost and the session token budget.
import { priceFor, priceOf, type LlmConfig, type ModelRef } from '../../config/llm.js';
import { PermanentError, type TaskContext } from '../types.js';
import type { RecordSessionUsage, ReleaseSessionTokens, ReserveSessionTokens } from './history.js';
import type { LlmClient } from './llm-client.js';
import type { ChatMessage, ToolCall, ToolSpec } from './providers/types.js';
import { ToolError, clip, type AgentTool } from './tools/types.js';
import { UsageLedger, roundUsd } from './usage.js';

/** BUDGET_THRESHOLD fires when a session crosses this share of its token budget. */
export const BUDGET_THRESHOLD_RATIO = 0.8;
/** Characters of prompt/output copied into persisted events (the full text is in the steps). */
export const EVENT_TEXT_CHARS = 4_000;

/** What a finished LLM step stores (and a replay returns). */
export interface StoredCall {
  text: string;
  toolCalls: ToolCall[];
  usage: { input_tokens: number; output_tokens: number; total_tokens: number; estimated_cost: number };
  model: string;
  provider: string;
  finishReason: string;
}

export interface StoredTool {
  ok: boolean;
  output: string;
}

export interface SessionAccount {
  sessionId: string;
  record: RecordSessionUsage;
  /** With a budget, each call reserves its estimate first (see ReserveSessionTokens). */
  reserve?: ReserveSessionTokens;
  release?: ReleaseSessionTokens;
}

export interface BudgetState {
  /** 0 = unlimited. */
  limit: number;
  /**
   * The session's tokens_used when this attempt started. With the per-call roll-up on, it
   * already includes this task's calls from earlier attempts, so replayed calls are not added
   * again; without it, every call in the ledger counts.
   */
  usedBefore: number;
}

/**
 * Rough token estimate of a prompt, for budget checks before a call and for a call whose provider
 * reports no usage: 4 characters ≈ 1 token. `tools`: the definitions sent with the call, part of
 * the prompt the provider bills, counted as their JSON: the four built-in tools are 1,534
 * characters (~384 tokens; run_task lists up to 4,000 more of task definitions) against ~70 tokens
 * for a one-line question under the 250-character system prompt: left out, such a call was
 * estimated at 69 tokens instead of 1,587 (test/agent/usage-estimate.test.ts).
 */
export function estimateTokens(messages: readonly ChatMessage[], tools: readonly ToolSpec[] = []): number {
  let chars = tools.length ? JSON.stringify(tools.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters }))).length : 0;
  for (const m of messages) chars += m.content.length + ('toolCalls' in m && m.toolCalls ? JSON.stringify(m.toolCalls).length : 0);
  return Math.ceil(chars / 4);
}

function budgetExceeded(used: number, limit: number, extra: number): PermanentError {
  return new PermanentError(`session token budget exceeded: ${used} of ${limit} tokens used` + (extra ? `, the next LLM call needs about ${extra} more` : ''));
}

/** Emits without waiting (token deltas must not slow the stream); an emit failure is not the call's. */
function fire(p: Promise<void>): void {
  p.catch(() => undefined);
}

export class AgentRuntime {
  readonly ledger = new UsageLedger();
  llmCalls = 0;
  toolCalls = 0;
  /** Tokens of calls made (not replayed) in this attempt. */
  #freshTokens = 0;
  /** Persisted events are written in order through this chain; see queue(). */
  #chain: Promise<void> = Promise.resolve();
  #chainError: unknown;
  #agents = 0;
  #waiting: (() => void)[] = [];

  constructor(
    readonly ctx: TaskContext,
    readonly config: LlmConfig,
    readonly client: LlmClient,
    readonly candidates: readonly ModelRef[],
    readonly tools: ReadonlyMap<string, AgentTool>,
    readonly budget: BudgetState,
    readonly maxConcurrentAgents: number,
    /** Rolls each call's usage into the session inside the call's step (so never twice). */
    readonly account?: SessionAccount,
  ) {}

  get toolSpecs(): ToolSpec[] {
    return [...this.tools.values()].map((t) => t.spec);
  }

  get tokensUsed(): number {
    return this.budget.usedBefore + (this.account ? this.#freshTokens : this.ledger.totalTokens);
  }

  /**
   * Appends a persisted event without waiting for it: events keep their order, and an LLM call
   * can start while its AGENT_THINKING/LLM_PROMPT are still being written (each is a database
   * write, ~5 ms on PGlite). A failed write surfaces at the next flush() or emit().
   */
  queue(type: string, agentId: string, message: string, payload?: Record<string, unknown>): void {
    this.#chain = this.#chain
      .then(() => this.ctx.emit({ type, agent_id: agentId, message, payload }))
      .catch((err: unknown) => {
        this.#chainError ??= err;
      });
  }

  async flush(): Promise<void> {
    await this.#chain;
    if (this.#chainError !== undefined) throw this.#chainError;
  }

  async emit(type: string, agentId: string, message: string, payload?: Record<string, unknown>): Promise<void> {
    this.queue(type, agentId, message, payload);
    await this.flush();
  }

  /** Runs `fn` as one of at most maxConcurrentAgents concurrent sub-agents. */
  async withAgentSlot<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#agents >= this.maxConcurrentAgents) await new Promise<void>((r) => this.#waiting.push(r));
    this.#agents++;
    try {
      return await fn();
    } finally {
      this.#agents--;
      this.#waiting.shift()?.();
    }
  }

  #checkBudget(extra: number): void {
    const { limit } = this.budget;
    if (limit > 0 && this.tokensUsed + extra > limit) throw budgetExceeded(this.tokensUsed, limit, extra);
  }

  /**
   * Reserves the call's estimate on the session, in the database, so that concurrent tasks of
   * one session cannot all pass the check above on the same stale tokens_used. Answers the
   * tokens reserved (0: no budget, no account, or no session row).
   */
  async #reserve(estimate: number): Promise<number> {
    const { limit } = this.budget;
    const account = this.account;
    if (limit <= 0 || !account?.reserve || estimate <= 0) return 0;
    const r = await account.reserve(this.ctx.tenantId, account.sessionId, estimate, limit);
    if (!r) return 0;
    if (!r.reserved) throw budgetExceeded(r.tokensUsed, limit, estimate);
    return estimate;
  }

  async #release(tokens: number): Promise<void> {
    if (tokens > 0 && this.account?.release) await this.account.release(this.ctx.tenantId, this.account.sessionId, tokens).catch(() => undefined);
  }

  /**
   * One LLM call as durable step `name`. `answer` marks calls whose text may be the final answer
   * (their LLM_PARTIAL deltas carry answer: true, which the OpenAI-compatible stream forwards).
   */
  async callLlm(agentId: string, name: string, messages: ChatMessage[], opts: { tools?: ToolSpec[]; answer: boolean }): Promise<StoredCall> {
    const done = this.ctx.stepInfo(name)?.done === true;
    const estimate = estimateTokens(messages, opts.tools);
    if (!done) this.#checkBudget(estimate);
    const stored = await this.ctx.step<StoredCall>(name, async () => {
      const reservation = { tokens: await this.#reserve(estimate) };
      try {
        return await this.#call(agentId, name, messages, opts, reservation, estimate);
      } catch (err) {
        // not settled: the call failed (or its usage could not be written), give the estimate back
        await this.#release(reservation.tokens);
        throw err;
      }
    });
    this.llmCalls++;
    this.ledger.record({ provider: stored.provider, model: stored.model, input_tokens: stored.usage.input_tokens, output_tokens: stored.usage.output_tokens, cost: stored.usage.estimated_cost });
    this.#checkBudget(0);
    return stored;
  }

  /**
   * The body of an LLM step: events, the call, its cost, and the session's account. `estimate`:
   * the prompt's tokens as estimated for the budget, counted when the provider reports none.
   */
  async #call(agentId: string, name: string, messages: ChatMessage[], opts: { tools?: ToolSpec[]; answer: boolean }, reservation: { tokens: number }, estimate: number): Promise<StoredCall> {
    const before = this.tokensUsed;
    const last = messages[messages.length - 1];
    this.queue('AGENT_THINKING', agentId, `${agentId} is thinking`, { call_id: name });
    this.queue('LLM_PROMPT', agentId, clip(last?.content ?? '', EVENT_TEXT_CHARS), {
      call_id: name,
      messages: messages.length,
      tools: opts.tools?.map((t) => t.name) ?? [],
      candidates: this.candidates.map((c) => `${c.provider}/${c.model}`),
    });
    let attempt = 1;
    const call = this.client.call(this.candidates, {
      messages,
      tools: opts.tools,
      signal: this.ctx.signal,
      traceparent: this.ctx.traceparent,
      onDelta: (delta) => fire(this.ctx.emit({ type: 'LLM_PARTIAL', agent_id: agentId, message: delta, payload: { call_id: name, delta, answer: opts.answer, attempt, task_attempt: this.ctx.attempt, with_tools: Boolean(opts.tools?.length) } })),
      onRetry: (info) => {
        attempt++;
        // delay_ms as the engine's RETRYING names it (delayMs kept for existing readers)
        fire(this.emit('RETRYING', agentId, `LLM call retry ${info.attempt} on ${info.provider} in ${info.delayMs} ms: ${info.error}`, { call_id: name, ...info, delay_ms: info.delayMs }));
      },
      onFailover: (from, to, error) =>
        fire(this.emit('WARNING', agentId, `failing over from ${from.provider}/${from.model} to ${to.provider}/${to.model}: ${error}`, { call_id: name, from, to })),
    });
    const res = await call.finally(() => this.flush().catch(() => undefined));
    await this.flush();
    // priced under the name we asked for: OpenAI answers a gpt-4o request as gpt-4o-2024-08-06,
    // which has no price of its own; the reported name counts when the requested one has none
    const pricedAs = priceFor(this.config, res.requestedModel) ? res.requestedModel : res.model;
    // a provider that reports no usage (an OpenAI-compatible server ignoring
    // stream_options.include_usage, an Anthropic stream without it) is counted at the estimates:
    // counted 0, its calls never bound a session's budget and cost nothing. A reported 0 stays 0
    const inputTokens = res.usage.input_tokens ?? estimate;
    // the answer counted as the turn it becomes in the next call's prompt
    const outputTokens = res.usage.output_tokens ?? estimateTokens([{ role: 'assistant', content: res.text, ...(res.toolCalls.length ? { toolCalls: res.toolCalls } : {}) }]);
    const usageEstimated = res.usage.input_tokens === undefined || res.usage.output_tokens === undefined;
    const cost = roundUsd(priceOf(this.config, pricedAs, inputTokens, outputTokens));
    const usage = { input_tokens: inputTokens, output_tokens: outputTokens, total_tokens: inputTokens + outputTokens, estimated_cost: cost };
    await this.emit('LLM_OUTPUT', agentId, clip(res.text, EVENT_TEXT_CHARS), {
      call_id: name,
      provider: res.provider,
      model: res.model,
      requested_model: res.requestedModel,
      usage,
      ...(usageEstimated ? { usage_estimated: true } : {}),
      finish_reason: res.finishReason,
      tool_calls: res.toolCalls.map((t) => ({ id: t.id, name: t.name, arguments: clip(t.arguments, 1_000) })),
      attempts: res.attempts,
    });
    if (this.account) {
      await this.account.record(this.ctx.tenantId, this.account.sessionId, { tokens: usage.total_tokens, cost_usd: cost, reserved_tokens: reservation.tokens });
      reservation.tokens = 0; // settled
    }
    this.#freshTokens += usage.total_tokens;
    const after = before + usage.total_tokens;
    const { limit } = this.budget;
    if (limit > 0 && before < limit * BUDGET_THRESHOLD_RATIO && after >= limit * BUDGET_THRESHOLD_RATIO) {
      await this.emit('BUDGET_THRESHOLD', agentId, `session used ${Math.round((after / limit) * 100)} % of its ${limit}-token budget`, {
        tokens_used: after,
        token_budget: limit,
        percent: Math.round((after / limit) * 1000) / 10,
      });
    }
    return { text: res.text, toolCalls: res.toolCalls, usage, model: res.model, provider: res.provider, finishReason: res.finishReason };
  }

  /** One tool call as durable step `name`; tool failures become observations the model reads. */
  async runTool(agentId: string, name: string, call: ToolCall, tools: ReadonlyMap<string, AgentTool> = this.tools): Promise<StoredTool> {
    const body = async (): Promise<StoredTool> => {
      let args: Record<string, unknown> = {};
      let parseError: string | undefined;
      try {
        const v = JSON.parse(call.arguments || '{}');
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) args = v;
        else parseError = 'tool arguments must be a JSON object';
      } catch {
        parseError = `tool arguments are not valid JSON: ${clip(call.arguments, 200)}`;
      }
      await this.emit('TOOL_INVOKED', agentId, call.name, { call_id: name, tool: call.name, tool_call_id: call.id, args });
      let result: StoredTool;
      const tool = tools.get(call.name);
      if (parseError) result = { ok: false, output: `error: ${parseError}` };
      else if (!tool) result = { ok: false, output: `error: unknown tool ${call.name}; available: ${[...tools.keys()].join(', ')}` };
      else {
        try {
          result = { ok: true, output: await tool.run(args, { signal: this.ctx.signal, traceparent: this.ctx.traceparent, tenantId: this.ctx.tenantId, userId: this.ctx.userId, taskId: this.ctx.taskId, callKey: name }) };
        } catch (err) {
          if (this.ctx.signal.aborted) throw err;
          if (!(err instanceof ToolError) && !(err instanceof PermanentError)) throw err;
          result = { ok: false, output: `error: ${err.message}` };
        }
      }
      await this.emit('TOOL_OBSERVATION', agentId, clip(result.output, EVENT_TEXT_CHARS), { call_id: name, tool: call.name, tool_call_id: call.id, ok: result.ok });
      return result;
    };
    const stored = tools.get(call.name)?.inline ? await body() : await this.ctx.step<StoredTool>(name, body);
    this.toolCalls++;
    return stored;
  }
}
