// The claim window: the fast path for short tasks. A claim locks its rows in a transaction
// (FOR UPDATE SKIP LOCKED) instead of writing them RUNNING, runs them at once, and when every
// attempt has finished — or the window's time is up, or an attempt needs its lease — writes, in
// that same transaction, the attempts that succeeded straight to COMPLETED (one row version and
// WORKFLOW_STARTED + WORKFLOW_COMPLETED + STREAM_END in one statement) and all others RUNNING
// under this worker's lease, as a claim would have. Those continue exactly as claimed tasks do.
//
// A short task thus costs one task-row version instead of two (each a non-HOT update inserting
// into every index of the 45-column row). What it gives up, for at most `windowMs`: the rows read
// QUEUED while they run, WORKFLOW_STARTED is published at the commit, and API writes to a locked
// row (cancel, pause) wait for the commit. At-least-once holds: a crash or a failed commit rolls
// the claim back and the tasks are claimed again; their attempt is not counted then. A worker
// shutting down gives its window's unfinished tasks back the same way (AttemptGate.giveBack).
import type { Db, Transaction } from '../storage/db.js';
import {
  tasksCompleteMany, tasksLockAvailable, tasksStartLocked, type CompletionInput, type LockedTask, type StoredEvent,
} from '../storage/queries/transitions.js';
import type { EventHub } from '../events/hub.js';
import { AttemptAborted } from './abort.js';
import type { ActiveAttempt } from './runner.js';

/** What a running attempt of a window asks of it (engine/runner.ts). */
export interface AttemptGate {
  /**
   * Resolves once the attempt's RUNNING row is committed under the worker's lease, closing the
   * window now if it is still open; rejects when the window's transaction failed (the task went
   * back to the queue: the attempt has lost it). Every durable write of the attempt waits for it.
   */
  ready(): Promise<void>;
  /**
   * Offers a successful outcome to the window. While it is open, the completion is written with
   * it and the promise resolves with the written events (undefined if the transaction failed);
   * once it is closing, returns undefined and the attempt finishes like any claimed one, after ready().
   */
  offer(row: CompletionInput): Promise<StoredEvent[] | undefined> | undefined;
  /**
   * Gives the task back untouched (a worker shutting down): while the window is open, it will
   * write nothing for this task — the row stays QUEUED with this attempt not counted — and this
   * returns true; the attempt must then write nothing either. Once the window is closing, false:
   * the attempt releases its task like any claimed one, after ready().
   */
  giveBack(): boolean;
}

/** The window's view of an attempt. */
type Attempt = Pick<ActiveAttempt, 'leased' | 'controller'>;

interface Entry {
  task: LockedTask;
  attempt?: Attempt;
  /** It offered a completion, asked for its lease or gave its task back. */
  decided: boolean;
  givenBack?: boolean;
  completion?: CompletionInput;
  completed?: (events: StoredEvent[] | undefined) => void;
  /** After the commit: whether its RUNNING row was written. */
  leased?: boolean;
  /** Waiters of ready() before the commit. */
  waiters?: { resolve: () => void; reject: (err: Error) => void }[];
}

export interface WindowOptions {
  owner: string;
  leaseMs: number;
  windowMs: number;
}

const lostError = () => new AttemptAborted('lease_lost', 'the claim window lost the task');

export class ClaimWindow {
  readonly #o: WindowOptions;
  readonly #hub: EventHub;
  readonly #entries = new Map<string, Entry>();
  /** Attempts that have neither offered a completion nor asked for their lease. */
  #undecided = 0;
  #open = true;
  #closeNow!: () => void;
  readonly #closed = new Promise<void>((r) => (this.#closeNow = r));
  #timer: NodeJS.Timeout | undefined;

  private constructor(o: WindowOptions, hub: EventHub) {
    this.#o = o;
    this.#hub = hub;
  }

