// The `agent` executor: runs a free-text query (or a declarative agent definition's rendered
// prompt) with an LLM in one of four modes, with tools, session memory, a token budget, and usage
// and cost per call and per task. Library choice: see providers/openai.ts and docs/agents.md.
import { ModelRouteError, llmNotConfiguredMessage, resolveModel, tokenBudgetProblem, type LlmConfig, type ModelRoute } from '../../config/llm.js';
import { PermanentError, withUsage, type ExecutionResult, type Executor, type TaskContext, type TaskSpec } from '../types.js';
import {
  clientHistory, historyMessages, type LoadSessionHistory, type RecordSessionUsage, type ReleaseSessionTokens, type ReserveSessionTokens, type SessionMemory,
} from './history.js';
import { LlmClient } from './llm-client.js';
import { MODE_RUNNERS, verify, type ModeInput, type ModeOutput } from './modes.js';
import { AGENT_SYSTEM } from './prompts.js';
import { AgentRuntime } from './runtime.js';
import { resolveAgentOptions, type AgentOptions } from './strategy.js';
import { renderPrompt } from './templates.js';
import { calculatorTool } from './tools/calculator.js';
import { currentTimeTool } from './tools/current-time.js';
import { httpFetchTool, type HttpFetchOptions } from './tools/http-fetch.js';
import { runTaskTool, type DefinitionSummary, type RunChildTask } from './tools/run-task.js';
import type { AgentTool } from './tools/types.js';
import { parseJsonAnswer } from '../../domain/json-answer.js';

export interface AgentExecutorDeps {
  /** undefined = no provider configured: agent tasks fail with the LLM_NOT_CONFIGURED message. */
  llm: LlmConfig | undefined;
  /** Earlier turns and token account of a session; without it tasks run without memory. */
  loadSessionHistory?: LoadSessionHistory;
  /** Stores `context.token_budget` as the session's own budget (overriding the configured default). */
  setSessionBudget?: (tenantId: string, sessionId: string, tokenBudget: number) => Promise<void>;
  /** Rolls every LLM call's tokens and cost into its session (tokens_used, cost_usd). */
  recordSessionUsage?: RecordSessionUsage;
  /** Reserves each call's estimate on the session before it is made (budget across concurrent tasks). */
  reserveSessionTokens?: ReserveSessionTokens;
  /** Gives back a reservation whose call failed. */
  releaseSessionTokens?: ReleaseSessionTokens;
  /** Enables the run_task tool (and context.disable_ai templates). */
  runChildTask?: RunChildTask;
  /** Definitions listed in run_task's description so the model knows what it can run. */
  listDefinitions?: (tenantId: string) => Promise<DefinitionSummary[]>;
  /** Enables the http_fetch tool. */
  http?: HttpFetchOptions;
  /** Clock for current_time. Default: the system clock. */
  now?: () => Date;
  /** Injected LLM client (tests); default: one built from `llm`. */
  client?: LlmClient;
}

/** Definition config keys a declarative agent definition may set. */
interface AgentDefinitionConfig {
  prompt?: string;
  system?: string;
  mode?: string;
  model_tier?: string;
}

function buildTools(deps: AgentExecutorDeps, definitions: DefinitionSummary[]): Map<string, AgentTool> {
  const tools: AgentTool[] = [calculatorTool, currentTimeTool(deps.now ?? (() => new Date()))];
  if (deps.http) tools.push(httpFetchTool(deps.http));
  if (deps.runChildTask) tools.push(runTaskTool(deps.runChildTask, definitions));
  return new Map(tools.map((t) => [t.spec.name, t]));
}

/** `context.disable_ai` + `context.template`: run that definition instead of an LLM. */
async function runTemplateInstead(deps: AgentExecutorDeps, task: TaskSpec, ctx: TaskContext): Promise<ExecutionResult> {
  const template = task.context.template ?? task.context.template_name;
  if (typeof template !== 'string' || !template) throw new PermanentError('context.disable_ai requires context.template (a task definition id)');
  if (!deps.runChildTask) throw new PermanentError('context.disable_ai templates are not available on this worker');
  const input = task.context.template_input ?? task.context.input ?? { query: task.query };
  const output = await ctx.step('template', () =>
    deps.runChildTask!(ctx.tenantId, ctx.userId, template, input, ctx.signal, { idempotencyKey: `${ctx.taskId}:template`, parentTaskId: ctx.taskId }),
  );
  const result = typeof output === 'string' ? output : JSON.stringify(output ?? null);
  return { output: output ?? null, result, usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0, estimated_cost: 0 }, metadata: { mode: 'template', template } };
}

