// Runs one attempt of a claimed task: builds its context (durable steps, events, AbortSignal),
// calls the executor, enforces the timeout, and writes the outcome with a fenced transition.
import type { Db } from '../storage/db.js';
import type { GroupCommit } from '../storage/group-commit.js';
import type { Completer } from './completer.js';
import type { AttemptGate } from './claim-window.js';
import { nowPlusMsSql, tasksTransition, sql, type EventSpec, type StoredEvent } from '../storage/queries/transitions.js';
import type { ClaimedTask } from '../storage/queries/transitions.js';
import { stepsFinish, stepsLoad, stepsStart } from '../storage/queries/steps.js';
import { approvalsEnsure, approvalsGetById, type ApprovalRow } from '../storage/queries/approvals.js';
import { newUuid } from '../domain/ids.js';
import { backoffDelayMs, nextStatusAfter, type AttemptOutcome } from '../domain/lifecycle.js';
import { EPHEMERAL_EVENT_TYPES } from '../contract/events.js';
import type { EventHub } from '../events/hub.js';
import {
  PermanentError, RetryAfterError, type ApprovalDecision, type ExecutionResult, type StepOptions, type TaskContext, type TaskLogger, type TaskSpec,
} from '../executors/types.js';
import type { Registry } from '../executors/registry.js';
import { AttemptAborted, AttemptControl, abortKindOf, type AbortKind } from './abort.js';

export interface RunnerDeps {
  db: Db;
  /** Outcome, event and step writes share commits through this. */
  commit: GroupCommit;
  /** Successful completions are written in batches through this. */
  completer: Completer;
  hub: EventHub;
  registry: Registry;
  workerId: string;
  cancelGraceMs: number;
  /** Default approval timeout (TASKGATE_APPROVAL_TIMEOUT_MS). */
  approvalTimeoutMs: number;
  log: TaskLogger;
  random?: () => number;
  onOutcome?: (task: ClaimedTask, status: string) => void;
  /** A task went back to the queue (wake the dispatcher). */
  onRequeue?: () => void;
}

/** A running attempt as the worker tracks it. */
export interface ActiveAttempt {
  taskId: string;
  attempt: number;
  controller: AttemptControl;
  pauseRequested: boolean;
  /**
   * The attempt's task is written RUNNING under this worker's lease (heartbeats renew it). False
   * while it runs in a claim window (the window's transaction holds its row instead).
   */
  leased: boolean;
  /** The claim window the attempt runs in, if any (engine/claim-window.ts). */
  gate?: AttemptGate;
  /** Set when the attempt parks itself to wait for this approval. */
  awaitingApprovalId?: string;
  /** Settles when the executor has returned: the worker slot is free, the outcome write may still be pending. */
  executed: Promise<void>;
  /** Settles when the outcome is written. */
  done: Promise<void>;
}

const decisionOf = (a: ApprovalRow): ApprovalDecision => ({
  approval_id: a.id, approved: a.status === 'approved', feedback: a.feedback, modified_action: a.modified_action ?? null, approved_by: a.decided_by,
});

/** Denials end the task FAILED with this message (PRODUCT.md §3 Approvals). */
export const approvalDenied = (d: ApprovalDecision): PermanentError => new PermanentError(`approval denied: ${d.feedback ?? 'no reason given'}`);

class LeaseLost extends Error {
  override name = 'LeaseLost';
}

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err)) || 'unknown error';

export class Runner {
  readonly #d: RunnerDeps;

  constructor(deps: RunnerDeps) {
    this.#d = deps;
  }

