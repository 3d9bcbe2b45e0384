// The TaskContext an executor gets (executors/types.ts): durable steps, events, approvals and the
// attempt's AbortSignal, for one attempt of one task.
//
// One object per attempt, and nothing else until an executor uses it: the methods are bound on
// first read (so `const { step } = ctx` works) and the logger and step table are made on demand.
// A context of closures cost ~2 KB of garbage per attempt, paid by every no-op task.
import { tasksTransition, type ClaimedTask, type EventSpec } from '../storage/queries/transitions.js';
import { stepsFinish, stepsGet, stepsStart, type StepRow } from '../storage/queries/steps.js';
import { approvalsEnsure, type ApprovalRow } from '../storage/queries/approvals.js';
import { newUuid } from '../domain/ids.js';
import { storableText } from '../storage/storable.js';
import { EPHEMERAL_EVENT_TYPES } from '../contract/events.js';
import { PermanentError } from '../executors/types.js';
import type {
  ApprovalDecision, ApprovalRequest, StepInfo, StepOptions, TaskContext, TaskEventInput, TaskLogger,
} from '../executors/types.js';
import { AttemptAborted } from './abort.js';
import { stepResult } from './results.js';
import { MAX_APPROVAL_TIMEOUT_MS } from '../config/index.js';
import type { ActiveAttempt, RunnerDeps } from './runner.js';

/** What a context needs of its runner (engine/runner.ts), shared by all its attempts. */
export type AttemptHost = Pick<RunnerDeps, 'db' | 'commit' | 'hub' | 'workerId' | 'approvalTimeoutMs' | 'log'> & {
  /** Waits until the attempt holds its lease; false if it lost the task meanwhile. */
  leased(active: ActiveAttempt): Promise<boolean>;
  /** Appends `events` with a transition fenced on the attempt's lease; false if fenced out. */
  transition(task: ClaimedTask, active: ActiveAttempt, events: EventSpec[]): Promise<boolean>;
  /** Runs one of the attempt's writes, trying it again while the database cannot be reached. */
  durable<T>(active: ActiveAttempt, what: string, write: () => Promise<T>): Promise<T>;
};

/** Thrown inside an attempt that lost its lease (its controller is aborted as lease_lost too). */
export class LeaseLost extends Error {
  override name = 'LeaseLost';
}

const decisionOf = (a: ApprovalRow): ApprovalDecision => ({
  approval_id: a.id, approved: a.status === 'approved', feedback: a.feedback, modified_action: a.modified_action ?? null, approved_by: a.decided_by,
});

type BoundMethods = Pick<TaskContext, 'step' | 'stepInfo' | 'waitForApproval' | 'progress' | 'emit'>;

export class AttemptContext implements TaskContext {
  readonly taskId: string;
  readonly tenantId: string;
  readonly userId: string;
  readonly sessionId: string | null;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly traceparent: string | undefined;

  readonly #host: AttemptHost;
  readonly #task: ClaimedTask;
  readonly #active: ActiveAttempt;
  /** Steps recorded by earlier attempts and this one, by name (made on first use). */
  #steps: Map<string, StepRow> | undefined;
  /** Steps whose body runs now, by name (made on first use). */
  #running: Map<string, Promise<unknown>> | undefined;
  #approvalCounter = 0;
  #log: TaskLogger | undefined;
  #bound: BoundMethods | undefined;

  /** `steps`: what the task's earlier attempts recorded (undefined: none). */
  constructor(host: AttemptHost, task: ClaimedTask, active: ActiveAttempt, steps: readonly StepRow[] | undefined) {
    this.#host = host;
    this.#task = task;
    this.#active = active;
    if (steps?.length) this.#steps = new Map(steps.map((s) => [s.name, s]));
    this.taskId = task.id;
    this.tenantId = task.tenant_id;
    this.userId = task.user_id;
    this.sessionId = task.session_id;
    this.attempt = task.attempt;
    this.maxAttempts = task.max_attempts;
    this.traceparent = typeof task.metadata?.traceparent === 'string' ? task.metadata.traceparent : undefined;
  }

  get signal(): AbortSignal {
    return this.#active.controller.signal; // made on first read (AttemptControl)
  }

