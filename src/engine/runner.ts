// Runs one attempt of a claimed task: builds its context (durable steps, events, AbortSignal),
// calls the executor, enforces the timeout, and writes the outcome with a fenced transition.
import type { Db, Queryable } from '../storage/db.js';
import type { GroupCommit } from '../storage/group-commit.js';
import type { Completer } from './completer.js';
import type { AttemptGate } from './claim-window.js';
import { nowPlusMsSql, tasksTransition, sql, type EventSpec, type Fence, type StoredEvent } from '../storage/queries/transitions.js';
import type { ClaimedTask } from '../storage/queries/transitions.js';
import { stepsLoad } from '../storage/queries/steps.js';
import { approvalsCancelForEndedTask, approvalsGetById } from '../storage/queries/approvals.js';
import { backoffDelayMs, nextStatusAfter, type AttemptOutcome } from '../domain/lifecycle.js';
import type { EventHub } from '../events/hub.js';
import {
  PermanentError, RetryAfterError, usageSpent, type ApprovalDecision, type ExecutionResult, type Executor, type TaskContext, type TaskLogger, type TaskSpec,
} from '../executors/types.js';
import type { Registry } from '../executors/registry.js';
import { AttemptAborted, AttemptControl, abortKindOf, type AbortKind } from './abort.js';
import { retryThroughOutage } from './outage.js';
import { isDatabaseUnavailable } from '../storage/unavailable.js';
import { currentVersion, latestVersion } from '../storage/migrate.js';
import { AttemptContext, LeaseLost, type AttemptHost } from './attempt-context.js';
import { asStored, errorMessage } from './results.js';

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
  /** TASKGATE_LEASE_MS: how long a failed write is tried again (engine/outage.ts). */
  leaseMs: number;
  /** Default approval timeout (TASKGATE_APPROVAL_TIMEOUT_MS). */
  approvalTimeoutMs: number;
  log: TaskLogger;
  random?: () => number;
  onOutcome?: (task: ClaimedTask, status: string) => void;
  /** A task went back to the queue, runnable now or after a retry's backoff (wake the dispatchers). */
  onRequeue?: () => void;
  /** A claimed task's definition is unknown and the schema is newer than this Taskgate: stop claiming. */
  onSchemaAhead?: (version: number) => void;
  /** A write failed and is tried again (WorkerDeps.onDbError). */
  onDbError?: (err: unknown) => void;
}

/** A running attempt as the worker tracks it. */
export interface ActiveAttempt {
  taskId: string;
  tenantId: string;
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
  /** Settles (never rejects) when the outcome is written. */
  done: Promise<void>;
}

/**
 * What the worker hears of its attempts: one object for all of them (a promise and a callback per
 * attempt and per hook cost a short task ~1 KB of garbage).
 */
export interface AttemptHooks {
  /** The executor has returned: the worker slot is free, the outcome write may still be pending. Once per attempt. */
  executed(active: ActiveAttempt): void;
  /** The outcome is written (or the attempt gave up). Once per attempt, after executed(). */
  done(active: ActiveAttempt): void;
}

/** Denials end the task FAILED with this message (PRODUCT.md §3 Approvals). */
/** Why a worker gave back a task of a kind only a newer Taskgate knows. */
const SCHEMA_AHEAD_WARNING = 'the database schema is newer than this worker: task released back to the queue for a newer worker';

export const approvalDenied = (d: ApprovalDecision): PermanentError => new PermanentError(`approval denied: ${d.feedback ?? 'no reason given'}`);

/** A handler that threw or rejected with undefined failed all the same: its error must not read as no error. */
const NO_ERROR_GIVEN = (): Error => new Error('the handler failed without an error (it threw or rejected with undefined)');

export class Runner {
  readonly #d: RunnerDeps;
  /** What every attempt's context uses of this runner. */
  readonly #host: AttemptHost;

