// The four agent modes over one AgentRuntime: simple (one call), standard (tool loop), complex
// (plan → parallel sub-agents → synthesis) and supervisor (a lead delegating via tool calls),
// plus the optional verification pass. Step names are derived only from replayed data.
import type { ChatMessage } from './providers/types.js';
import * as P from './prompts.js';
import type { AgentRuntime } from './runtime.js';
import type { AgentMode } from './strategy.js';
import type { AgentTool } from './tools/types.js';

/** The planner may split a request into at most this many subtasks. */
export const MAX_SUBTASKS = 8;

export interface ModeInput {
  query: string;
  /** Session and client-supplied conversation before the query. */
  history: ChatMessage[];
  system: string;
  maxIterations: number;
}

export interface ModeOutput {
  text: string;
  iterations: number;
  details?: Record<string, unknown>;
}

interface LoopSpec {
  agentId: string;
  messages: ChatMessage[];
  maxIterations: number;
  answer: boolean;
  withTools: boolean;
  /** Replaces the runtime's tools for this agent. */
  tools?: ReadonlyMap<string, AgentTool>;
}

/** The tool-using loop: call, run requested tools (in parallel), repeat; final call without tools. */
export async function runLoop(rt: AgentRuntime, spec: LoopSpec): Promise<ModeOutput> {
  const messages = spec.messages;
  const toolMap = spec.tools ?? rt.tools;
  const tools = spec.withTools && toolMap.size ? [...toolMap.values()].map((t) => t.spec) : undefined;
  for (let it = 1; it <= spec.maxIterations; it++) {
    const res = await rt.callLlm(spec.agentId, `${spec.agentId}/llm-${it}`, messages, { tools, answer: spec.answer });
    if (!tools || res.toolCalls.length === 0) return { text: res.text, iterations: it };
    messages.push({ role: 'assistant', content: res.text, toolCalls: res.toolCalls });
    const observations = await Promise.all(res.toolCalls.map((tc, i) => rt.runTool(spec.agentId, `${spec.agentId}/tool-${it}-${i + 1}`, tc, toolMap)));
    res.toolCalls.forEach((tc, i) => messages.push({ role: 'tool', toolCallId: tc.id, name: tc.name, content: observations[i]!.output }));
  }
  messages.push({ role: 'user', content: P.FINAL_ANSWER_NOW });
  const final = await rt.callLlm(spec.agentId, `${spec.agentId}/llm-final`, messages, { answer: spec.answer });
  return { text: final.text, iterations: spec.maxIterations + 1 };
}

function base(input: ModeInput, system = input.system): ChatMessage[] {
  return [{ role: 'system', content: system }, ...input.history, { role: 'user', content: input.query }];
}

async function agent<T>(rt: AgentRuntime, agentId: string, role: string, fn: () => Promise<T>): Promise<T> {
  rt.queue('AGENT_STARTED', agentId, `${agentId} started`, { role });
  const out = await fn();
  await rt.emit('AGENT_COMPLETED', agentId, `${agentId} completed`, { role });
  return out;
}

export async function runSimple(rt: AgentRuntime, input: ModeInput, answer: boolean): Promise<ModeOutput> {
  return agent(rt, 'lead', 'simple', () => runLoop(rt, { agentId: 'lead', messages: base(input), maxIterations: 1, answer, withTools: false }));
}

export async function runStandard(rt: AgentRuntime, input: ModeInput, answer: boolean): Promise<ModeOutput> {
  return agent(rt, 'lead', 'standard', () => runLoop(rt, { agentId: 'lead', messages: base(input), maxIterations: input.maxIterations, answer, withTools: true }));
}