  /** Starts an attempt of a claimed task, or of one locked by a claim window (`gate`). */
  start(task: ClaimedTask, gate?: AttemptGate): ActiveAttempt {
    const controller = new AttemptControl();
    let executed!: () => void;
    const active: ActiveAttempt = {
      taskId: task.id, attempt: task.attempt, controller, pauseRequested: false, leased: gate === undefined, gate,
      executed: new Promise<void>((r) => (executed = r)), done: Promise.resolve(),
    };
    active.done = this.#run(task, active, executed)
      .catch((err) => this.#d.log.error('runner crashed', { task_id: task.id, err: errorMessage(err) }))
      .finally(executed);
    return active;
  }

  /**
   * Waits until the attempt holds its lease (at once unless it runs in a claim window, which this
   * closes); false, with the attempt aborted as lease_lost, if the window lost the task.
   */
  async #leased(active: ActiveAttempt): Promise<boolean> {
    if (!active.gate) return true;
    try {
      await active.gate.ready();
      return true;
    } catch {
      active.controller.abort(new AttemptAborted('lease_lost', 'lease lost'));
      return false;
    }
  }

  async #transition(task: ClaimedTask, active: ActiveAttempt, set: Parameters<typeof tasksTransition>[2], events: EventSpec[]): Promise<boolean> {
    if (!(await this.#leased(active))) return false;
    const res = await this.#d.commit.run((tx) =>
      tasksTransition(tx, { id: task.id, statuses: ['RUNNING'], attempt: task.attempt, leaseOwner: this.#d.workerId }, set, events),
    );
    if (res) this.#d.hub.publish(res.events);
    return res !== undefined;
  }

  async #run(task: ClaimedTask, active: ActiveAttempt, executed: () => void): Promise<void> {
    const started = Date.now();
    const timer = setTimeout(
      () => active.controller.abort(new AttemptAborted('timeout', `task timed out after ${task.timeout_ms} ms`)),
      task.timeout_ms,
    );
    let outcome: { result?: ExecutionResult; error?: unknown };
    try {
      const spec = this.#spec(task);
      const ctx = await this.#context(task, active);
      const executor = this.#executorFor(spec);
      const run = async (): Promise<ExecutionResult> => {
        if (spec.definition?.approval?.required || task.context?.require_approval === true) {
          const d = await ctx.waitForApproval({
            name: 'before-run',
            message: `Approve running ${spec.definition?.name ?? 'this task'}`,
            payload: { task_definition_id: task.task_definition_id, query: task.query || undefined, input: task.input ?? undefined },
            timeoutMs: spec.definition?.approval?.timeout_ms,
          });
          if (!d.approved) throw approvalDenied(d);
        }
        return executor.run(spec, ctx);
      };
      outcome = await this.#raceWithGrace(run(), active.controller);
    } catch (err) {
      outcome = { error: err };
    } finally {
      clearTimeout(timer);
    }
    // the slot frees now, so the next claim overlaps this outcome's (batched) write
    executed();
    await this.#finish(task, active, outcome, Date.now() - started);
  }

  #spec(task: ClaimedTask): TaskSpec {
    const definition = task.task_definition_id ? this.#d.registry.get(task.tenant_id, task.task_definition_id) : undefined;
    if (task.kind === 'definition' && !definition) throw new PermanentError(`task definition ${task.task_definition_id} no longer exists`);
    return {
      id: task.id, kind: task.kind, definition, query: task.query, input: task.input, context: task.context,
      options: task.options, mode: task.mode, metadata: task.metadata,
    };
  }