  constructor(deps: RunnerDeps) {
    this.#d = deps;
    this.#host = {
      ...deps,
      leased: (active) => this.#leased(active),
      transition: (task, active, events) => this.#transition(task, active, {}, events),
      durable: (active, what, write) => this.#durable(active, what, write),
    };
  }

  /** Starts an attempt of a claimed task, or of one locked by a claim window (`gate`). */
  start(task: ClaimedTask, gate: AttemptGate | undefined, hooks: AttemptHooks): ActiveAttempt {
    const active: ActiveAttempt = {
      taskId: task.id, tenantId: task.tenant_id, attempt: task.attempt, controller: new AttemptControl(), pauseRequested: task.pause_requested, leased: gate === undefined, gate,
      done: undefined as unknown as Promise<void>,
    };
    // a request the task carried into its claim (one that reached it between a read and a
    // requeue) is carried out now, not at the first heartbeat after the work is done
    if (task.cancel_requested) active.controller.abort(new AttemptAborted('cancel', 'cancelled'));
    active.done = this.#run(task, active, hooks);
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

  async #transition(
    task: ClaimedTask, active: ActiveAttempt, set: Parameters<typeof tasksTransition>[2], events: EventSpec[], fence: RequestFence = {},
    ended?: (tx: Queryable) => Promise<unknown>,
  ): Promise<boolean> {
    if (!(await this.#leased(active))) return false;
    const res = await this.#d.commit.run(async (tx) => {
      const moved = await tasksTransition(tx, { id: task.id, statuses: ['RUNNING'], attempt: task.attempt, leaseOwner: this.#d.workerId, ...fence }, set, events);
      if (moved && ended) await ended(tx);
      return moved;
    });
    if (res) this.#d.hub.publish(res.events);
    return res !== undefined;
  }

  /** The attempt from start to written outcome; never rejects (the hooks run whatever happens). */
  async #run(task: ClaimedTask, active: ActiveAttempt, hooks: AttemptHooks): Promise<void> {
    let executed = false;
    try {
      const started = Date.now();
      const timeOut = () => active.controller.abort(new AttemptAborted('timeout', `task timed out after ${task.timeout_ms} ms`));
      const timer = setTimeout(timeOut, task.timeout_ms);
      let outcome: { result?: ExecutionResult; error?: unknown };
      try {
        const spec = this.#spec(task) ?? (await this.#specAfterReload(task, active));
        // a task that never recorded a step (the claim tells) skips the read
        const steps = task.has_steps === false ? undefined : await this.#durable(active, 'loading the steps', () => stepsLoad(this.#d.db, task.id));
        const ctx = new AttemptContext(this.#host, task, active, steps);
        const executor = this.#executorFor(spec);
        // the approval kind is itself the human decision: asking first would ask twice
        const needsApproval = executor.kind !== 'approval' && (spec.definition?.approval?.required || task.context?.require_approval === true);
        outcome = active.controller.aborted
          ? { error: active.controller.reason }
          : await this.#raceWithGrace(needsApproval ? this.#approveThenRun(task, spec, ctx, executor) : executor.run(spec, ctx), active.controller);
      } catch (err) {
        outcome = { error: err };
      } finally {
        clearTimeout(timer);
      }
      // a handler that held the event loop past its deadline (CPU-bound, never yielding) kept the
      // timer from firing, and its outcome would have stood: the deadline passed, so it timed out
      if (!active.controller.aborted && Date.now() - started > task.timeout_ms) timeOut();
      // the slot frees now, so the next claim overlaps this outcome's (batched) write
      executed = true;
      hooks.executed(active);
      await this.#finishRetrying(task, active, outcome, Date.now() - started);
    } catch (err) {
      this.#d.log.error('runner crashed', { task_id: task.id, err: errorMessage(err) });
    } finally {
      if (!executed) hooks.executed(active);
      hooks.done(active);
    }
  }

  /** The definition (or the task's context) asks for an approval before the executor runs. */
  async #approveThenRun(task: ClaimedTask, spec: TaskSpec, ctx: TaskContext, executor: Executor): Promise<ExecutionResult> {
    const d = await ctx.waitForApproval({
      name: 'before-run',
      message: `Approve running ${spec.definition?.name ?? 'this task'}`,
      payload: { task_definition_id: task.task_definition_id, query: task.query || undefined, input: task.input ?? undefined },
      timeoutMs: spec.definition?.approval?.timeout_ms,
    });
    if (!d.approved) throw approvalDenied(d);
    return executor.run(spec, ctx);
  }

  /** The task's spec; undefined when its definition is not (or not yet) known to this process. */
  #spec(task: ClaimedTask, definition = task.task_definition_id ? this.#d.registry.get(task.tenant_id, task.task_definition_id) : undefined): TaskSpec | undefined {
    if (task.kind === 'definition' && !definition) return undefined;
    return {
      id: task.id, kind: task.kind, definition, query: task.query, input: task.input, context: task.context,
      options: task.options, mode: task.mode, metadata: task.metadata,
    };
  }

  /**
   * A tenant's definition created on another process a moment ago may not have reached this one
   * yet. Still unknown: gone — unless a newer Taskgate has migrated the database (a rolling
   * upgrade) and this task is of a kind only it knows; this worker notices that at most every
   * SCHEMA_CHECK_EVERY_POLLS polls, so it looks now, and gives the task back uncounted.
   */
  async #specAfterReload(task: ClaimedTask, active: ActiveAttempt): Promise<TaskSpec> {
    const spec = this.#spec(task, await this.#d.registry.getFresh(task.tenant_id, task.task_definition_id!));
    if (spec) return spec;
    const version = await currentVersion(this.#d.db).catch(() => 0);
    if (version > latestVersion()) {
      this.#d.onSchemaAhead?.(version);
      active.controller.abort(new AttemptAborted('shutdown', SCHEMA_AHEAD_WARNING));
      throw active.controller.reason;
    }
    throw new PermanentError(`task definition ${task.task_definition_id} no longer exists`);
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
      // (an executor that returned a plain value or threw at once is handled like an async one)
      Promise.resolve(run).then((result) => settle({ result }), (error: unknown) => settle({ error: error === undefined ? NO_ERROR_GIVEN() : error }));
      control.onAbort(() => {
        graceTimer = setTimeout(() => settle({ error: control.reason }), this.#d.cancelGraceMs);
      });
    });
  }

  /**
   * Writes the outcome, trying again after a failed write (a dropped connection, a database
   * restart) for up to a lease's length while the heartbeats keep the lease: left to the lease
   * instead, a task that succeeded ran again — or, on its last attempt, FAILED "lease expired"
   * with its result thrown away. The writes are fenced, so one that committed unseen, or one
   * after the lease was lost anyway, changes nothing. What the attempt's end was is decided
   * once: a shutdown asked for meanwhile must not turn a finished result into a release — it
   * stops the tries instead (the task is then left to its lease).
   */
  async #finishRetrying(task: ClaimedTask, active: ActiveAttempt, o: { result?: ExecutionResult; error?: unknown }, durationMs: number): Promise<void> {
    const kind = abortKindOf(active.controller);
    return retryThroughOutage(() => this.#finish(task, active, o, durationMs, kind), {
      forMs: this.#d.leaseMs,
      retryable: () => true,
      stop: () => {
        const now = abortKindOf(active.controller);
        return now !== kind && (now === 'shutdown' || now === 'lease_lost');
      },
      onRetry: (err, wait) => {
        this.#d.onDbError?.(err);
        this.#d.log.warn('writing the outcome failed; trying again', { task_id: task.id, attempt: task.attempt, retry_in_ms: wait, err: errorMessage(err) });
      },
    });
  }

  /**
   * A write of a running attempt (a step record, an event, an approval request) while the
   * database cannot be reached: tried again for up to a lease, unless the attempt is aborted
   * meanwhile — an attempt failed by a database restart counted against its task's retries, and
   * failed a task without any left although its own work had gone fine.
   */
  #durable<T>(active: ActiveAttempt, what: string, write: () => Promise<T>): Promise<T> {
    return retryThroughOutage(write, {
      forMs: this.#d.leaseMs,
      retryable: isDatabaseUnavailable,
      stop: () => active.controller.signal.aborted,
      onRetry: (err, wait) => {
        this.#d.onDbError?.(err);
        this.#d.log.warn(`${what} failed: database unavailable; trying again`, { task_id: active.taskId, attempt: active.attempt, retry_in_ms: wait, err: errorMessage(err) });
      },
    });
  }

  async #finish(task: ClaimedTask, active: ActiveAttempt, o: { result?: ExecutionResult; error?: unknown }, durationMs: number, kind: AbortKind | undefined): Promise<void> {
    if (kind === 'lease_lost' || (o.error instanceof LeaseLost)) return; // someone else owns the task now
    // shutting down: a claim window still open leaves the task as it found it (nothing to write)
    if (kind === 'shutdown') return active.gate?.giveBack() ? undefined : this.#release(task, active, (o.error as Error | undefined)?.message);
    if (kind === 'pause') return this.#pause(task, active, o.error);
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
      if (o.error instanceof RetryAfterError) retryAfterMs = retryAfterDelay(o.error.delayMs);
    } else {
      const stored = asStored(o.result!);
      const unstorable = 'problem' in stored ? stored.problem : undefined;
      // the output as it will be stored (toJSON applied, a Date a string, a function null) is what
      // its schema describes: checked as returned, a toJSON could store what the schema refuses
      const violation = 'problem' in stored || !def || task.kind !== 'definition' ? undefined : this.#d.registry.validateOutput(def, stored.output());
      if (unstorable) {
        // a cycle or a BigInt: the completion's statement would throw, for the whole batch it is in
        outcome = { kind: 'failed', permanent: true };
        errorText = unstorable;
      } else if (violation) {
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
      const failed: EventSpec = { type: 'ERROR_OCCURRED', message: errorText, payload: { attempt: task.attempt, retryable: true } };
      const retried = await this.#transition(
        task,
        active,
        // what the attempt spent shows while the task waits (and stays if it is cancelled meanwhile)
        { status: 'QUEUED', lease_owner: null, lease_expires_at: null, error: errorText, run_at: sql(nowPlusMsSql(String(delay))), ...spentOf(o.error) },
        [failed, { type: 'RETRYING', message: `retrying in ${delay} ms (attempt ${task.attempt + 1} of ${task.max_attempts})`, payload: { attempt: task.attempt, next_attempt: task.attempt + 1, delay_ms: delay } }],
        { cancelRequested: false, pauseRequested: false },
      );
      if (retried) {
        this.#d.onOutcome?.(task, 'RETRY');
        // back in the queue, due after its backoff: dispatchers that drained it must learn when
        this.#d.onRequeue?.();
      } else await this.#stopInsteadOfRetry(task, active, failed, errorText, delay, o.error);
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
        if (!events) {
          // fenced out: the task was lost meanwhile, or a cancel committed before the outcome (its
          // 202 said the attempt is being stopped — a cancel wins, whatever the attempt returned)
          if (!active.gate) await this.#stopAsRequested(task, active, []);
          return;
        }
        this.#d.hub.publish(events);
        this.#d.onOutcome?.(task, 'COMPLETED');
        return;
      }
      case 'CANCELLED':
        set = { ...common, status: 'CANCELLED', ...spentOf(o.error) };
        events = cancelledEvents(task);
        break;
      default: {
        const failed: EventSpec = { type: 'ERROR_OCCURRED', message: errorText, payload: { attempt: task.attempt, retryable: false } };
        const ended = await this.#transition(
          task,
          active,
          { ...common, status: next.status, error: errorText, ...spentOf(o.error) },
          [
            failed,
            { type: 'WORKFLOW_FAILED', message: errorText, payload: { status: next.status, attempt: task.attempt } },
            { type: 'STREAM_END', message: 'Stream ended', payload: { status: next.status } },
          ],
          { cancelRequested: false },
        );
        if (ended) this.#d.onOutcome?.(task, next.status);
        // a cancel committed while the last attempt was failing (or timing out) wins, as over a
        // completion and a retry: its 202 said the task ends CANCELLED. A pause does not undo a
        // final failure: a resumed task would have no attempt left to run.
        else await this.#stopAsRequested(task, active, [failed], { cancelled: spentOf(o.error) });
        return;
      }
    }
    await this.#transition(task, active, set, events);
    this.#d.onOutcome?.(task, next.status);
  }

  /**
   * A cancel or a pause asked for while the attempt was failing (before its signal reached the
   * attempt) is carried out instead of the retry: requeued with the request still set, the task
   * ran its remaining attempts until a heartbeat noticed — a cancel answered 202 then ignored.
   * The failed attempt counts; a paused task keeps the retry's delay for its resume.
   */
  async #stopInsteadOfRetry(task: ClaimedTask, active: ActiveAttempt, failed: EventSpec, errorText: string | null, delay: number, err: unknown): Promise<void> {
    await this.#stopAsRequested(task, active, [failed], {
      cancelled: spentOf(err), paused: { error: errorText, run_at: sql(nowPlusMsSql(String(delay))), ...spentOf(err) },
    });
  }

  /**
   * Carries out a cancel or a pause requested of the attempt, instead of the transition it was
   * making (a retry, a shutdown release, a park for an approval, a withdrawn pause's requeue, all
   * fenced on neither being requested): a task left in the queue or parked with the request set
   * ran on — to COMPLETED after the 202, if its next attempt was short. A cancel wins over a pause.
   * `extra` adds columns to each (a paused task that gave its attempt back, a retry's delay).
   * Returns whether the task stopped; false when neither is requested now (or the lease is gone).
   */
  async #stopAsRequested(
    task: ClaimedTask, active: ActiveAttempt, before: EventSpec[],
    extra: { cancelled?: Parameters<typeof tasksTransition>[2]; paused?: Parameters<typeof tasksTransition>[2] } = {},
  ): Promise<boolean> {
    const base = { lease_owner: null, lease_expires_at: null };
    const cancelled = await this.#transition(
      task,
      active,
      { ...base, status: 'CANCELLED', completed_at: sql('now()'), ...extra.cancelled },
      [...before, ...cancelledEvents(task)],
      { cancelRequested: true },
      // its pending approvals can no longer be decided (as the cancel route writes them)
      (tx) => approvalsCancelForEndedTask(tx, task.id),
    );
    if (cancelled) {
      this.#d.onOutcome?.(task, 'CANCELLED');
      return true;
    }
    const paused = await this.#transition(
      task,
      active,
      { ...base, status: 'PAUSED', pause_requested: false, paused_at: sql('now()'), awaiting_approval_id: null, ...extra.paused },
      [...before, { type: 'WORKFLOW_PAUSED', message: 'Task paused', payload: { attempt: task.attempt } }],
      { cancelRequested: false, pauseRequested: true },
    );
    if (paused) this.#d.onOutcome?.(task, 'PAUSED');
    return paused;
  }

  /**
   * #stopAsRequested for an attempt that stopped without failing: paused, it is not counted. What
   * it spent (`err`'s usage, withUsage) is written either way: a paused task shows it, and keeps
   * it if it is cancelled while paused.
   */
  #stopGivingBack(task: ClaimedTask, active: ActiveAttempt, err?: unknown): Promise<boolean> {
    return this.#stopAsRequested(task, active, [], { cancelled: spentOf(err), paused: { attempt: task.attempt - 1, ...spentOf(err) } });
  }

  /** Shutdown: give the task back without counting the attempt (or stop it as requested). */
  async #release(task: ClaimedTask, active: ActiveAttempt, why?: string): Promise<void> {
    const message = why === SCHEMA_AHEAD_WARNING ? why : 'worker shutting down; task released back to the queue';
    const warning: EventSpec = { type: 'WARNING', message, payload: { attempt: task.attempt } };
    const released = await this.#transition(
      task,
      active,
      { status: 'QUEUED', lease_owner: null, lease_expires_at: null, attempt: task.attempt - 1, run_at: sql('now()') },
      [warning],
      NOTHING_REQUESTED,
    );
    // the other processes' workers take it now, not at their next poll (a deploy's hand-off)
    if (released) this.#d.onRequeue?.();
    else await this.#stopGivingBack(task, active);
  }

  /** Parks the task for an approval: still RUNNING for clients, but holding no lease or slot. */
  async #suspend(task: ClaimedTask, active: ActiveAttempt, approvalId: string): Promise<void> {
    const parked = await this.#transition(
      task,
      active,
      { lease_owner: null, lease_expires_at: null, awaiting_approval_id: approvalId, attempt: task.attempt - 1 },
      [],
      NOTHING_REQUESTED,
    );
    // a paused task asks for its approval again when resumed (the approval stays pending)
    if (!parked) return void (await this.#stopGivingBack(task, active));
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

  /**
   * Pauses at a step boundary — only while the pause is still requested. One withdrawn after this
   * attempt stopped for it (a resume while RUNNING) leaves nothing to pause: the task goes back to
   * the queue instead, this attempt not counted, and continues from its finished steps.
   */
  async #pause(task: ClaimedTask, active: ActiveAttempt, err: unknown): Promise<void> {
    // a cancel that came after the pause was carried out (the first abort wins) still counts
    if (await this.#stopGivingBack(task, active, err)) return;
    const requeued = await this.#transition(
      task,
      active,
      { status: 'QUEUED', lease_owner: null, lease_expires_at: null, attempt: task.attempt - 1, run_at: sql('now()'), ...spentOf(err) },
      // said, or the log shows two starts of one attempt with nothing between them
      [{ type: 'WARNING', message: 'pause withdrawn after the attempt stopped for it; task back in the queue', payload: { reason: 'pause_withdrawn', attempt: task.attempt } }],
      NOTHING_REQUESTED,
    );
    if (requeued) this.#d.onRequeue?.();
  }
}

