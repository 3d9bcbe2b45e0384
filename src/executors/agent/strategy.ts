// Agent options: research_strategy presets, explicit fields (top level over context), and the
// automatic mode choice when none is given. Pure: tested without I/O.
import type { ModelTier } from '../../config/llm.js';

export type AgentMode = 'simple' | 'standard' | 'complex' | 'supervisor';
export const AGENT_MODES: readonly AgentMode[] = ['simple', 'standard', 'complex', 'supervisor'];
export type ResearchStrategy = 'quick' | 'standard' | 'deep' | 'academic';

export interface StrategyPreset {
  maxIterations: number;
  maxConcurrentAgents: number;
  verification: boolean;
  tier: ModelTier;
}

/** Presets after Shannon's research_strategies.yaml: more iterations, agents and care as depth grows. */
export const RESEARCH_PRESETS: Readonly<Record<ResearchStrategy, StrategyPreset>> = {
  quick: { maxIterations: 3, maxConcurrentAgents: 2, verification: false, tier: 'small' },
  standard: { maxIterations: 5, maxConcurrentAgents: 3, verification: false, tier: 'medium' },
  deep: { maxIterations: 8, maxConcurrentAgents: 5, verification: true, tier: 'medium' },
  academic: { maxIterations: 12, maxConcurrentAgents: 5, verification: true, tier: 'large' },
};
export const DEFAULT_MAX_ITERATIONS = 5;
export const DEFAULT_MAX_CONCURRENT_AGENTS = 3;

export interface AgentOptions {
  mode: AgentMode;
  modeSource: 'request' | 'auto';
  strategy: ResearchStrategy | undefined;
  tier: ModelTier | undefined;
  modelOverride: string | undefined;
  providerOverride: string | undefined;
  maxIterations: number;
  maxConcurrentAgents: number;
  verification: boolean;
}

const TOOL_HINTS = /\b(calculate|compute|how much|how many|sum of|percent|times|divided|multipl|current time|what time|today|date|http|https|url|fetch|download|website|run_task|run the task)\b|\d\s*[-+*/^%]\s*\d/i;
const COMPLEX_HINTS = /\b(compare|comparison|research|investigate|analy[sz]e|pros and cons|trade-?offs|step by step|in depth|comprehensive|report on)\b/i;

/** Picks a mode from the query when the client did not: cheap heuristics, recorded in metadata. */
export function autoMode(query: string, strategy: ResearchStrategy | undefined): AgentMode {
  if (strategy === 'deep' || strategy === 'academic') return 'complex';
  const words = query.trim().split(/\s+/).length;
  const questions = (query.match(/\?/g) ?? []).length;
  if ((COMPLEX_HINTS.test(query) && words >= 12) || (questions >= 2 && words >= 25)) return 'complex';
  if (TOOL_HINTS.test(query) || strategy) return 'standard';
  return 'simple';
}

function pick<T>(options: Record<string, unknown>, context: Record<string, unknown>, key: string, ok: (v: unknown) => v is T): T | undefined {
  if (ok(options[key])) return options[key];
  if (ok(context[key])) return context[key];
  return undefined;
}
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

/** Resolves options: top-level fields (task options) win over the same keys in context. */
export function resolveAgentOptions(
  spec: { query: string; mode: string | null; options: Record<string, unknown>; context: Record<string, unknown> },
): AgentOptions {
  const o = spec.options ?? {};
  const c = spec.context ?? {};
  const strategyRaw = pick(o, c, 'research_strategy', isStr);
  const strategy = strategyRaw && Object.hasOwn(RESEARCH_PRESETS, strategyRaw) ? (strategyRaw as ResearchStrategy) : undefined;
  const preset = strategy ? RESEARCH_PRESETS[strategy] : undefined;
  const modeRaw = spec.mode ?? pick(o, c, 'mode', isStr);
  const requested = AGENT_MODES.includes(modeRaw as AgentMode) ? (modeRaw as AgentMode) : undefined;
  const tierRaw = pick(o, c, 'model_tier', isStr);
  const maxIterations = Math.min(50, pick(o, c, 'max_iterations', isInt) ?? (isInt(c.react_max_iterations) ? c.react_max_iterations : undefined) ?? preset?.maxIterations ?? DEFAULT_MAX_ITERATIONS);
  return {
    mode: requested ?? autoMode(spec.query, strategy),
    modeSource: requested ? 'request' : 'auto',
    strategy,
    tier: (['small', 'medium', 'large'].includes(tierRaw ?? '') ? tierRaw : preset?.tier) as ModelTier | undefined,
    modelOverride: pick(o, c, 'model_override', isStr),
    providerOverride: pick(o, c, 'provider_override', isStr),
    maxIterations,
    maxConcurrentAgents: Math.min(20, pick(o, c, 'max_concurrent_agents', isInt) ?? preset?.maxConcurrentAgents ?? DEFAULT_MAX_CONCURRENT_AGENTS),
    verification: pick(o, c, 'enable_verification', isBool) ?? preset?.verification ?? false,
  };
}
