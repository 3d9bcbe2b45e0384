// A worker process's engine: the dispatcher (claims up to its free slots, woken by hints and a
// jittered poll), heartbeats for every running attempt in one statement, and the lease reaper.
import type { Db } from '../storage/db.js';
import { tasksClaimAvailable, tasksHeartbeat, tasksNextRunAt, tasksRunnableExist, type ClaimResult } from '../storage/queries/transitions.js';
import type { EventHub } from '../events/hub.js';
import type { Signals } from '../events/signals.js';
import type { Registry } from '../executors/registry.js';
import type { TaskLogger } from '../executors/types.js';
import type { ClaimedTask } from '../storage/queries/transitions.js';
import { Runner, type ActiveAttempt, type AttemptHooks } from './runner.js';
import { TenantRotation } from './tenant-rotation.js';
import { tenantsCappedIds } from '../storage/queries/tenants.js';
import { CappedTenants } from './capped-tenants.js';
import { GroupCommit } from '../storage/group-commit.js';
import { Completer } from './completer.js';
import { AttemptAborted } from './abort.js';
import { LeaseReaper } from './lease-reaper.js';
import { ClaimWindow, type AttemptGate } from './claim-window.js';
import { currentVersion, latestVersion } from '../storage/migrate.js';
import { MAX_TIMER_MS } from '../domain/time.js';

export interface WorkerOptions {
  workerId: string;
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  reaperIntervalMs: number;
  cancelGraceMs: number;
  shutdownGraceMs: number;
  approvalTimeoutMs: number;
  /**
   * The claim window (engine/claim-window.ts): how long claimed tasks may run before their claim
   * is written; 0 writes every claim at once.
   */
  claimWindowMs: number;
}

export interface WorkerDeps {
  db: Db;
  hub: EventHub;
  signals: Signals;
  registry: Registry;
  log: TaskLogger;
  onClaimed?: (count: number) => void;
  onOutcome?: (task: ClaimedTask, status: string) => void;
  /**
   * A statement of the engine's failed (a claim, a poll, a heartbeat, an outcome write tried
   * again): main.ts notes it in the process's StorageHealth, so a worker whose writes fail for want
   * of space is not ready though it answers no API request.
   */
  onDbError?: (err: unknown) => void;
}

type State = 'stopped' | 'idle' | 'claiming' | 'stopping';


/**
 * Reads of the next run_at asked for within this long of the last one are one read at its end. A
 * worker fed by another process's submits (--role worker) drains the queue with nearly every
 * claim: a read after each one cost it 10–20 % more CPU at 500 tasks/s. A delay shorter than this
 * that is submitted meanwhile may start up to this late.
 */
export const NEXT_RUN_AT_READ_GAP_MS = 10;

/**
 * Every this many polls (~10 s at the default interval) the worker checks the database's schema
 * version: a newer Taskgate migrated it during a rolling upgrade, and this older worker would
 * fail the tasks it cannot run (a definition kind, a column it does not know) — it stops claiming.
 */
export const SCHEMA_CHECK_EVERY_POLLS = 10;

export class Worker {
  readonly #o: WorkerOptions;
  readonly #d: WorkerDeps;
  readonly #runner: Runner;
  readonly #reaper: LeaseReaper;
  /** Attempts not yet written (heartbeats cover them); slots count only those still executing. */
  readonly #active = new Map<string, ActiveAttempt>();
  readonly #rotation = new TenantRotation();
  /** Tenants with a cap on running tasks (read at start, on a tenant change, every 10 polls). */
  readonly #capped: CappedTenants;
  #busySlots = 0;
  /**
   * The last claim took fewer tasks than it asked for, and nothing was announced since that no
   * claim has looked at: nothing runnable waits. Direct dispatch needs it; a wake-up that finds
   * every slot busy (a hint it could not claim for), a failed claim and the due timer clear it.
   */
  #drained = false;
  /** New work was announced since the last claim started (a hint, a requeue). */
  #hinted = false;
  #state: State = 'stopped';
  /** The stop under way: a second stop() waits for it. */
  #stopping: Promise<void> | undefined;
  #wakeAgain = false;
  /** The claim loop in progress, if any: stop() waits for what it launches. */
  #loop: Promise<void> | undefined;
  #wakeScheduled = false;
  /**
   * Claims are written at once (counted) until one finds tasks: a task that took the previous
   * process down inside a claim window was never counted, and is at the head of the queue now.
   */
  #claimedSinceStart = false;
  #pollTimer: NodeJS.Timeout | undefined;
  #polls = 0;
  /** The schema is newer than this build knows: no claims, no direct dispatch (running attempts finish). */
  #schemaAhead = false;
  /**
   * Fires when the earliest queued task that was not yet runnable (a delay, a retry's backoff)
   * comes due, as read after the last claim that drained the queue: the queue is not drained then.
   */
  #dueTimer: NodeJS.Timeout | undefined;
  /** When #dueTimer fires (Date.now() ms). */
  #dueAt = 0;
  /** The read of the next run_at in flight (stop() waits for it); another was asked for meanwhile. */
  #dueReading: Promise<void> | undefined;
  #dueReadAgain = false;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #heartbeatRunning: Promise<void> | undefined;
  #heartbeatNext: Promise<void> | undefined;
  #unsubscribe: (() => void)[] = [];
  /** Kept through a shutdown's grace: a cancel or pause then still reaches the attempts at once. */
  #unsubscribeControl: (() => void) | undefined;