export type { StoredEvent };

/** The part of a worker's fence about requests: a cancel and a pause, each (not) requested. */
type RequestFence = Pick<Fence, 'pauseRequested' | 'cancelRequested'>;
/** A transition that leaves the task to run later must not drop a request made meanwhile. */
const NOTHING_REQUESTED: RequestFence = { cancelRequested: false, pauseRequested: false };

/** The events of an attempt that ends its task CANCELLED. */
function cancelledEvents(task: ClaimedTask): EventSpec[] {
  return [
    { type: 'WORKFLOW_CANCELLED', message: task.cancel_reason ? `Task cancelled: ${task.cancel_reason}` : 'Task cancelled', payload: { attempt: task.attempt } },
    { type: 'STREAM_END', message: 'Stream ended', payload: { status: 'CANCELLED' } },
  ];
}

/** The longest an executor's Retry-After may park a task: an upstream's say-so is not a lease on the queue for years. */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * A RetryAfterError's delay as the engine waits it: at most MAX_RETRY_AFTER_MS (a provider's
 * `Retry-After: 10000000000000` once overflowed the database's interval, crashing the attempt's
 * write and leaving the task RUNNING until its lease ran out), and 0 for what is not a delay.
 */
function retryAfterDelay(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? Math.min(Math.round(ms), MAX_RETRY_AFTER_MS) : 0;
}

/** The usage an ended attempt's error carries (executors/types.ts withUsage), as the transition's `usage`. */
function spentOf(err: unknown): { usage?: Record<string, number> } {
  const usage = usageSpent(err);
  return usage ? { usage: usage as unknown as Record<string, number> } : {};
}