  #executorFor(spec: TaskSpec) {
    const kind = spec.kind === 'agent' ? 'agent' : spec.definition!.kind;
    const ex = this.#d.registry.executor(kind);
    if (!ex) {
      throw new PermanentError(
        kind === 'agent' ? 'agent tasks need an LLM provider: set OPENAI_API_KEY, ANTHROPIC_API_KEY or TASKGATE_LLM_CONFIG' : `no executor for kind ${kind}`,
      );
    }
    return ex;
  }

  /** Awaits the executor; once the signal fires, gives it cancelGraceMs to stop before moving on. */
  #raceWithGrace(run: Promise<ExecutionResult>, control: AttemptControl): Promise<{ result?: ExecutionResult; error?: unknown }> {
    return new Promise((resolve) => {
      let graceTimer: NodeJS.Timeout | undefined;
      const settle = (out: { result?: ExecutionResult; error?: unknown }) => {
        clearTimeout(graceTimer);
        control.offAbort();
        resolve(out);
      };
      run.then((result) => settle({ result }), (error: unknown) => settle({ error }));
      control.onAbort(() => {
        graceTimer = setTimeout(() => settle({ error: control.reason }), this.#d.cancelGraceMs);
      });
    });
  }

  async #context(task: ClaimedTask, active: ActiveAttempt): Promise<TaskContext> {
    const { db, workerId, hub, commit } = this.#d;
    // a task that never recorded a step (the claim tells) skips the read
    const steps = new Map(task.has_steps === false ? [] : (await stepsLoad(db, task.id)).map((s) => [s.name, s]));
    const fence = { taskId: task.id, attempt: task.attempt, owner: workerId };
    const lose = (): never => {
      active.controller.abort(new AttemptAborted('lease_lost', 'lease lost'));
      throw new LeaseLost('lease lost');
    };
    const emit = async (e: EventSpec): Promise<void> => {
      if (EPHEMERAL_EVENT_TYPES.has(e.type)) {
        hub.publishEphemeral({
          workflow_id: task.id, type: e.type, agent_id: e.agent_id ?? null, message: e.message ?? null,
          payload: e.payload ?? null, timestamp: new Date().toISOString(), seq: 0, stream_id: null,
        });
        return;
      }
      if (!(await this.#transition(task, active, {}, [e]))) lose();
    };
    const log = this.#d.log;
    // (waitForApproval below is a method: `this` there is the context)
    const leased = (a: ActiveAttempt) => this.#leased(a);
    const approvalTimeoutMs = this.#d.approvalTimeoutMs;
    let approvalCounter = 0;
    const step = async <T>(name: string, fn: () => Promise<T> | T, options?: StepOptions): Promise<T> => {
      const known = steps.get(name);
      if (known?.done) return known.result as T;
      active.controller.throwIfAborted();
      if (active.pauseRequested) active.controller.abort(new AttemptAborted('pause', 'paused at a step boundary'));
      active.controller.throwIfAborted();
      if (!(await leased(active))) lose();
      const runs = await commit.run((tx) => stepsStart(tx, { ...fence, name }));
      if (runs === undefined) lose();
      steps.set(name, { name, runs: runs!, done: false, result: null });
      const value = await fn();
      const stored = value === undefined ? null : (JSON.parse(JSON.stringify(value)) as unknown);
      const event = options?.event;
      const written = await commit.run(async (tx) => {
        if (!(await stepsFinish(tx, { ...fence, name, result: stored }))) return undefined;
        if (!event) return [];
        const res = await tasksTransition(tx, { id: task.id, statuses: ['RUNNING'], attempt: task.attempt, leaseOwner: workerId }, {}, [
          { type: event.type, message: event.message ?? null, payload: event.payload ?? null, agent_id: event.agent_id ?? null },
        ]);
        return res?.events;
      });
      if (!written) lose();
      hub.publish(written!);
      steps.set(name, { name, runs: runs!, done: true, result: stored });
      return stored as T;
    };
    return {
      taskId: task.id, tenantId: task.tenant_id, userId: task.user_id, sessionId: task.session_id,
      attempt: task.attempt, maxAttempts: task.max_attempts,
      get signal() {
        return active.controller.signal; // made on first read (AttemptControl)
      },
      traceparent: typeof task.metadata?.traceparent === 'string' ? task.metadata.traceparent : undefined,
      log: {
        info: (m, d) => log.info(m, { task_id: task.id, ...d }),
        warn: (m, d) => log.warn(m, { task_id: task.id, ...d }),
        error: (m, d) => log.error(m, { task_id: task.id, ...d }),
      },
      stepInfo: (name) => {
        const s = steps.get(name);
        return s ? { runs: s.runs, done: s.done } : undefined;
      },
      step,
      async waitForApproval(request = {}) {
        const name = `approval:${request.name ?? String(approvalCounter++)}`;
        const known = steps.get(name);
        if (known?.done) return known.result as ApprovalDecision;
        if (!(await leased(active))) lose();
        const { row, created } = await approvalsEnsure(db, {
          id: newUuid(), tenantId: task.tenant_id, taskId: task.id, stepName: name, message: request.message ?? null,
          payload: request.payload ?? null, timeoutMs: request.timeoutMs ?? approvalTimeoutMs,
        });
        if (created) {
          await emit({
            type: 'APPROVAL_REQUESTED',
            // clients of the reference gateway look for a 36-character UUID after `id=`
            message: `Approval required (id=${row.id})${request.message ? `: ${request.message}` : ''}`,
            payload: { approval_id: row.id, ...(request.payload ?? {}), message: request.message ?? null, timeout_at: row.timeout_at },
          });
        }
        if (row.status !== 'pending') return step(name, () => decisionOf(row));
        active.awaitingApprovalId = row.id;
        active.controller.abort(new AttemptAborted('suspend', 'waiting for approval'));
        throw active.controller.reason;
      },
      progress: (message, payload) => emit({ type: 'PROGRESS', message, payload: payload ?? null }),
      emit: (e) => emit({ type: e.type, message: e.message ?? null, payload: e.payload ?? null, agent_id: e.agent_id ?? null }),
    };
  }

  async #finish(task: ClaimedTask, active: ActiveAttempt, o: { result?: ExecutionResult; error?: unknown }, durationMs: number): Promise<void> {
    const kind: AbortKind | undefined = abortKindOf(active.controller);
    if (kind === 'lease_lost' || (o.error instanceof LeaseLost)) return; // someone else owns the task now
    // shutting down: a claim window still open leaves the task as it found it (nothing to write)
    if (kind === 'shutdown') return active.gate?.giveBack() ? undefined : this.#release(task, active);
    if (kind === 'pause') return this.#pause(task, active);
    if (kind === 'suspend') return this.#suspend(task, active, active.awaitingApprovalId!);

    let outcome: AttemptOutcome;
    let errorText: string | null = null;
    let retryAfterMs = 0;
    const def = task.task_definition_id ? this.#d.registry.get(task.tenant_id, task.task_definition_id) : undefined;
    if (kind === 'cancel') outcome = { kind: 'cancelled' };
    else if (kind === 'timeout') {
      outcome = { kind: 'timed_out' };
      errorText = `task timed out after ${task.timeout_ms} ms`;
    } else if (o.error !== undefined) {
      outcome = { kind: 'failed', permanent: o.error instanceof PermanentError };
      errorText = errorMessage(o.error);
      if (o.error instanceof RetryAfterError) retryAfterMs = o.error.delayMs;
    } else {
      const violation = def && task.kind === 'definition' ? this.#d.registry.validateOutput(def, o.result!.output) : undefined;
      if (violation) {
        outcome = { kind: 'failed', permanent: true };
        errorText = `output does not match the definition's output_schema at ${violation.path}: ${violation.reason}`;
      } else outcome = { kind: 'completed' };
    }

    const next = nextStatusAfter(outcome, task.attempt, task.max_attempts);
    if (next.retry) {
      const delay = Math.max(
        retryAfterMs,
        backoffDelayMs(
          { maxRetries: task.max_attempts - 1, retryIntervalMs: task.retry_interval_ms, backoffMultiplier: task.backoff_multiplier },
          task.attempt,
          this.#d.random,
        ),
      );
      await this.#transition(
        task,
        active,
        { status: 'QUEUED', lease_owner: null, lease_expires_at: null, error: errorText, run_at: sql(nowPlusMsSql(String(delay))) },
        [
          { type: 'ERROR_OCCURRED', message: errorText, payload: { attempt: task.attempt, retryable: true } },
          { type: 'RETRYING', message: `retrying in ${delay} ms (attempt ${task.attempt + 1} of ${task.max_attempts})`, payload: { attempt: task.attempt, next_attempt: task.attempt + 1, delay_ms: delay } },
        ],
      );
      this.#d.onOutcome?.(task, 'RETRY');
      return;
    }

    const common = { lease_owner: null, lease_expires_at: null, completed_at: sql('now()') };
    let events: EventSpec[];
    let set: Parameters<typeof tasksTransition>[2];
    switch (next.status) {
      case 'COMPLETED': {
        const r = o.result!;
        const row = {
          id: task.id, attempt: task.attempt, output: r.output ?? null, result: r.result ?? null,
          usage: (r.usage as unknown as Record<string, number> | undefined) ?? null, model_used: r.model_used ?? null,
          provider: r.provider ?? null, metadata: r.metadata ?? null, duration_ms: durationMs,
        };
        // in an open claim window the completion is written with it; otherwise as a batch
        const events = await (active.gate?.offer(row) ?? ((await this.#leased(active)) ? this.#d.completer.complete(row) : undefined));
        if (!events) return; // the task was lost meanwhile
        this.#d.hub.publish(events);
        this.#d.onOutcome?.(task, 'COMPLETED');
        return;
      }
      case 'CANCELLED':
        set = { ...common, status: 'CANCELLED' };
        events = [
          { type: 'WORKFLOW_CANCELLED', message: task.cancel_reason ? `Task cancelled: ${task.cancel_reason}` : 'Task cancelled', payload: { attempt: task.attempt } },
          { type: 'STREAM_END', message: 'Stream ended', payload: { status: 'CANCELLED' } },
        ];
        break;
      default:
        set = { ...common, status: next.status, error: errorText };
        events = [
          { type: 'ERROR_OCCURRED', message: errorText, payload: { attempt: task.attempt, retryable: false } },
          { type: 'WORKFLOW_FAILED', message: errorText, payload: { status: next.status, attempt: task.attempt } },
          { type: 'STREAM_END', message: 'Stream ended', payload: { status: next.status } },
        ];
    }
    await this.#transition(task, active, set, events);
    this.#d.onOutcome?.(task, next.status);
  }

  /** Shutdown: give the task back without counting the attempt. */
  async #release(task: ClaimedTask, active: ActiveAttempt): Promise<void> {
    await this.#transition(
      task,
      active,
      { status: 'QUEUED', lease_owner: null, lease_expires_at: null, attempt: task.attempt - 1, run_at: sql('now()') },
      [{ type: 'WARNING', message: 'worker shutting down; task released back to the queue', payload: { attempt: task.attempt } }],
    );
  }

  /** Parks the task for an approval: still RUNNING for clients, but holding no lease or slot. */
  async #suspend(task: ClaimedTask, active: ActiveAttempt, approvalId: string): Promise<void> {
    const parked = await this.#transition(
      task,
      active,
      { lease_owner: null, lease_expires_at: null, awaiting_approval_id: approvalId, attempt: task.attempt - 1 },
      [],
    );
    if (!parked) return;
    // a decision that came before we parked could not requeue us: do it now
    const approval = await approvalsGetById(this.#d.db, approvalId);
    if (approval && approval.status !== 'pending') {
      const res = await tasksTransition(
        this.#d.db,
        { id: task.id, statuses: ['RUNNING'], awaitingApprovalId: approvalId },
        { status: 'QUEUED', run_at: sql('now()'), awaiting_approval_id: null },
        [],
      );
      if (res) this.#d.onRequeue?.();
    }
  }

  async #pause(task: ClaimedTask, active: ActiveAttempt): Promise<void> {
    await this.#transition(
      task,
      active,
      { status: 'PAUSED', lease_owner: null, lease_expires_at: null, attempt: task.attempt - 1, pause_requested: false, paused_at: sql('now()') },
      [{ type: 'WORKFLOW_PAUSED', message: 'Task paused', payload: { attempt: task.attempt } }],
    );
  }
}

export type { StoredEvent };