  /**
   * Opens a window over up to `limit` runnable tasks (`after` as for a claim: TenantRotation);
   * `launch` starts each with its gate. Resolves with how many were claimed once they are locked
   * (the transaction goes on in the background); rejects if the claim itself failed. A later failure (the write, the commit) goes to `onError`
   * and every attempt of the window is aborted as having lost its task.
   */
  static async open(
    db: Db, hub: EventHub, o: WindowOptions & { limit: number; after: string },
    launch: (task: LockedTask, gate: AttemptGate) => Attempt, onError: (err: unknown) => void,
  ): Promise<number> {
    const w = new ClaimWindow(o, hub);
    let claimed!: (n: number) => void;
    const locked = new Promise<number>((r) => (claimed = r));
    let written: Map<string, StoredEvent[]> | undefined;
    const tx = db.transaction(async (tx) => {
      const tasks = await tasksLockAvailable(tx, o.limit, o.after);
      claimed(tasks.length);
      if (tasks.length === 0) return;
      w.#timer = setTimeout(() => w.#close(), o.windowMs);
      w.#undecided = tasks.length;
      for (const task of tasks) {
        const entry: Entry = { task, decided: false };
        w.#entries.set(task.id, entry);
        entry.attempt = launch(task, w.#gate(entry));
      }
      await w.#closed;
      written = await w.#write(tx);
    });
    tx.then(
      () => w.#settle(written),
      (err: unknown) => {
        if (w.#entries.size) onError(err);
        w.#settle(undefined);
      },
    );
    // a claim that failed before locking anything rejects here
    return Promise.race([locked, tx.then(() => 0)]);
  }

  #gate(entry: Entry): AttemptGate {
    return {
      ready: () => {
        this.#decide(entry);
        this.#close();
        if (entry.leased !== undefined) return entry.leased ? Promise.resolve() : Promise.reject(lostError());
        return new Promise<void>((resolve, reject) => (entry.waiters ??= []).push({ resolve, reject }));
      },
      offer: (row) => {
        if (!this.#open || entry.decided) return undefined;
        entry.completion = row;
        this.#decide(entry);
        return new Promise<StoredEvent[] | undefined>((r) => (entry.completed = r));
      },
      giveBack: () => {
        if (!this.#open || entry.decided) return false;
        entry.givenBack = true;
        this.#decide(entry);
        return true;
      },
    };
  }

  #decide(entry: Entry): void {
    if (entry.decided) return;
    entry.decided = true;
    if (--this.#undecided === 0) this.#close();
  }

  #close(): void {
    if (!this.#open) return;
    this.#open = false;
    clearTimeout(this.#timer);
    this.#closeNow();
  }

  /**
   * Inside the transaction: completions COMPLETED, every other attempt RUNNING. Both statements
   * and the COMMIT go out together (one round trip on server PostgreSQL).
   */
  async #write(tx: Transaction): Promise<Map<string, StoredEvent[]>> {
    const completions: CompletionInput[] = [];
    const starting: string[] = [];
    for (const e of this.#entries.values()) {
      if (e.completion) completions.push(e.completion);
      else if (!e.givenBack) starting.push(e.task.id);
    }
    const { owner, leaseMs } = this.#o;
    const completing = tasksCompleteMany(tx, owner, completions, { locked: true });
    const started = starting.length ? tasksStartLocked(tx, { ids: starting, owner, leaseMs }) : undefined;
    tx.commitEarly();
    // both settle before the transaction does: a failure of either fails it (and rolls it back)
    const [written, startedEvents] = await Promise.all([completing, started]);
    for (const [id, event] of startedEvents ?? []) written.set(id, [event]);
    return written;
  }

  /**
   * After the commit (`written`) or its failure: completions get their events; attempts written
   * RUNNING hold their lease from now on (heartbeats renew it); any other attempt lost its task.
   */
  #settle(written: Map<string, StoredEvent[]> | undefined): void {
    for (const e of this.#entries.values()) {
      if (e.givenBack) continue; // its attempt is over and wrote nothing
      const events = written?.get(e.task.id);
      if (e.completed) {
        e.completed(events);
        continue;
      }
      e.leased = events !== undefined;
      if (events) {
        this.#hub.publish(events);
        e.attempt!.leased = true;
      } else e.attempt!.controller.abort(lostError());
      for (const w of e.waiters ?? []) {
        if (events) w.resolve();
        else w.reject(lostError());
      }
    }
  }
}
