// An in-memory TaskContext for executor tests: steps live in a Map shared across attempts (so
// replay can be tested), events are recorded, and the AbortSignal is under the test's control.
import type { StepInfo, TaskContext, TaskEventInput, TaskLogger } from '../../src/executors/types.js';

export interface StoredStep {
  runs: number;
  done: boolean;
  result: unknown;
}

export interface RecordedEvent extends TaskEventInput {
  attempt: number;
}

const quietLog: TaskLogger = { info() {}, warn() {}, error() {} };

export class MemoryTaskContext implements TaskContext {
  readonly controller = new AbortController();
  readonly signal: AbortSignal = this.controller.signal;
  readonly log = quietLog;
  readonly traceparent = undefined;
  /** Every emitted event in order, LLM_PARTIAL included. */
  readonly events: RecordedEvent[];
  readonly steps: Map<string, StoredStep>;
  #listeners: ((e: RecordedEvent) => void)[] = [];

  constructor(
    readonly taskId = 'task_test',
    readonly tenantId = 'ten_test',
    readonly userId = 'user_test',
    readonly sessionId: string | null = null,
    readonly attempt = 1,
    readonly maxAttempts = 3,
    shared?: { steps: Map<string, StoredStep>; events: RecordedEvent[] },
  ) {
    this.steps = shared?.steps ?? new Map();
    this.events = shared?.events ?? [];
  }

  /** The next attempt of the same task: same stored steps and event log, a fresh signal. */
  nextAttempt(): MemoryTaskContext {
    return new MemoryTaskContext(this.taskId, this.tenantId, this.userId, this.sessionId, this.attempt + 1, this.maxAttempts, { steps: this.steps, events: this.events });
  }

  async step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const s = this.steps.get(name);
    if (s?.done) return JSON.parse(JSON.stringify(s.result ?? null)) as T;
    const entry = s ?? { runs: 0, done: false, result: undefined };
    entry.runs++;
    this.steps.set(name, entry);
    const value = await fn();
    // stored as JSON, as the database does
    entry.result = JSON.parse(JSON.stringify(value ?? null));
    entry.done = true;
    return JSON.parse(JSON.stringify(entry.result)) as T;
  }

  stepInfo(name: string): StepInfo | undefined {
    const s = this.steps.get(name);
    return s ? { runs: s.runs, done: s.done } : undefined;
  }

  /** Agent tasks never ask for approval; the engine's implementation is tested elsewhere. */
  async waitForApproval(): Promise<never> {
    throw new Error('waitForApproval is not available in MemoryTaskContext');
  }

  async progress(message: string, payload?: Record<string, unknown>): Promise<void> {
    await this.emit({ type: 'PROGRESS', message, payload });
  }

  async emit(event: TaskEventInput): Promise<void> {
    const e = { ...event, attempt: this.attempt };
    this.events.push(e);
    for (const l of this.#listeners) l(e);
  }

  onEvent(fn: (e: RecordedEvent) => void): void {
    this.#listeners.push(fn);
  }

  /** Resolves with the first event of `type` (already emitted or future). */
  waitForEvent(type: string): Promise<RecordedEvent> {
    const hit = this.events.find((e) => e.type === type);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve) => this.onEvent((e) => e.type === type && resolve(e)));
  }

  types(opts: { partial?: boolean } = {}): string[] {
    return this.events.filter((e) => opts.partial || e.type !== 'LLM_PARTIAL').map((e) => e.type);
  }
}
