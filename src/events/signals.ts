// Wake-up hints between the API and the workers: "new work is queued" and "task X was asked to
// cancel or pause". In-process listeners are called at once; other processes get one coalesced
// NOTIFY per tick. Hints only shorten waits: workers also poll and heartbeat, so nothing is lost
// when a NOTIFY is.
import type { Db } from '../storage/db.js';

export const WORK_CHANNEL = 'taskgate_work';
export const CONTROL_CHANNEL = 'taskgate_control';

export interface SignalsOptions {
  crossProcess: boolean;
  workChannel?: string;
  controlChannel?: string;
  onError?: (err: unknown) => void;
}

export class Signals {
  readonly #db: Db;
  readonly #opts: SignalsOptions;
  readonly #workListeners = new Set<() => void>();
  readonly #controlListeners = new Set<(taskId: string) => void>();
  #workPending = false;
  #controlPending = new Set<string>();
  #flushScheduled = false;
  #unlisten: (() => Promise<void>)[] = [];

  constructor(db: Db, opts: SignalsOptions) {
    this.#db = db;
    this.#opts = opts;
  }

  /** Starts receiving other processes' hints (only needed where workers run). */
  async start(): Promise<void> {
    if (!this.#opts.crossProcess || this.#unlisten.length) return;
    this.#unlisten.push(
      await this.#db.listen(this.#opts.workChannel ?? WORK_CHANNEL, () => this.#fireWork()),
      await this.#db.listen(this.#opts.controlChannel ?? CONTROL_CHANNEL, (p) => {
        for (const id of p.split(',')) if (id) this.#fireControl(id);
      }),
    );
  }

  async stop(): Promise<void> {
    const fns = this.#unlisten;
    this.#unlisten = [];
    for (const f of fns) await f();
  }

  onWork(fn: () => void): () => void {
    this.#workListeners.add(fn);
    return () => this.#workListeners.delete(fn);
  }

  onControl(fn: (taskId: string) => void): () => void {
    this.#controlListeners.add(fn);
    return () => this.#controlListeners.delete(fn);
  }

  /** New tasks are runnable. */
  work(): void {
    this.#fireWork();
    if (this.#opts.crossProcess) {
      this.#workPending = true;
      this.#schedule();
    }
  }

  /** A task's control state changed (cancel or pause requested). */
  control(taskId: string): void {
    this.#fireControl(taskId);
    if (this.#opts.crossProcess) {
      this.#controlPending.add(taskId);
      this.#schedule();
    }
  }

  #fireWork(): void {
    for (const fn of this.#workListeners) fn();
  }

  #fireControl(taskId: string): void {
    for (const fn of this.#controlListeners) fn(taskId);
  }

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    const work = this.#workPending;
    const control = [...this.#controlPending];
    this.#workPending = false;
    this.#controlPending = new Set();
    try {
      if (work) await this.#db.notify(this.#opts.workChannel ?? WORK_CHANNEL, '');
      // ids are ≤128 chars: 40 per NOTIFY stays under the 8000-byte payload limit
      for (let i = 0; i < control.length; i += 40) {
        await this.#db.notify(this.#opts.controlChannel ?? CONTROL_CHANNEL, control.slice(i, i + 40).join(','));
      }
    } catch (err) {
      this.#opts.onError?.(err);
    }
  }
}