function specFor(task: TaskSpec): { query: string; system: string; options: AgentOptions } {
  const cfg = (task.definition?.kind === 'agent' ? task.definition.config ?? {} : {}) as AgentDefinitionConfig;
  let query = task.query;
  if (!query && typeof cfg.prompt === 'string') {
    const input = task.input && typeof task.input === 'object' ? (task.input as Record<string, unknown>) : {};
    query = renderPrompt(cfg.prompt, input).trim();
  }
  if (!query) throw new PermanentError('an agent task needs a query (or a definition with config.prompt)');
  const options = resolveAgentOptions({
    query,
    mode: task.mode ?? (typeof cfg.mode === 'string' ? cfg.mode : null),
    options: { ...(cfg.model_tier ? { model_tier: cfg.model_tier } : {}), ...task.options },
    context: task.context ?? {},
  });
  const extra = typeof task.context?.system_prompt === 'string' ? task.context.system_prompt : undefined;
  const system = [typeof cfg.system === 'string' ? cfg.system : AGENT_SYSTEM, extra].filter(Boolean).join('\n\n');
  return { query, system, options };
}

export function createAgentExecutor(deps: AgentExecutorDeps): Executor {
  const client = deps.client ?? (deps.llm ? new LlmClient(deps.llm) : undefined);
  return {
    kind: 'agent',
    async run(task: TaskSpec, ctx: TaskContext): Promise<ExecutionResult> {
      if (task.context?.disable_ai === true) return runTemplateInstead(deps, task, ctx);
      const llm = deps.llm;
      if (!llm || !client) throw new PermanentError(llmNotConfiguredMessage);
      const { query, system, options } = specFor(task);
      let route: ModelRoute;
      try {
        route = resolveModel(llm, { model_tier: options.tier, model_override: options.modelOverride, provider_override: options.providerOverride });
      } catch (err) {
        if (err instanceof ModelRouteError) throw new PermanentError(err.message, { cause: err });
        throw err;
      }
      const ownBudget = task.context?.token_budget;
      // refused at submit; a task queued before that check fails once instead of retrying a DB error
      const budgetProblem = tokenBudgetProblem(ownBudget);
      if (budgetProblem) throw new PermanentError(budgetProblem);
      if (ctx.sessionId && deps.setSessionBudget && typeof ownBudget === 'number') {
        await deps.setSessionBudget(ctx.tenantId, ctx.sessionId, ownBudget);
      }
      // read on every attempt (no step: two writes saved before the first call); the budget
      // accounts for replays itself (see BudgetState.usedBefore)
      const memory: SessionMemory =
        ctx.sessionId && deps.loadSessionHistory ? await deps.loadSessionHistory(ctx.tenantId, ctx.sessionId, ctx.taskId) : { turns: [], tokens_used: 0, token_budget: null };
      const supplied = clientHistory(task.context?.history);
      const sessionTurns = historyMessages(memory.turns, llm.historyBudgetTokens);
      const input: ModeInput = {
        query,
        system: [system, ...supplied.system].join('\n\n'),
        history: [...sessionTurns, ...supplied.messages],
        maxIterations: options.maxIterations,
      };
      const definitions = options.mode !== 'simple' && deps.runChildTask && deps.listDefinitions ? await deps.listDefinitions(ctx.tenantId).catch(() => []) : [];
      const tools = options.mode === 'simple' ? new Map<string, AgentTool>() : buildTools(deps, definitions);
      const budget = { limit: memory.token_budget ?? llm.tokenBudget, usedBefore: memory.tokens_used };
      const account = ctx.sessionId && deps.recordSessionUsage
        ? { sessionId: ctx.sessionId, record: deps.recordSessionUsage, reserve: deps.reserveSessionTokens, release: deps.releaseSessionTokens }
        : undefined;
      const rt = new AgentRuntime(ctx, llm, client, route.candidates, tools, budget, options.maxConcurrentAgents, account);

      let out: ModeOutput;
      let text: string;
      let verification: Record<string, unknown> | undefined;
      try {
        out = await MODE_RUNNERS[options.mode](rt, input, !options.verification);
        text = out.text;
        if (options.verification) {
          const v = await verify(rt, input, text);
          text = v.text;
          verification = { approved: v.approved, feedback: v.feedback, revised: v.revised };
        }
      } catch (err) {
        // the calls made before the failure (a budget crossed, a provider giving up) were paid for
        throw withUsage(err, rt.ledger.totals());
      }
      const last = rt.ledger.calls[rt.ledger.calls.length - 1];
      return {
        output: parseJsonAnswer(text),
        result: text,
        usage: rt.ledger.totals(),
        model_used: last?.model,
        provider: last?.provider,
        metadata: {
          mode: options.mode,
          mode_source: options.modeSource,
          ...(options.strategy ? { research_strategy: options.strategy } : {}),
          model_tier: route.tier,
          llm_calls: rt.llmCalls,
          tool_calls: rt.toolCalls,
          iterations: out.iterations,
          history_turns: sessionTurns.length / 2,
          model_breakdown: rt.ledger.breakdown(),
          ...(out.details ?? {}),
          ...(verification ? { verification } : {}),
        },
      };
    },
  };
}