  constructor(options: WorkerOptions, deps: WorkerDeps) {
    this.#o = options;
    this.#d = deps;
    this.#runner = new Runner({
      db: deps.db, commit: new GroupCommit(deps.db), completer: new Completer(deps.db, options.workerId), hub: deps.hub, registry: deps.registry, workerId: options.workerId,
      cancelGraceMs: options.cancelGraceMs, leaseMs: options.leaseMs, approvalTimeoutMs: options.approvalTimeoutMs, log: deps.log, onOutcome: deps.onOutcome, onDbError: deps.onDbError,
      // a retry (due after its backoff), a withdrawn pause, an approval decided before the park:
      // every dispatcher claims, or learns when it comes due (this one at once, others by NOTIFY)
      onRequeue: () => this.#d.signals.work(),
      onSchemaAhead: (version) => this.#noticeSchemaAhead(version),
    });
    this.#capped = new CappedTenants(
      () => tenantsCappedIds(deps.db),
      // once per outage: every poll would say it again, beside the poll's own warning
      (err) => deps.log.warn('reading tenant caps failed', { err: (err as Error).message }),
    );
    this.#reaper = new LeaseReaper({ db: deps.db, hub: deps.hub, signals: deps.signals, intervalMs: options.reaperIntervalMs, log: deps.log });
  }

  get activeCount(): number {
    return this.#active.size;
  }

  /** Whether this process's attempt of `taskId` will pause at its next step boundary (undefined: not running here). */
  pauseRequested(taskId: string): boolean | undefined {
    return this.#active.get(taskId)?.pauseRequested;
  }

  get state(): State {
    return this.#state;
  }

  get workerId(): string {
    return this.#o.workerId;
  }

  get leaseMs(): number {
    return this.#o.leaseMs;
  }

  /**
   * Direct dispatch: up to `max` slots for tasks this process is inserting right now, which are
   * then inserted already RUNNING under this worker's lease and start the moment they commit —
   * no claim round trip. Only while the queue is drained (the last claim found less than it
   * asked for), so a direct task never overtakes one that is waiting; 0 otherwise.
   */
  reserve(max: number): number {
    if (this.#state !== 'idle' || !this.#drained || this.#schemaAhead) return 0;
    const n = Math.max(0, Math.min(max, this.#o.concurrency - this.#busySlots));
    this.#busySlots += n;
    return n;
  }

  /** Whether a tenant's submits may be dispatched directly: not a capped one's (its claims count them). */
  dispatchesDirectly(tenantId: string): boolean {
    return this.#capped.allowsDirect(tenantId);
  }

  capSeen(tenantId: string): void {
    this.#capped.changed(tenantId);
  }

  /** Gives back reserved slots whose tasks were not inserted (or were inserted QUEUED). */
  unreserve(n: number): void {
    this.#busySlots -= n;
    if (n > 0) this.wake();
  }

  /**
   * Runs tasks inserted RUNNING under slots from reserve(). A worker stopping meanwhile still
   * starts them: its shutdown grace lets them finish or gives them back to the queue.
   */
  launchReserved(claimed: readonly ClaimResult[]): void {
    if (claimed.length) this.#d.onClaimed?.(claimed.length);
    for (const { task, events } of claimed) {
      this.#d.hub.publish(events);
      this.#launch(task, true);
    }
  }

  start(): void {
    if (this.#state !== 'stopped') return;
    this.#state = 'idle';
    this.#unsubscribe.push(this.#d.signals.onWork(() => this.#hint()));
    this.#unsubscribeControl = this.#d.signals.onControl((id) => void this.#onControl(id));
    // a tenant changed (its cap among what may have): read the caps now rather than at a later poll
    this.#unsubscribe.push(this.#d.signals.onTenant((id) => this.#capped.changed(id)));
    void this.#capped.refresh();
    this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), Math.max(50, Math.floor(this.#o.leaseMs / 3)));
    this.#reaper.start();
    this.#schedulePoll();
    this.wake();
  }

  #hint(): void {
    this.#hinted = true;
    this.wake();
  }

  /**
   * A claim for slots freed in this turn of the event loop: attempts that finish together (a batch
   * of short tasks) free their slots within microtasks of each other, and one claim after all of
   * them takes them in one statement instead of a claim for the first slot and one for the rest.
   */
  #wakeSoon(): void {
    if (this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    setImmediate(() => {
      this.#wakeScheduled = false;
      this.wake();
    });
  }

  /** Claims now if there are free slots (hints, finished attempts and polls call this). */
  wake(): void {
    if (this.#state === 'idle') this.#loop = this.#claimLoop();
    else if (this.#state === 'claiming') this.#wakeAgain = true;
  }

  async #claimLoop(): Promise<void> {
    this.#state = 'claiming';
    try {
      do {
        this.#wakeAgain = false;
        this.#hinted = false;
        for (;;) {
          const free = this.#o.concurrency - this.#busySlots;
          if (this.#state !== 'claiming') break;
          if (this.#schemaAhead) {
            this.#drained = false; // and no direct dispatch either
            break;
          }
          if (free <= 0) {
            // every slot busy: what a hint announced waits, unclaimed and unseen. Not drained, so
            // the next freed slot claims (executed()) and no submit is dispatched ahead of it.
            this.#drained = false;
            break;
          }
          const claimed = this.#windowed ? await this.#claimWindow(free) : await this.#claim(free);
          if (claimed) {
            this.#claimedSinceStart = true;
            this.#d.onClaimed?.(claimed);
          }
          this.#drained = claimed < free;
          if (this.#drained) break;
        }
      } while (this.#wakeAgain && this.#state === 'claiming');
      if (this.#drained) this.#watchNextDue();
    } catch (err) {
      // whatever the claim would have taken may still wait
      this.#drained = false;
      this.#d.onDbError?.(err);
      this.#d.log.error('claim failed', { err: (err as Error).message });
    } finally {
      if (this.#state === 'claiming') this.#state = 'idle';
    }
  }

  /**
   * After a claim that drained the queue: arms the due timer for the earliest task not runnable
   * yet. One read at a time; those asked for meanwhile are one more, NEXT_RUN_AT_READ_GAP_MS after
   * the last one started (it may see a newer task).
   */
  #watchNextDue(): void {
    if (this.#dueReading) this.#dueReadAgain = true;
    else this.#dueReading = this.#readNextDue().finally(() => (this.#dueReading = undefined));
  }

  async #readNextDue(): Promise<void> {
    for (;;) {
      this.#dueReadAgain = false;
      const started = Date.now();
      try {
        this.#armDue(await tasksNextRunAt(this.#d.db));
      } catch (err) {
        this.#d.log.warn('reading the next run_at failed', { err: (err as Error).message });
      }
      if (!this.#dueReadAgain || this.#state === 'stopping' || this.#state === 'stopped') return;
      const wait = started + NEXT_RUN_AT_READ_GAP_MS - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref());
    }
  }

  /**
   * Sets the due timer `inMs` from now unless it is set to fire sooner: a read that no longer
   * sees a task (it came due meanwhile, or was claimed) must not move its wake-up later.
   */
  #armDue(inMs: number | undefined): void {
    if (inMs === undefined || this.#state === 'stopping' || this.#state === 'stopped') return;
    // +1: the timer's whole milliseconds never fire before the run_at they were read for
    // a run_at further off than a timer can wait is read again when the capped timer fires
    const delay = Math.min(Math.max(0, Math.ceil(inMs)) + 1, MAX_TIMER_MS);
    const at = Date.now() + delay;
    if (this.#dueTimer && this.#dueAt <= at) return;
    clearTimeout(this.#dueTimer);
    this.#dueAt = at;
    this.#dueTimer = setTimeout(() => {
      this.#dueTimer = undefined;
      this.#drained = false;
      this.#hint();
    }, delay);
    this.#dueTimer.unref();
  }

  get #windowed(): boolean {
    return this.#o.claimWindowMs > 0 && this.#claimedSinceStart;
  }

  /** Claims up to `limit` tasks, written RUNNING at once; returns how many. */
  async #claim(limit: number): Promise<number> {
    const claimed = await tasksClaimAvailable(this.#d.db, {
      limit, owner: this.#o.workerId, leaseMs: this.#o.leaseMs, after: this.#rotation.after,
    });
    this.#rotation.served(claimed.map((c) => c.task.tenant_id));
    for (const { task, events } of claimed) {
      this.#d.hub.publish(events);
      this.#launch(task);
    }
    return claimed.length;
  }

  /** Claims up to `limit` tasks in a claim window; returns how many once they are locked and started. */
  async #claimWindow(limit: number): Promise<number> {
    const tenants: string[] = [];
    const claimed = await ClaimWindow.open(
      this.#d.db, this.#d.hub,
      { limit, owner: this.#o.workerId, leaseMs: this.#o.leaseMs, windowMs: this.#o.claimWindowMs, after: this.#rotation.after },
      (task, gate) => {
        tenants.push(task.tenant_id);
        return this.#launch(task, false, gate);
      },
      (err) => {
        this.#d.onDbError?.(err);
        this.#d.log.error('claim window failed; its tasks go back to the queue', { err: (err as Error).message });
      },
    );
    this.#rotation.served(tenants);
    return claimed;
  }

  #launch(task: ClaimedTask, reserved = false, gate?: AttemptGate): ActiveAttempt {
    if (!reserved) this.#busySlots++;
    const attempt = this.#runner.start(task, gate, this.#hooks);
    // (executed() may run inside start(), done() never does: the outcome write awaits first)
    this.#active.set(task.id, attempt);
    return attempt;
  }

  readonly #hooks: AttemptHooks = {
    executed: () => {
      this.#busySlots--;
      // a freed slot only needs a claim if work may be waiting: not when the last claim drained
      // the queue and nothing was announced since (the poll still sweeps up anything missed)
      if (!this.#drained || this.#hinted) this.#wakeSoon();
    },
    done: (attempt) => {
      if (this.#active.get(attempt.taskId) === attempt) this.#active.delete(attempt.taskId);
      // a capped tenant's task ended (its outcome committed): a task of its that waited for the
      // cap may claim now, though the last claim drained what it could take (and so if the cap
      // was set while the task ran)
      if (this.#capped.has(attempt.tenantId)) {
        this.#drained = false;
        this.#wakeSoon();
      }
    },
  };

  #schedulePoll(): void {
    const jitter = 0.75 + Math.random() * 0.5;
    this.#pollTimer = setTimeout(() => {
      void this.#poll();
      if (this.#state !== 'stopped' && this.#state !== 'stopping') this.#schedulePoll();
    }, Math.round(this.#o.pollIntervalMs * jitter));
  }

  /**
   * The periodic sweep for work no hint announced (delayed tasks coming due, a hint lost). A
   * worker idle with the queue drained first asks whether anything is runnable, and claims only
   * if so: while a claim is in flight direct dispatch steps aside, so an idle worker's polls sent
   * a submit now and then through the queue, a claim round trip later.
   */
  async #poll(): Promise<void> {
    // the schema, and the capped tenants (a backstop: a tenant change signals them at once)
    if (++this.#polls % SCHEMA_CHECK_EVERY_POLLS === 0) await Promise.all([this.#checkSchema(), this.#capped.refresh()]);
    if (this.#state === 'idle' && this.#drained && !this.#hinted) {
      try {
        if (!(await tasksRunnableExist(this.#d.db))) return;
      } catch (err) {
        this.#d.onDbError?.(err);
        this.#d.log.warn('poll failed', { err: (err as Error).message });
        return;
      }
    }
    this.wake();
  }

  /** Whether this worker stopped claiming because the database's schema is newer than it knows. */
  get schemaAhead(): boolean {
    return this.#schemaAhead;
  }

  async #checkSchema(): Promise<void> {
    let version: number;
    try {
      version = await currentVersion(this.#d.db);
    } catch (err) {
      this.#d.log.warn('schema version check failed', { err: (err as Error).message });
      return;
    }
    const ahead = version > latestVersion();
    if (ahead) this.#noticeSchemaAhead(version);
    else if (this.#schemaAhead) {
      this.#d.log.info('database schema is one this worker knows again: claiming');
      this.#schemaAhead = false;
    }
  }

  /** Stops claiming (at once: the runner gives back a task only a newer Taskgate can run, and wakes the dispatchers). */
  #noticeSchemaAhead(version?: number): void {
    if (this.#schemaAhead) return;
    this.#schemaAhead = true;
    this.#d.log.warn(
      `database schema is at version ${version ?? 'unknown'}, newer than this Taskgate knows (${latestVersion()}): ` +
        'this worker claims no more tasks (its running attempts finish); stop it and run the new version',
    );
  }

  /**
   * One heartbeat at a time: a heartbeat asked for while one is in flight (the timer's, a control
   * hint's) runs once after it, and every caller waits for that one. Two in flight could be
   * answered out of order — an older answer processed after a newer one set an attempt's pause
   * flag back for a whole interval — and on a slow database the timer would stack statements on
   * the pool.
   */
  #heartbeat(): Promise<void> {
    if (this.#heartbeatNext) return this.#heartbeatNext;
    if (!this.#heartbeatRunning) {
      this.#heartbeatRunning = this.#heartbeatOnce().finally(() => (this.#heartbeatRunning = undefined));
      return this.#heartbeatRunning;
    }
    this.#heartbeatNext = this.#heartbeatRunning.then(() => {
      this.#heartbeatNext = undefined;
      return this.#heartbeat();
    });
    return this.#heartbeatNext;
  }

  async #heartbeatOnce(): Promise<void> {
    if (this.#active.size === 0) return;
    const running = [...this.#active.values()].filter((a) => a.leased);
    if (running.length === 0) return;
    try {
      const rows = await tasksHeartbeat(this.#d.db, {
        owner: this.#o.workerId, leaseMs: this.#o.leaseMs, tasks: running.map((a) => ({ id: a.taskId, attempt: a.attempt })),
      });
      const held = new Map(rows.map((r) => [r.id, r]));
      for (const a of running) {
        const row = held.get(a.taskId);
        if (!row) {
          // not renewed: either it finished meanwhile, or the lease is gone
          if (this.#active.get(a.taskId) === a) a.controller.abort(new AttemptAborted('lease_lost', 'lease lost'));
          continue;
        }
        if (row.cancel_requested) a.controller.abort(new AttemptAborted('cancel', 'cancelled'));
        // follows the row both ways: a pause withdrawn (resume while RUNNING) is no longer carried out
        else a.pauseRequested = row.pause_requested;
      }
    } catch (err) {
      this.#d.onDbError?.(err);
      this.#d.log.warn('heartbeat failed', { err: (err as Error).message });
    }
  }

  /** Cancel/pause hint for a task: the heartbeat query tells us which, right away. */
  async #onControl(taskId: string): Promise<void> {
    if (!this.#active.has(taskId)) return;
    await this.#heartbeat();
  }

  /**
   * Stops claiming, lets running attempts finish within shutdownGraceMs, then aborts the rest,
   * which gives their tasks back to the queue. Idempotent.
   */
  stop(): Promise<void> {
    if (this.#state === 'stopped') return Promise.resolve();
    // a second caller waits for the first's stop (it returned at once, and could close the
    // database under attempts still finishing)
    return (this.#stopping ??= this.#stop().finally(() => (this.#stopping = undefined)));
  }

  async #stop(): Promise<void> {
    this.#state = 'stopping';
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#dueTimer);
    this.#dueTimer = undefined;
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
    await this.#reaper.stop();
    const running = this.#active.size;
    const all = () => Promise.all([...this.#active.values()].map((a) => a.done));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((r) => (timer = setTimeout(r, this.#o.shutdownGraceMs)));
    await Promise.race([all(), graceOver]);
    clearTimeout(timer);
    // a claim in flight (on PGlite, queued behind a claim window's transaction) may still launch
    // attempts after these are aborted: wait for it, and shut down what it launched too
    let stopped = 0;
    do {
      for (const a of this.#active.values()) {
        // (not one aborted already — cancelled, timed out; one whose handler has just returned
        // counts, though it still writes its outcome rather than going back to the queue)
        if (!a.controller.signal.aborted) stopped++;
        a.controller.abort(new AttemptAborted('shutdown', 'worker shutting down'));
      }
      await all();
      await this.#loop;
    } while (this.#active.size > 0);
    // what an operator reads after a SIGTERM: how much finished, and how much went back to the queue
    if (running > 0 || stopped > 0) {
      this.#d.log.info('worker stopped', { running_at_stop: running, stopped_after_grace: stopped, grace_ms: this.#o.shutdownGraceMs });
    }
    await this.#dueReading;
    this.#unsubscribeControl?.();
    this.#unsubscribeControl = undefined;
    clearInterval(this.#heartbeatTimer);
    this.#state = 'stopped';
  }
}
