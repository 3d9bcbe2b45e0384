// The executor contract: a task definition names a kind (executor) and schemas; an executor runs
// one attempt of a task with a context giving cancellation, durable steps, progress and events.

export interface RetryPolicyWire {
  max_retries: number;
  retry_interval_ms: number;
  backoff_multiplier: number;
}

export interface TaskDefinition {
  id: string;
  name: string;
  description: string;
  version: string;
  /** Executor name: `function`, `http`, `agent`, `approval`. */
  kind: string;
  input_schema: Record<string, unknown>;
  output_schema: Record<string, unknown>;
  priority?: 'low' | 'medium' | 'high' | 'urgent';
  timeout_ms?: number;
  retry_policy?: Partial<RetryPolicyWire>;
  /** Approval policy: when set, a human approves before the task runs. */
  approval?: { required: boolean; timeout_ms?: number };
  /** Executor-specific settings (e.g. the http executor's method/url/headers). */
  config?: Record<string, unknown>;
  /** `function` kind only. */
  handler?: TaskHandler;
  /** Seed 003's classification, shown in listings. */
  type?: string;
}

export interface TaskEventInput {
  type: string;
  message?: string;
  payload?: Record<string, unknown>;
  agent_id?: string;
}

export interface StepOptions {
  /** An event appended in the same transaction that records the step: it exists iff the step is done. */
  event?: TaskEventInput;
}

export interface StepInfo {
  /** How many times the step's body has started, across all attempts. */
  runs: number;
  done: boolean;
}

export interface TaskLogger {
  info(msg: string, data?: Record<string, unknown>): void;
  warn(msg: string, data?: Record<string, unknown>): void;
  error(msg: string, data?: Record<string, unknown>): void;
}

/** What a running task sees. */
export interface TaskContext {
  readonly taskId: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly sessionId: string | null;
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Fires on cancel, timeout, lease loss and shutdown; `signal.reason` says which. */
  readonly signal: AbortSignal;
  readonly log: TaskLogger;
  /** W3C traceparent of the submitting request, for outbound calls. */
  readonly traceparent: string | undefined;
  /**
   * Runs `fn` once across all attempts: a finished step's JSON result is stored, and later
   * attempts get the stored value without running `fn` again.
   */
  step<T>(name: string, fn: () => Promise<T> | T, options?: StepOptions): Promise<T>;
  stepInfo(name: string): StepInfo | undefined;
  /**
   * Waits durably for a human decision: emits APPROVAL_REQUESTED, releases the worker slot and
   * suspends the attempt; the decision (or its timeout, which denies) requeues the task, which
   * replays to this point and gets the decision. Call it with a stable `name` per approval.
   */
  waitForApproval(request?: ApprovalRequest): Promise<ApprovalDecision>;
  /** Appends a PROGRESS event. */
  progress(message: string, payload?: Record<string, unknown>): Promise<void>;
  /** Appends an event (persisted, except live-only types such as LLM_PARTIAL). */
  emit(event: TaskEventInput): Promise<void>;
}

export interface ApprovalRequest {
  /** Distinguishes several approvals in one task (default: a counter per attempt). */
  name?: string;
  message?: string;
  payload?: Record<string, unknown>;
  /** Default: TASKGATE_APPROVAL_TIMEOUT_MS (60 min); on timeout the request is denied. An integer from 1 to 30 days in ms, else the task fails (PermanentError). */
  timeoutMs?: number;
}

export interface ApprovalDecision {
  approval_id: string;
  approved: boolean;
  feedback: string | null;
  modified_action: unknown;
  approved_by: string | null;
}

export interface TaskUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  estimated_cost: number;
}

export interface ExecutionResult {
  output: unknown;
  /** Final text for agent tasks (`result` on the wire). */
  result?: string;
  usage?: TaskUsage;
  model_used?: string;
  provider?: string;
  metadata?: Record<string, unknown>;
}

export type TaskHandler = (input: any, ctx: TaskContext) => Promise<unknown> | unknown;

/** The stored task as an executor sees it. */
export interface TaskSpec {
  id: string;
  kind: 'agent' | 'definition';
  definition: TaskDefinition | undefined;
  query: string;
  input: unknown;
  context: Record<string, unknown>;
  options: Record<string, unknown>;
  mode: string | null;
  metadata: Record<string, unknown>;
}

export interface Executor {
  readonly kind: string;
  run(task: TaskSpec, ctx: TaskContext): Promise<ExecutionResult>;
}

/** The task failed and must not be retried (bad input, 4xx from a called service, …). */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

/** The task failed but may succeed later; retry no sooner than `delayMs`. */
export class RetryAfterError extends Error {
  override name = 'RetryAfterError';
  constructor(message: string, readonly delayMs: number) {
    super(message);
  }
}

const SPENT = Symbol('taskgate.usage');

/**
 * Marks an attempt's error with what the attempt spent before it failed (LLM calls already paid
 * for): the engine records it as the task's usage when the task ends FAILED or CANCELLED, as a
 * completion records the result's. Returns the error.
 */
export function withUsage<E>(err: E, usage: TaskUsage): E {
  if (err !== null && typeof err === 'object') Object.defineProperty(err, SPENT, { value: usage, configurable: true });
  return err;
}

/** What withUsage marked on an error, if anything. */
export function usageSpent(err: unknown): TaskUsage | undefined {
  return err !== null && typeof err === 'object' ? (err as { [SPENT]?: TaskUsage })[SPENT] : undefined;
}
