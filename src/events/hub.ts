// The live side of the event log. Persisted events are delivered to subscribers in `seq` order
// with no gap and no duplicate: events published in this process are handed over directly when
// they are the next in order, and anything else (a hint from another process, a subscriber
// joining at an older seq, a gap) is read back from the persisted log, which stays the truth.
// Cross-process hints travel over LISTEN/NOTIFY, coalesced into one NOTIFY per tick, and only
// for tasks some other process follows: a process that opens a task's first subscription
// announces its interest (again every INTEREST_REFRESH_MS while it lasts), and the others hint
// only interesting tasks. A process with no remote followers — one serving alone, a worker under
// a burst of short tasks — sends no hint at all (it sent one NOTIFY entry per task before). The
// race between an announcement and events written before the writer heard it is closed by
// reading the log again shortly after each announcement, and by a sweep at every refresh.
import type { Db } from '../storage/db.js';
import { eventsLatestSeqs, eventsList } from '../storage/queries/events.js';
import type { StoredEvent } from '../storage/queries/transitions.js';
import type { TaskEvent } from '../contract/events.js';

export const EVENTS_CHANNEL = 'taskgate_events';
/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_NOTIFY_BYTES = 7_000;
const FETCH_PAGE = 500;
/** How often a process re-announces the tasks it follows (and sweeps their logs). */
const INTEREST_REFRESH_MS = 10_000;
/** Followed tasks per sweep statement. */
const SWEEP_BATCH = 1_000;
/** A remote interest not re-announced for this long is dropped. */
const INTEREST_TTL_MS = 3.5 * INTEREST_REFRESH_MS;
/** Re-reads of a newly followed task's log: events written before the writers heard of the interest. */
const ANNOUNCE_REREAD_MS = [250, 2_000];

export function toWireEvent(e: StoredEvent): TaskEvent {
  return {
    workflow_id: e.task_id,
    type: e.type,
    agent_id: e.agent_id ?? null,
    message: e.message ?? null,
    payload: e.payload ?? null,
    timestamp: e.created_at instanceof Date ? e.created_at.toISOString() : new Date(e.created_at).toISOString(),
    seq: e.seq,
    stream_id: null,
  };
}

export interface Subscriber {
  /** Delivery of one event; persisted events come strictly in seq order. */
  deliver(event: TaskEvent, ephemeral: boolean): void;
  /** Called if the subscription cannot continue (e.g. the log read failed). */
  fail?(err: Error): void;
}

interface Sub {
  s: Subscriber;
  lastSeq: number;
  catchingUp: boolean;
  closed: boolean;
  /**
   * Live-only events that arrived while the subscriber was catching up, in arrival order, each
   * with the highest seq known when it arrived (undefined: none known yet). The replay hands
   * each one over right after that seq, so a client that connects as a task starts (submit,
   * then stream) gets its first deltas too, in their place — they were dropped before.
   */
  held: { event: TaskEvent; after: number | undefined }[];
}

/** Live-only events held for one catching-up subscriber at most; later ones are dropped (best effort). */
const MAX_HELD = 1_000;

interface Channel {
  taskId: string;
  tenantId: string;
  subs: Set<Sub>;
  /** Highest seq known to exist for this task. */
  knownSeq: number;
  /** A shared read for a cross-process hint is in flight / another one is due after it. */
  reading: boolean;
  readAgain: boolean;
}

export interface EventHubOptions {
  /** Send and receive cross-process hints (server PostgreSQL with several processes). */
  crossProcess: boolean;
  channel?: string;
  onError?: (err: unknown) => void;
  /** Re-announce and sweep interval (tests shorten it); default INTEREST_REFRESH_MS. */
  refreshMs?: number;
}

export class EventHub {
  readonly #db: Db;
  readonly #opts: EventHubOptions;
  readonly #channels = new Map<string, Channel>();
  readonly #origin = Math.random().toString(36).slice(2, 10);
  /** How this process's hint payloads begin (`#flushOnce` writes the origin first). */
  readonly #ownPrefix = `{"o":${JSON.stringify(this.#origin)},`;
  #pendingHints = new Map<string, number>();
  #pendingEphemeral: TaskEvent[] = [];
  /** Tasks this process announces interest in at the next flush. */
  #pendingInterest = new Set<string>();
  /** Tasks other processes follow (their announcements), with when the interest lapses. */
  readonly #remoteInterest = new Map<string, number>();
  #refreshTimer: NodeJS.Timeout | undefined;
  #flushScheduled = false;
  #flushing = false;
  #unlisten: (() => Promise<void>) | undefined;

