// Types for targets.mjs (the unit test imports it from TypeScript).
export interface ResultRow {
  scenario: string;
  system: string;
  db: string;
  metric: string;
  value: number | null;
  unit: string;
  runs: number;
  note?: string;
}
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}
export function checkTargets(all: readonly ResultRow[]): TargetCheck[];
export function formatTargets(checks: readonly TargetCheck[], meta: { mode: string }): string;
