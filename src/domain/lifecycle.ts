// The task lifecycle as pure data: statuses, the transition table, priorities and retry policy.
// The database enforces the same status set with a CHECK constraint (migrations/0001_init.sql).

export const TASK_STATUSES = ['QUEUED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT']);

export function isTerminal(status: TaskStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/** Every allowed edge of the lifecycle; anything not listed is a bug or a lost race. */
export const TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  QUEUED: ['RUNNING', 'PAUSED', 'CANCELLED'],
  RUNNING: ['COMPLETED', 'FAILED', 'TIMEOUT', 'CANCELLED', 'QUEUED', 'PAUSED'],
  PAUSED: ['QUEUED', 'CANCELLED'],
  COMPLETED: [],
  FAILED: [],
  CANCELLED: [],
  TIMEOUT: [],
};

export function canTransition(from: TaskStatus, to: TaskStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/**
 * Parses a status filter from the wire: case-insensitive, `CANCELED` accepted for `CANCELLED`,
 * and seed 003's `PENDING` for `QUEUED`. Returns undefined when the word is not a status.
 */
export function parseStatus(word: string): TaskStatus | undefined {
  const upper = word.trim().toUpperCase();
  if (upper === 'CANCELED') return 'CANCELLED';
  if (upper === 'PENDING') return 'QUEUED';
  return (TASK_STATUSES as readonly string[]).includes(upper) ? (upper as TaskStatus) : undefined;
}

export const PRIORITIES = ['urgent', 'high', 'medium', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Stored as a small integer so the claim index orders urgent first: 0 urgent … 3 low. */
export function priorityRank(priority: Priority): number {
  return PRIORITIES.indexOf(priority);
}

export function priorityFromRank(rank: number): Priority {
  return PRIORITIES[rank] ?? 'medium';
}

export function parsePriority(word: string): Priority | undefined {
  const lower = word.trim().toLowerCase();
  return (PRIORITIES as readonly string[]).includes(lower) ? (lower as Priority) : undefined;
}

export interface RetryPolicy {
  /** Retries after the first attempt; 0 means one attempt only. */
  maxRetries: number;
  /** Delay before the first retry, in ms. */
  retryIntervalMs: number;
  /** Each further retry waits this many times longer. */
  backoffMultiplier: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxRetries: 3,
  retryIntervalMs: 1_000,
  backoffMultiplier: 2,
});

/** A retry never waits longer than this, whatever the policy says (1 hour). */
export const MAX_BACKOFF_MS = 3_600_000;

/**
 * Delay before the next attempt after `attempt` (1-based) failed: exponential with "equal
 * jitter" (half fixed, half random) so a burst of failures does not retry in lock-step.
 * `random` is injected for deterministic tests.
 */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = policy.retryIntervalMs * Math.pow(policy.backoffMultiplier, Math.max(0, attempt - 1));
  const capped = Math.min(MAX_BACKOFF_MS, exp);
  return Math.round(capped / 2 + (capped / 2) * random());
}

export type AttemptOutcome =
  | { kind: 'completed' }
  | { kind: 'failed'; permanent: boolean }
  | { kind: 'timed_out' }
  | { kind: 'cancelled' };

/** What the engine writes after an attempt ends: the next status, and whether it is a retry. */
export function nextStatusAfter(
  outcome: AttemptOutcome,
  attempt: number,
  maxAttempts: number,
): { status: TaskStatus; retry: boolean } {
  switch (outcome.kind) {
    case 'completed':
      return { status: 'COMPLETED', retry: false };
    case 'cancelled':
      return { status: 'CANCELLED', retry: false };
    case 'failed':
      if (!outcome.permanent && attempt < maxAttempts) return { status: 'QUEUED', retry: true };
      return { status: 'FAILED', retry: false };
    case 'timed_out':
      if (attempt < maxAttempts) return { status: 'QUEUED', retry: true };
      return { status: 'TIMEOUT', retry: false };
  }
}
