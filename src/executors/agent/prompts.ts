// System and instruction prompts of the agent modes, in one place so they are easy to review.
export const AGENT_SYSTEM =
  'You are a capable, precise assistant running inside Taskgate. Answer the user directly and concisely. ' +
  'When a tool would give a more reliable answer (arithmetic, the current time, fetching a URL, running a workspace task), call it instead of guessing.';

export const FINAL_ANSWER_NOW = 'You have used all your tool iterations. Write your final answer now from what you have, without calling tools.';

export function plannerPrompt(maxSubtasks: number): string {
  return (
    `You are a planner. Split the user's request into between 1 and ${maxSubtasks} independent subtasks that can be worked on in parallel ` +
    'and that together answer it. Reply with JSON only, no prose: {"subtasks": [{"id": "1", "task": "..."}]}'
  );
}

export const SUBAGENT_SYSTEM =
  'You are a focused research agent working on one subtask of a larger request. Use tools when they help. ' +
  'Reply with a complete, self-contained answer to your subtask only.';

export const SYNTHESIS_SYSTEM =
  'You are a synthesis agent. Combine the subtask results into one coherent, well-structured final answer to the original request. ' +
  'Do not mention the subtasks or the agents; just answer.';

export function synthesisInput(query: string, results: { task: string; answer: string }[]): string {
  return `Original request:\n${query}\n\n${results.map((r, i) => `Subtask ${i + 1}: ${r.task}\nResult:\n${r.answer}`).join('\n\n')}`;
}

export const SUPERVISOR_SYSTEM =
  'You are a lead agent supervising worker agents. Break the request down and delegate pieces with the delegate_task tool ' +
  '(several calls in one turn run in parallel). Read their results, delegate more if needed, and when you have enough, ' +
  'write the final answer yourself without calling tools.';

export const VERIFIER_SYSTEM =
  'You are a meticulous reviewer. Check the draft answer against the request for errors, omissions and unsupported claims. ' +
  'Reply with JSON only: {"approved": true|false, "feedback": "what must change, or empty when approved"}';

export function verifierInput(query: string, draft: string): string {
  return `Request:\n${query}\n\nDraft answer:\n${draft}`;
}

export function revisionInput(feedback: string): string {
  return `A reviewer found problems with your answer:\n${feedback}\n\nWrite the corrected final answer now.`;
}

/** Parses the first JSON object in a model reply (models wrap JSON in prose or code fences). */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  const fenced = text.match(/```(?:json)?\s*([\s\S]*?)```/);
  const candidates = [text.trim(), fenced?.[1]?.trim(), text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)];
  for (const c of candidates) {
    if (!c) continue;
    try {
      const v = JSON.parse(c);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v;
    } catch {
      /* next */
    }
  }
  return undefined;
}