  constructor(db: Db, opts: EventHubOptions) {
    this.#db = db;
    this.#opts = opts;
  }

  async start(): Promise<void> {
    if (!this.#opts.crossProcess || this.#unlisten) return;
    this.#unlisten = await this.#db.listen(this.#opts.channel ?? EVENTS_CHANNEL, (payload) => this.#onHint(payload));
    this.#refreshTimer = setInterval(() => this.#refresh(), this.#opts.refreshMs ?? INTEREST_REFRESH_MS);
    this.#refreshTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const u = this.#unlisten;
    this.#unlisten = undefined;
    await u?.();
  }

  /** Number of live subscriptions (metrics, limits). */
  get subscriberCount(): number {
    let n = 0;
    for (const c of this.#channels.values()) n += c.subs.size;
    return n;
  }

  /** Hands freshly persisted events (of one or more tasks, each in seq order) to subscribers. */
  publish(events: readonly StoredEvent[]): void {
    let hinted = false;
    for (const e of events) {
      const ch = this.#channels.get(e.task_id);
      if (ch) this.#onPersisted(ch, e);
      if (this.#followedElsewhere(e.task_id)) {
        this.#pendingHints.set(e.task_id, Math.max(this.#pendingHints.get(e.task_id) ?? 0, e.seq));
        hinted = true;
      }
    }
    if (hinted) this.#scheduleFlush();
  }

  /** Live-only events (LLM_PARTIAL): delivered to current subscribers, never stored. */
  publishEphemeral(event: TaskEvent): void {
    this.#deliverEphemeral(event);
    if (this.#followedElsewhere(event.workflow_id)) {
      this.#pendingEphemeral.push(event);
      this.#scheduleFlush();
    }
  }

  /** Another process announced (and has not let lapse) an interest in this task's events; #refresh drops lapsed ones. */
  #followedElsewhere(taskId: string): boolean {
    if (this.#remoteInterest.size === 0) return false;
    const until = this.#remoteInterest.get(taskId);
    return until !== undefined && until >= Date.now();
  }

  /** Announces interest in a task this process just started following, then re-reads its log. */
  #announce(ch: Channel): void {
    this.#pendingInterest.add(ch.taskId);
    this.#scheduleFlush();
    for (const ms of ANNOUNCE_REREAD_MS) {
      setTimeout(() => {
        // (not after stop(): the database may be closed by then)
        if (this.#unlisten && this.#channels.get(ch.taskId) === ch) void this.#sweep([ch]);
      }, ms).unref();
    }
  }

  /** Every INTEREST_REFRESH_MS: re-announce what this process follows, sweep it, drop lapsed interests. */
  #refresh(): void {
    const now = Date.now();
    for (const [taskId, until] of this.#remoteInterest) if (until < now) this.#remoteInterest.delete(taskId);
    const followed = [...this.#channels.values()];
    for (const ch of followed) this.#pendingInterest.add(ch.taskId);
    if (this.#pendingInterest.size) this.#scheduleFlush();
    if (followed.length) void this.#sweep(followed);
  }

  /**
   * Finds followed tasks whose log went further than this process heard (a hint lost with the
   * listening connection, or sent before the writer heard of us) with one statement per
   * SWEEP_BATCH tasks, and reads only those.
   */
  async #sweep(followed: Channel[]): Promise<void> {
    try {
      for (let i = 0; i < followed.length; i += SWEEP_BATCH) {
        const batch = followed.slice(i, i + SWEEP_BATCH);
        const latest = await eventsLatestSeqs(this.#db, batch.map((ch) => ch.taskId));
        for (const ch of batch) {
          const seq = latest.get(ch.taskId);
          if (seq === undefined || this.#channels.get(ch.taskId) !== ch) continue;
          ch.knownSeq = Math.max(ch.knownSeq, seq);
          void this.#readForAll(ch); // reads only if a live subscriber is behind
        }
      }
    } catch (err) {
      this.#opts.onError?.(err);
    }
  }

  /** Subscribes to a task's events strictly after `afterSeq`; returns the unsubscribe function. */
  subscribe(taskId: string, tenantId: string, afterSeq: number, subscriber: Subscriber): () => void {
    let ch = this.#channels.get(taskId);
    if (!ch) {
      ch = { taskId, tenantId, subs: new Set(), knownSeq: 0, reading: false, readAgain: false };
      this.#channels.set(taskId, ch);
      if (this.#opts.crossProcess) this.#announce(ch);
    }
    const sub: Sub = { s: subscriber, lastSeq: afterSeq, catchingUp: false, closed: false, held: [] };
    ch.subs.add(sub);
    void this.#catchUp(ch, sub);
    return () => {
      sub.closed = true;
      ch!.subs.delete(sub);
      if (ch!.subs.size === 0 && this.#channels.get(taskId) === ch) this.#channels.delete(taskId);
    };
  }

  #onPersisted(ch: Channel, e: StoredEvent): void {
    ch.knownSeq = Math.max(ch.knownSeq, e.seq);
    const wire = toWireEvent(e);
    for (const sub of ch.subs) {
      if (sub.catchingUp || sub.closed) continue;
      if (e.seq === sub.lastSeq + 1) {
        sub.lastSeq = e.seq;
        sub.s.deliver(wire, false);
      } else if (e.seq > sub.lastSeq + 1) {
        void this.#catchUp(ch, sub);
      }
    }
  }

  /** Reads the log after the subscriber's position until it has everything known. */
  async #catchUp(ch: Channel, sub: Sub): Promise<void> {
    if (sub.catchingUp || sub.closed) return;
    sub.catchingUp = true;
    try {
      for (;;) {
        const rows = await eventsList(this.#db, { tenantId: ch.tenantId, taskId: ch.taskId, afterSeq: sub.lastSeq, limit: FETCH_PAGE });
        for (const e of rows) {
          if (sub.closed) return;
          if (e.seq !== sub.lastSeq + 1) continue;
          if (sub.held.length) this.#releaseHeld(sub, e.seq);
          sub.lastSeq = e.seq;
          ch.knownSeq = Math.max(ch.knownSeq, e.seq);
          sub.s.deliver(toWireEvent(e), false);
        }
        if (rows.length < FETCH_PAGE && sub.lastSeq >= ch.knownSeq) break;
        if (rows.length === 0) break;
      }
      // caught up: what is still held came after everything delivered — but for what came after
      // an event another round is about to read (known, not yet in the log this read saw)
      if (sub.held.length && !sub.closed) this.#releaseHeld(sub, sub.lastSeq >= ch.knownSeq ? Infinity : sub.lastSeq + 1, true);
    } catch (err) {
      sub.held = [];
      sub.s.fail?.(err as Error);
      this.#opts.onError?.(err);
    } finally {
      sub.catchingUp = false;
    }
    // events that arrived while we were reading
    if (!sub.closed && ch.knownSeq > sub.lastSeq) void this.#catchUp(ch, sub);
  }

  /**
   * One log read per hinted channel, fanned out to every subscriber that is not catching up on
   * its own (a read per subscriber made 200 clients cost 200 queries per event).
   */
  async #readForAll(ch: Channel): Promise<void> {
    if (ch.reading) {
      ch.readAgain = true;
      return;
    }
    ch.reading = true;
    try {
      for (;;) {
        ch.readAgain = false;
        let from = Infinity;
        for (const sub of ch.subs) if (!sub.catchingUp && !sub.closed && sub.lastSeq < ch.knownSeq) from = Math.min(from, sub.lastSeq);
        if (from === Infinity) {
          if (!ch.readAgain) break;
          continue;
        }
        const rows = await eventsList(this.#db, { tenantId: ch.tenantId, taskId: ch.taskId, afterSeq: from, limit: FETCH_PAGE });
        for (const e of rows) {
          ch.knownSeq = Math.max(ch.knownSeq, e.seq);
          const wire = toWireEvent(e);
          for (const sub of ch.subs) {
            if (sub.catchingUp || sub.closed || e.seq !== sub.lastSeq + 1) continue;
            sub.lastSeq = e.seq;
            sub.s.deliver(wire, false);
          }
        }
        if (rows.length === 0 && !ch.readAgain) break;
      }
    } catch (err) {
      this.#opts.onError?.(err);
      for (const sub of ch.subs) void this.#catchUp(ch, sub); // each subscriber retries on its own
    } finally {
      ch.reading = false;
    }
  }

  #deliverEphemeral(event: TaskEvent): void {
    const ch = this.#channels.get(event.workflow_id);
    if (!ch) return;
    for (const sub of ch.subs) {
      if (sub.closed) continue;
      if (!sub.catchingUp) sub.s.deliver(event, true);
      // (a running task has events: 0 known means this channel has not read its log yet)
      else if (sub.held.length < MAX_HELD) sub.held.push({ event, after: ch.knownSeq > 0 ? ch.knownSeq : undefined });
    }
  }

  /**
   * Hands over, in arrival order, the held live-only events that came after the events before
   * `nextSeq` (the persisted event about to be delivered); stops at the first that came later, or
   * whose place is not known (`placeUnknown`: at the end of a catch-up, after what it read).
   */
  #releaseHeld(sub: Sub, nextSeq: number, placeUnknown = false): void {
    let n = 0;
    for (const h of sub.held) {
      if (h.after === undefined ? !placeUnknown : h.after >= nextSeq) break;
      sub.s.deliver(h.event, true);
      n++;
    }
    if (n) sub.held.splice(0, n);
  }

  #onHint(payload: string): void {
    // this process's own hints come back too: skip them before parsing up to 7 KB of JSON
    if (payload.startsWith(this.#ownPrefix)) return;
    let msg: { o?: unknown; h?: unknown; e?: unknown; i?: unknown } | null;
    try {
      msg = JSON.parse(payload) as typeof msg;
    } catch {
      return;
    }
    // anything may arrive on the channel (another version's format, a hand-made NOTIFY): this runs
    // inside the LISTEN connection's notification callback, where a throw is an uncaught exception
    if (typeof msg !== 'object' || msg === null || msg.o === this.#origin) return;
    if (Array.isArray(msg.i) && msg.i.length) {
      const until = Date.now() + INTEREST_TTL_MS;
      for (const taskId of msg.i) if (typeof taskId === 'string') this.#remoteInterest.set(taskId, until);
    }
    if (Array.isArray(msg.h)) {
      for (const hint of msg.h as unknown[]) {
        if (!Array.isArray(hint) || typeof hint[0] !== 'string' || typeof hint[1] !== 'number') continue;
        const ch = this.#channels.get(hint[0]);
        if (!ch) continue;
        ch.knownSeq = Math.max(ch.knownSeq, hint[1]);
        void this.#readForAll(ch);
      }
    }
    if (Array.isArray(msg.e)) {
      for (const e of msg.e as unknown[]) {
        if (typeof e === 'object' && e !== null && typeof (e as TaskEvent).workflow_id === 'string' && typeof (e as TaskEvent).type === 'string') {
          this.#deliverEphemeral(e as TaskEvent);
        }
      }
    }
  }

  /**
   * One NOTIFY round at a time: hints published while one is being sent wait for it and go out
   * together in the next (under a burst of completions this is a few NOTIFYs per batch instead of
   * one per event-loop turn; idle, a hint still leaves on the next turn).
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    if (!this.#flushing) setImmediate(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#flushScheduled) await this.#flushOnce();
    } finally {
      this.#flushing = false;
    }
  }

  async #flushOnce(): Promise<void> {
    this.#flushScheduled = false;
    const hints = [...this.#pendingHints.entries()];
    const ephemeral = this.#pendingEphemeral;
    const interest = [...this.#pendingInterest];
    this.#pendingHints = new Map();
    this.#pendingEphemeral = [];
    this.#pendingInterest = new Set();
    const payloads: string[] = [];
    let batch: { o: string; h: [string, number][]; e: TaskEvent[]; i: string[] } = { o: this.#origin, h: [], e: [], i: [] };
    const push = () => {
      if (batch.h.length || batch.e.length || batch.i.length) payloads.push(JSON.stringify(batch));
      batch = { o: this.#origin, h: [], e: [], i: [] };
    };
    let size = 40;
    /** Makes room for an entry of `len` bytes: the batch so far goes out if it would not fit. */
    const fit = (len: number) => {
      size += len;
      if (size <= MAX_NOTIFY_BYTES) return;
      push();
      size = 40 + len;
    };
    for (const taskId of interest) {
      fit(taskId.length + 4);
      batch.i.push(taskId);
    }
    for (const h of hints) {
      fit(h[0].length + 16);
      batch.h.push(h);
    }
    for (const e of ephemeral) {
      const len = JSON.stringify(e).length;
      if (len > MAX_NOTIFY_BYTES - 100) continue; // too large to hint; partials are best-effort
      fit(len);
      batch.e.push(e);
    }
    push();
    for (const p of payloads) {
      await this.#db.notify(this.#opts.channel ?? EVENTS_CHANNEL, p).catch((err) => this.#opts.onError?.(err));
    }
  }
}