  get log(): TaskLogger {
    if (!this.#log) {
      const log = this.#host.log;
      const id = this.#task.id;
      this.#log = {
        info: (m, d) => log.info(m, { task_id: id, ...d }),
        warn: (m, d) => log.warn(m, { task_id: id, ...d }),
        error: (m, d) => log.error(m, { task_id: id, ...d }),
      };
    }
    return this.#log;
  }

  get step(): TaskContext['step'] {
    return this.#methods().step;
  }

  get stepInfo(): TaskContext['stepInfo'] {
    return this.#methods().stepInfo;
  }

  get waitForApproval(): TaskContext['waitForApproval'] {
    return this.#methods().waitForApproval;
  }

  get progress(): TaskContext['progress'] {
    return this.#methods().progress;
  }

  get emit(): TaskContext['emit'] {
    return this.#methods().emit;
  }

  #methods(): BoundMethods {
    return (this.#bound ??= {
      step: (name, fn, options) => this.#step(name, fn, options),
      stepInfo: (name) => this.#stepInfo(name),
      waitForApproval: (request) => this.#waitForApproval(request),
      progress: (message, payload) => this.#append({ type: 'PROGRESS', message, payload: payload ?? null }),
      emit: (e: TaskEventInput) =>
        this.#append({ type: e.type, message: e.message ?? null, payload: e.payload ?? null, agent_id: e.agent_id ?? null }),
    });
  }

  #lose(): never {
    this.#active.controller.abort(new AttemptAborted('lease_lost', 'lease lost'));
    throw new LeaseLost('lease lost');
  }

  get #fence() {
    return { taskId: this.#task.id, attempt: this.#task.attempt, owner: this.#host.workerId };
  }

  async #append(e: EventSpec): Promise<void> {
    const task = this.#task;
    if (EPHEMERAL_EVENT_TYPES.has(e.type)) {
      this.#host.hub.publishEphemeral({
        workflow_id: task.id, type: e.type, agent_id: e.agent_id ?? null, message: e.message ?? null,
        payload: e.payload ?? null, timestamp: new Date().toISOString(), seq: 0, stream_id: null,
      });
      return;
    }
    if (!(await this.#host.durable(this.#active, 'writing an event', () => this.#host.transition(task, this.#active, [e])))) this.#lose();
  }

  #stepInfo(name: string): StepInfo | undefined {
    const s = this.#steps?.get(storableText(name));
    return s ? { runs: s.runs, done: s.done } : undefined;
  }

  #step<T>(stepName: string, fn: () => Promise<T> | T, options?: StepOptions): Promise<T> {
    const name = storableText(stepName);
    const known = this.#steps?.get(name);
    if (known?.done) return Promise.resolve(known.result as T);
    // a name is one step: a second call while its body runs (Promise.all over one name) gets the
    // first's result, not a second run whose record would find the step done and read as a lost lease
    const running = this.#running?.get(name);
    if (running) return running as Promise<T>;
    const run = this.#runStep(name, fn, options).finally(() => this.#running?.delete(name));
    (this.#running ??= new Map()).set(name, run);
    return run;
  }

  async #runStep<T>(name: string, fn: () => Promise<T> | T, options?: StepOptions): Promise<T> {
    const { commit, hub, workerId, durable } = this.#host;
    const task = this.#task;
    const active = this.#active;
    active.controller.throwIfAborted();
    if (active.pauseRequested) active.controller.abort(new AttemptAborted('pause', 'paused at a step boundary'));
    active.controller.throwIfAborted();
    if (!(await this.#host.leased(active))) this.#lose();
    const fence = this.#fence;
    const runs = await durable(active, 'starting a step', () => commit.run((tx) => stepsStart(tx, { ...fence, name })));
    const steps = (this.#steps ??= new Map());
    if (runs === undefined) {
      // refused: the lease is gone — or an earlier attempt's record of this step committed after
      // this attempt loaded the steps (its write was in flight when its lease ran out): replay it
      const row = await durable(active, 'reading a step', () => stepsGet(this.#host.db, task.id, name));
      if (!row?.done) this.#lose();
      steps.set(name, row);
      return row.result as T;
    }
    steps.set(name, { name, runs, done: false, result: null });
    const value = await fn();
    const stored = stepResult(name, value);
    const event = options?.event;
    const written = await durable(active, 'recording a step', () =>
      commit.run(async (tx) => {
        if (!(await stepsFinish(tx, { ...fence, name, result: stored }))) return undefined;
        if (!event) return [];
        const res = await tasksTransition(tx, { id: task.id, statuses: ['RUNNING'], attempt: task.attempt, leaseOwner: workerId }, {}, [
          { type: event.type, message: event.message ?? null, payload: event.payload ?? null, agent_id: event.agent_id ?? null },
        ]);
        return res?.events;
      }),
    );
    if (!written) this.#lose();
    hub.publish(written);
    steps.set(name, { name, runs, done: true, result: stored });
    return stored as T;
  }

  async #waitForApproval(request: ApprovalRequest = {}): Promise<ApprovalDecision> {
    // names and texts an executor makes (from an upstream's or a model's words) as PostgreSQL stores them
    const name = storableText(`approval:${request.name ?? String(this.#approvalCounter++)}`);
    const known = this.#steps?.get(name);
    if (known?.done) return known.result as ApprovalDecision;
    const timeoutMs = request.timeoutMs ?? this.#host.approvalTimeoutMs;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_APPROVAL_TIMEOUT_MS) {
      // 0 or less timed out at once, more than 30 days (a 1e15 one gave a timeout_at past year 9999) is what no setting allows
      throw new PermanentError(`waitForApproval: timeoutMs must be an integer from 1 to ${MAX_APPROVAL_TIMEOUT_MS} (30 days), not ${String(timeoutMs)}`);
    }
    const task = this.#task;
    const active = this.#active;
    if (!(await this.#host.leased(active))) this.#lose();
    const { row, created } = await this.#host.durable(active, 'requesting an approval', () =>
      approvalsEnsure(this.#host.db, {
        id: newUuid(), tenantId: task.tenant_id, taskId: task.id, stepName: name, message: request.message ?? null,
        payload: request.payload ?? null, timeoutMs,
      }),
    );
    if (created) {
      await this.#append({
        type: 'APPROVAL_REQUESTED',
        // clients of the reference gateway look for a 36-character UUID after `id=`
        message: `Approval required (id=${row.id})${request.message ? `: ${request.message}` : ''}`,
        payload: { approval_id: row.id, ...(request.payload ?? {}), message: request.message ?? null, timeout_at: row.timeout_at },
      });
    }
    if (row.status !== 'pending') return this.#step(name, () => decisionOf(row));
    active.awaitingApprovalId = row.id;
    active.controller.abort(new AttemptAborted('suspend', 'waiting for approval'));
    throw active.controller.reason;
  }
}
