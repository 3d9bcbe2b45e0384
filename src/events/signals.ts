// Hints between processes: "new work is queued", "task X was asked to cancel or pause",
// "credential X changed" (an API key revoked, or `*`: a tenant's rate limit changed), "tenant X's
// settings changed" (its cap on running tasks: workers keep the capped tenants) and "tenant X's
// own task definitions changed" (other processes only: one Registry serves the process). In-process
// listeners are called at once; other processes get one coalesced NOTIFY per kind per tick. Each
// NOTIFY carries its sender's token and the sender skips its own echo: its listeners already ran,
// and the echo would only make its worker claim again (direct dispatch steps aside while a claim
// is in flight), heartbeat again for a cancel, or drop a cached credential twice.
// Hints only shorten waits: workers also poll and heartbeat, and cached credentials expire on
// their own, so nothing is lost when a NOTIFY is.
import { randomBytes } from 'node:crypto';
import { channelName, type Db } from '../storage/db.js';

export const WORK_CHANNEL = 'taskgate_work';
export const CONTROL_CHANNEL = 'taskgate_control';
export const CREDENTIALS_CHANNEL = 'taskgate_credentials';
export const DEFINITIONS_CHANNEL = 'taskgate_definitions';
export const TENANTS_CHANNEL = 'taskgate_tenants';

export interface SignalsOptions {
  crossProcess: boolean;
  onError?: (err: unknown) => void;
}

type IdKind = 'control' | 'credentials' | 'tenants' | 'definitions';
const ID_CHANNELS: Record<IdKind, string> = {
  control: CONTROL_CHANNEL, credentials: CREDENTIALS_CHANNEL, tenants: TENANTS_CHANNEL, definitions: DEFINITIONS_CHANNEL,
};
/** One fresh set per hint kind. */
const perKind = <T>(): Record<IdKind, Set<T>> => ({ control: new Set(), credentials: new Set(), tenants: new Set(), definitions: new Set() });

export class Signals {
  readonly #db: Db;
  readonly #opts: SignalsOptions;
  readonly #workListeners = new Set<() => void>();
  readonly #idListeners = perKind<(id: string) => void>();
  #workPending = false;
  #idPending = perKind<string>();
  #flushScheduled = false;
  #unlisten: (() => Promise<void>)[] = [];
  /**
   * Sent with every NOTIFY, so this instance skips its own (its listeners ran at once): the work
   * NOTIFY's whole payload; on the id channels the last element, `~token` (`~` is not an id
   * character: a process of an earlier version fires it as an id that matches nothing).
   */
  readonly #token = randomBytes(6).toString('base64url');
  readonly #idTag = `~${this.#token}`;
  /** The NOTIFYs scheduled last, until sent. */
  #flushing: Promise<void> | undefined;

  constructor(db: Db, opts: SignalsOptions) {
    this.#db = db;
    this.#opts = opts;
  }

  /** The channel of a hint kind, namespaced per schema (tests sharing one server do not cross-talk). */
  #channel(base: string): string {
    return channelName(this.#db.schema, base);
  }

