// Usage and cost per call and per task, and the per-model breakdown (metadata.model_breakdown:
// executions, tokens, cost and share of tokens per model).
import type { TaskUsage } from '../types.js';

export interface CallUsage {
  provider: string;
  model: string;
  input_tokens: number;
  output_tokens: number;
  /** USD at the configured prices. */
  cost: number;
}

export interface ModelBreakdownEntry {
  provider: string;
  executions: number;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  cost_usd: number;
  /** Share of the task's tokens, in percent (0–100, two decimals). */
  percentage: number;
}

/** Rounds USD to 1e-8 so sums of float prices compare cleanly. */
export function roundUsd(v: number): number {
  return Math.round(v * 1e8) / 1e8;
}

export class UsageLedger {
  readonly calls: CallUsage[] = [];

  record(call: CallUsage): void {
    this.calls.push(call);
  }

  get totalTokens(): number {
    return this.calls.reduce((n, c) => n + c.input_tokens + c.output_tokens, 0);
  }

  totals(): TaskUsage {
    const input = this.calls.reduce((n, c) => n + c.input_tokens, 0);
    const output = this.calls.reduce((n, c) => n + c.output_tokens, 0);
    return { input_tokens: input, output_tokens: output, total_tokens: input + output, estimated_cost: roundUsd(this.calls.reduce((n, c) => n + c.cost, 0)) };
  }

  /**
   * Keyed by the model names providers report, so built on a Map and returned with a null
   * prototype: a model called `__proto__` or `constructor` is an entry, not Object.prototype.
   */
  breakdown(): Record<string, ModelBreakdownEntry> {
    const total = this.totalTokens;
    const byModel = new Map<string, ModelBreakdownEntry>();
    for (const c of this.calls) {
      let e = byModel.get(c.model);
      if (!e) byModel.set(c.model, (e = { provider: c.provider, executions: 0, input_tokens: 0, output_tokens: 0, total_tokens: 0, cost_usd: 0, percentage: 0 }));
      e.executions++;
      e.input_tokens += c.input_tokens;
      e.output_tokens += c.output_tokens;
      e.total_tokens += c.input_tokens + c.output_tokens;
      e.cost_usd = roundUsd(e.cost_usd + c.cost);
    }
    const out = Object.create(null) as Record<string, ModelBreakdownEntry>;
    for (const [model, e] of byModel) {
      e.percentage = total ? Math.round((e.total_tokens / total) * 10_000) / 100 : 0;
      out[model] = e;
    }
    return out;
  }
}