export async function runComplex(rt: AgentRuntime, input: ModeInput, answer: boolean): Promise<ModeOutput> {
  const plan = await agent(rt, 'planner', 'planner', () =>
    rt.callLlm('planner', 'planner/llm-1', [{ role: 'system', content: P.plannerPrompt(MAX_SUBTASKS) }, ...input.history, { role: 'user', content: input.query }], { answer: false }),
  );
  const parsed = P.parseJsonObject(plan.text)?.subtasks;
  let subtasks = Array.isArray(parsed)
    ? parsed.map((s) => (typeof s === 'string' ? s : String((s as Record<string, unknown>)?.task ?? ''))).filter(Boolean).slice(0, MAX_SUBTASKS)
    : [];
  if (subtasks.length === 0) subtasks = [input.query];
  const results = await Promise.all(
    subtasks.map((task, i) =>
      rt.withAgentSlot(() =>
        agent(rt, `sub-${i + 1}`, 'subtask', () =>
          runLoop(rt, {
            agentId: `sub-${i + 1}`,
            messages: [{ role: 'system', content: P.SUBAGENT_SYSTEM }, { role: 'user', content: `Overall request: ${input.query}\n\nYour subtask: ${task}` }],
            maxIterations: input.maxIterations,
            answer: false,
            withTools: true,
          }),
        ),
      ),
    ),
  );
  const synthesis = await agent(rt, 'synthesizer', 'synthesis', () =>
    rt.callLlm('synthesizer', 'synthesizer/llm-1', [
      { role: 'system', content: `${input.system}\n\n${P.SYNTHESIS_SYSTEM}` },
      ...input.history,
      { role: 'user', content: P.synthesisInput(input.query, subtasks.map((task, i) => ({ task, answer: results[i]!.text }))) },
    ], { answer }),
  );
  return {
    text: synthesis.text,
    iterations: results.reduce((n, r) => n + r.iterations, 0) + 2,
    details: { subtasks: subtasks.map((task, i) => ({ id: `sub-${i + 1}`, task, iterations: results[i]!.iterations })) },
  };
}

export async function runSupervisor(rt: AgentRuntime, input: ModeInput, answer: boolean): Promise<ModeOutput> {
  const delegated: { id: string; task: string }[] = [];
  const delegate: AgentTool = {
    inline: true,
    spec: {
      name: 'delegate_task',
      description: 'Give one self-contained piece of work to a worker agent (which can use tools) and get its answer back.',
      parameters: { type: 'object', properties: { task: { type: 'string', description: 'what the worker must do' } }, required: ['task'] },
    },
    async run(args, ctx) {
      // lead/tool-2-1 → worker-2-1: derived from the step name, so a replay reuses the worker's steps
      const id = `worker-${ctx.callKey.slice(ctx.callKey.lastIndexOf('tool-') + 5)}`;
      const task = String(args.task ?? '');
      delegated.push({ id, task });
      const out = await rt.withAgentSlot(() =>
        agent(rt, id, 'worker', () =>
          runLoop(rt, {
            agentId: id,
            messages: [{ role: 'system', content: P.SUBAGENT_SYSTEM }, { role: 'user', content: `Overall request: ${input.query}\n\nYour task: ${task}` }],
            maxIterations: input.maxIterations,
            answer: false,
            withTools: true,
          }),
        ),
      );
      return out.text;
    },
  };
  const tools = new Map(rt.tools);
  tools.set(delegate.spec.name, delegate);
  const out = await agent(rt, 'lead', 'supervisor', () =>
    runLoop(rt, { agentId: 'lead', messages: base(input, `${input.system}\n\n${P.SUPERVISOR_SYSTEM}`), maxIterations: input.maxIterations, answer, withTools: true, tools }),
  );
  delegated.sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
  return { ...out, details: { workers: delegated } };
}

export const MODE_RUNNERS: Record<AgentMode, (rt: AgentRuntime, input: ModeInput, answer: boolean) => Promise<ModeOutput>> = {
  simple: runSimple,
  standard: runStandard,
  complex: runComplex,
  supervisor: runSupervisor,
};

/** Reviews the draft; a rejected draft gets one revision call with the reviewer's feedback. */
export async function verify(rt: AgentRuntime, input: ModeInput, draft: string): Promise<{ text: string; approved: boolean; feedback: string; revised: boolean }> {
  const review = await agent(rt, 'verifier', 'verification', () =>
    rt.callLlm('verifier', 'verifier/llm-1', [{ role: 'system', content: P.VERIFIER_SYSTEM }, { role: 'user', content: P.verifierInput(input.query, draft) }], { answer: false }),
  );
  const verdict = P.parseJsonObject(review.text);
  const approved = verdict?.approved !== false;
  const feedback = typeof verdict?.feedback === 'string' ? verdict.feedback : '';
  if (approved) return { text: draft, approved, feedback, revised: false };
  const revision = await rt.callLlm('lead', 'lead/llm-revision', [...base(input), { role: 'assistant', content: draft }, { role: 'user', content: P.revisionInput(feedback) }], { answer: true });
  return { text: revision.text, approved, feedback, revised: true };
}