  /** Starts receiving other processes' hints. */
  async start(): Promise<void> {
    if (!this.#opts.crossProcess || this.#unlisten.length) return;
    this.#unlisten.push(
      await this.#db.listen(this.#channel(WORK_CHANNEL), (p) => {
        if (p !== this.#token) this.#fireWork();
      }),
    );
    for (const kind of Object.keys(ID_CHANNELS) as IdKind[]) {
      this.#unlisten.push(
        await this.#db.listen(this.#channel(ID_CHANNELS[kind]), (p) => {
          const ids = p.split(',');
          const tag = ids.at(-1);
          if (tag === this.#idTag) return;
          // a tag is the sender's, not an id; a payload without one comes from an earlier version
          for (const id of ids) if (id && id[0] !== '~') this.#fireId(kind, id);
        }),
      );
    }
  }

  /**
   * Resolves once every hint signalled so far has been sent to the other processes (or failed to
   * be): a route whose answer promises a change there (a revoked key, a new cap) waits for it, so
   * the client cannot reach another process before that process is told.
   */
  sent(): Promise<void> {
    return this.#flushing ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    // what was signalled last (a shutting-down worker's released tasks) still reaches the others
    await this.#flushing;
    const fns = this.#unlisten;
    this.#unlisten = [];
    for (const f of fns) await f();
  }

  onWork(fn: () => void): () => void {
    this.#workListeners.add(fn);
    return () => this.#workListeners.delete(fn);
  }

  onControl(fn: (taskId: string) => void): () => void {
    this.#idListeners.control.add(fn);
    return () => this.#idListeners.control.delete(fn);
  }

  /** `fn` gets the id of an API key whose state changed, or `*` when any principal may have (a tenant's rate limit). */
  onCredentials(fn: (keyId: string) => void): () => void {
    this.#idListeners.credentials.add(fn);
    return () => this.#idListeners.credentials.delete(fn);
  }

  /** `fn` gets the id of a tenant created or changed (its cap on running tasks among what may have). */
  onTenant(fn: (tenantId: string) => void): () => void {
    this.#idListeners.tenants.add(fn);
    return () => this.#idListeners.tenants.delete(fn);
  }

  /** `fn` gets the id of a tenant whose own task definitions another process changed. */
  onDefinitions(fn: (tenantId: string) => void): () => void {
    this.#idListeners.definitions.add(fn);
    return () => this.#idListeners.definitions.delete(fn);
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
    this.#signalId('control', taskId);
  }

  /** An API key was revoked (its id), or a tenant's rate limit changed (`*`: cached principals carry it). */
  credentials(keyId: string): void {
    this.#signalId('credentials', keyId);
  }

  /** A tenant was created with a cap on running tasks, or changed. */
  tenant(tenantId: string): void {
    this.#signalId('tenants', tenantId);
  }

  /** A tenant's own task definitions changed: for other processes (this one's Registry already has it). */
  definitions(tenantId: string): void {
    this.#signalId('definitions', tenantId, false);
  }

  #signalId(kind: IdKind, id: string, local = true): void {
    if (local) this.#fireId(kind, id);
    if (this.#opts.crossProcess) {
      this.#idPending[kind].add(id);
      this.#schedule();
    }
  }

  #fireWork(): void {
    for (const fn of this.#workListeners) fn();
  }

  #fireId(kind: IdKind, id: string): void {
    for (const fn of this.#idListeners[kind]) fn(id);
  }

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#flushing = new Promise<void>((resolve) => setImmediate(() => void this.#flush().finally(resolve)));
  }

  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    const work = this.#workPending;
    const pending = this.#idPending;
    this.#workPending = false;
    this.#idPending = perKind<string>();
    // each NOTIFY on its own: one that fails (a connection lost) does not drop the hints after it
    // — a revoked key's among them, which another process would otherwise honour until its cache
    // expires; a second failure says the database is away, and the rest are not tried (each could
    // wait out a connect timeout, and a stop waits for the flush)
    let failed: unknown;
    let failures = 0;
    const send = async (channel: string, payload: string) => {
      if (failures >= 2) return;
      try {
        await this.#db.notify(channel, payload);
      } catch (err) {
        failed ??= err;
        failures++;
      }
    };
    if (work) await send(this.#channel(WORK_CHANNEL), this.#token);
    for (const kind of Object.keys(ID_CHANNELS) as IdKind[]) {
      const ids = [...pending[kind]];
      // ids are ≤128 chars: 40 per NOTIFY (and the tag) stay under the 8000-byte payload limit
      for (let i = 0; i < ids.length; i += 40) await send(this.#channel(ID_CHANNELS[kind]), [...ids.slice(i, i + 40), this.#idTag].join(','));
    }
    if (failed !== undefined) this.#opts.onError?.(failed);
  }
}
