// The agent's tool contract: a JSON-Schema-described function the model can call. Results are
// strings (what the model reads back); a thrown ToolError is shown to the model as an error.
import type { ToolSpec } from '../providers/types.js';

export interface ToolContext {
  readonly signal: AbortSignal;
  /** W3C traceparent of the submitting request, for outbound calls. */
  readonly traceparent?: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly taskId: string;
  /** The durable step name of this tool call: stable across replays. */
  readonly callKey: string;
}

export interface AgentTool {
  readonly spec: ToolSpec;
  /**
   * Runs outside a durable step because its own work is made of steps (delegate_task runs a
   * worker agent whose LLM calls are steps): wrapping it would hide their usage on replay.
   */
  readonly inline?: boolean;
  run(args: Record<string, unknown>, ctx: ToolContext): Promise<string>;
}

/** A tool failed in a way the model should see and may recover from (bad arguments, 404…). */
export class ToolError extends Error {
  override name = 'ToolError';
}

/** Truncates tool output the model reads back, in characters. */
export function clip(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  // the marker counts: at most maxChars in all (a 4,000-character event message was 4,032)
  const marker = (cut: number) => `\n…[truncated ${cut} characters]`;
  let keep = Math.max(0, maxChars - marker(text.length).length);
  if (text.charCodeAt(keep - 1) >= 0xd800 && text.charCodeAt(keep - 1) < 0xdc00) keep--; // not half a surrogate pair
  return `${text.slice(0, keep)}${marker(text.length - keep)}`.slice(0, maxChars);
}
