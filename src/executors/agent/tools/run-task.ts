// `run_task`: runs one of the tenant's task definitions as a child task and returns its output,
// so agents can use the platform's typed tasks. The engine supplies runChildTask.
import { clip, ToolError, type AgentTool } from './types.js';

export interface ChildTaskOptions {
  /** Stable per parent task and tool call: a replayed step must not submit a second child. */
  idempotencyKey: string;
  parentTaskId: string;
}

/** Submits a definition task for the tenant and resolves with its output (rejects if it fails). */
export type RunChildTask = (
  tenantId: string,
  userId: string,
  definitionId: string,
  input: unknown,
  signal: AbortSignal,
  opts?: ChildTaskOptions,
) => Promise<unknown>;

export interface DefinitionSummary {
  id: string;
  description: string;
  input_schema?: Record<string, unknown>;
}

export function runTaskTool(run: RunChildTask, definitions: readonly DefinitionSummary[]): AgentTool {
  const listed = definitions.length
    ? ` Available definitions: ${definitions.map((d) => `${d.id} (${d.description}${d.input_schema ? `; input schema ${JSON.stringify(d.input_schema)}` : ''})`).join('; ')}.`
    : '';
  return {
    spec: {
      name: 'run_task',
      description: `Run one of this workspace's task definitions as a child task and wait for its output.${clip(listed, 4_000)}`,
      parameters: {
        type: 'object',
        properties: {
          task_definition_id: { type: 'string', description: 'id of the task definition' },
          input: { type: 'object', description: "input object matching the definition's input schema" },
        },
        required: ['task_definition_id'],
      },
    },
    async run(args, ctx) {
      if (typeof args.task_definition_id !== 'string' || !args.task_definition_id) throw new ToolError('task_definition_id (a string) is required');
      try {
        const output = await run(ctx.tenantId, ctx.userId, args.task_definition_id, args.input ?? {}, ctx.signal, {
          idempotencyKey: `${ctx.taskId}:${ctx.callKey}`,
          parentTaskId: ctx.taskId,
        });
        return clip(typeof output === 'string' ? output : JSON.stringify(output ?? null), 20_000);
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        throw new ToolError(`task ${args.task_definition_id} failed: ${(err as Error).message}`);
      }
    },
  };
}
