// Session memory: earlier turns of the session (query and final answer) become conversation
// messages, trimmed to a token budget with the oldest turns dropped first.
import type { ChatMessage } from './providers/types.js';

export interface SessionTurn {
  task_id: string;
  query: string;
  result: string;
}

export interface SessionMemory {
  /** Oldest first. */
  turns: SessionTurn[];
  /** Tokens the session had used before this task. */
  tokens_used: number;
  /** The session's own budget; null = the configured default. */
  token_budget: number | null;
}

/** Loads the completed turns of a session that precede `beforeTaskId`, and its token account. */
export type LoadSessionHistory = (tenantId: string, sessionId: string, beforeTaskId: string) => Promise<SessionMemory>;

/**
 * Adds one LLM call's usage to the session's account (tokens_used, cost_usd), settling the
 * call's reservation (`reserved_tokens`, already counted) in the same write.
 */
export type RecordSessionUsage = (tenantId: string, sessionId: string, usage: { tokens: number; cost_usd: number; reserved_tokens?: number }) => Promise<void>;

/**
 * Reserves a call's estimated tokens on the session before it is made, atomically against
 * `budget`; undefined when the session does not exist (the call goes ahead unreserved).
 */
export type ReserveSessionTokens = (tenantId: string, sessionId: string, tokens: number, budget: number) => Promise<{ reserved: boolean; tokensUsed: number } | undefined>;

/** Gives back a reservation whose call failed. */
export type ReleaseSessionTokens = (tenantId: string, sessionId: string, tokens: number) => Promise<void>;

/** Characters per estimated token (history budget and prompt estimates). */
export const CHARS_PER_TOKEN = 4;

const tokensOf = (s: string) => Math.ceil(s.length / CHARS_PER_TOKEN);

/**
 * Characters of a stored query or answer worth reading for a history of `budgetTokens`: one more
 * than the budget holds, so a text cut there still counts over the budget and its turn is dropped.
 */
export function historyReadChars(budgetTokens: number): number {
  return Math.floor(budgetTokens) * CHARS_PER_TOKEN + 1;
}

/** Keeps the newest turns that fit in `budgetTokens` (4 chars ≈ 1 token), returned oldest first. */
export function historyMessages(turns: readonly SessionTurn[], budgetTokens: number): ChatMessage[] {
  const kept: SessionTurn[] = [];
  let used = 0;
  for (let i = turns.length - 1; i >= 0; i--) {
    const t = turns[i]!;
    const cost = tokensOf(t.query) + tokensOf(t.result);
    if (used + cost > budgetTokens) break;
    used += cost;
    kept.unshift(t);
  }
  return kept.flatMap((t): ChatMessage[] => [
    { role: 'user', content: t.query },
    { role: 'assistant', content: t.result },
  ]);
}

/** Client-supplied conversation (context.history, e.g. from /v1/chat/completions). */
export function clientHistory(raw: unknown): { system: string[]; messages: ChatMessage[] } {
  const system: string[] = [];
  const messages: ChatMessage[] = [];
  if (!Array.isArray(raw)) return { system, messages };
  for (const m of raw) {
    const role = (m as Record<string, unknown>)?.role;
    const content = (m as Record<string, unknown>)?.content;
    if (typeof content !== 'string') continue;
    if (role === 'system' || role === 'developer') system.push(content);
    else if (role === 'user' || role === 'assistant') messages.push({ role, content });
  }
  return { system, messages };
}
