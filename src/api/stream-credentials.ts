// Open streams and the credentials that opened them (docs/security.md "Open streams"). A stream is
// authorised once, at connect, so a credential that stops being valid must close it: API-key
// streams are indexed by key id, and a credentials hint (Signals: the key id, or `*`) re-reads
// those keys — one statement for all of them — closing the streams of keys that no longer
// authenticate. Expiries (a key's expires_at, a JWT's exp) close by timer. A sweep re-reads every
// tracked key every 30 s, so a lost NOTIFY delays a close but never skips it. Nothing runs per event.
import type { Principal } from '../auth/scopes.js';
import { MAX_TIMER_MS } from '../domain/time.js';

/** How often every key with an open stream is re-read (ms): the bound when a hint is lost. */
export const CREDENTIAL_SWEEP_MS = 30_000;
/** Key ids per lookup statement. */
const LOOKUP_CHUNK = 1_000;

export type CredentialCloseReason = 'revoked' | 'expired';

export interface StreamCredentialsOptions {
  /** Of these key ids, the keys that still authenticate (not revoked, tenant present), with their expiry. */
  lookup(ids: readonly string[]): Promise<{ id: string; expires_at: Date | null }[]>;
  /** Subscribes to credentials hints (a key id, or `*` for all); returns the unsubscribe. */
  onCredentials(fn: (keyId: string) => void): () => void;
  /** Re-read every tracked key this often (ms, default CREDENTIAL_SWEEP_MS). */
  sweepMs?: number;
  /** How long past its `exp` a JWT is still accepted (the verifier's clock tolerance; ms, default 0). */
  jwtGraceMs?: number;
  /** A lookup failed (the streams stay open until the next hint or sweep). */
  onError?(err: unknown): void;
}

/**
 * Calls `fn` at `atMs` (wall clock), however far ahead; `cancel` stops it. NaN (an expiry that is
 * no instant) calls it at once: setTimeout(fn, NaN) waits 1 ms, so it was re-armed every 1 ms.
 */
export function callAt(atMs: number, fn: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  if (Number.isNaN(atMs)) {
    fn();
    return { cancel: () => {} };
  }
  const arm = () => {
    const wait = atMs - Date.now();
    if (wait <= 0) return fn();
    timer = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}

export class StreamCredentials {
  readonly #o: StreamCredentialsOptions;
  readonly #byKey = new Map<string, Set<(reason: CredentialCloseReason) => void>>();
  readonly #pending = new Set<string>();
  readonly #stopHints: () => void;
  #draining = false;
  #sweep: NodeJS.Timeout | undefined;
  /** When the last hint arrived (ms): a stream whose request began before it is re-checked on watch. */
  #lastHintAt = 0;

  constructor(o: StreamCredentialsOptions) {
    this.#o = o;
    this.#stopHints = o.onCredentials((id) => this.#hint(id));
  }

  /** API keys with open streams. */
  get trackedKeys(): number {
    return this.#byKey.size;
  }

  /**
   * Watches one stream's credential until the returned function is called; `close` runs at most
   * once. `requestStartMs`: when the stream's request arrived — a hint that came in since (while it
   * authenticated and set up) gets its key re-read now, so a revocation cannot slip past.
   */
  watch(p: Principal, requestStartMs: number, close: (reason: CredentialCloseReason) => void): () => void {
    let open = true;
    const closeOnce = (reason: CredentialCloseReason) => {
      if (!open) return;
      open = false;
      close(reason);
    };
    const graceMs = p.kind === 'jwt' ? (this.#o.jwtGraceMs ?? 0) : 0;
    const timer = p.expiresAt && p.kind !== 'anonymous' ? callAt(p.expiresAt.getTime() + graceMs, () => closeOnce('expired')) : undefined;
    if (p.kind !== 'api_key') return () => timer?.cancel();
    const id = p.subjectId;
    let set = this.#byKey.get(id);
    if (!set) this.#byKey.set(id, (set = new Set()));
    set.add(closeOnce);
    this.#sweep ??= setInterval(() => this.#check([...this.#byKey.keys()]), this.#o.sweepMs ?? CREDENTIAL_SWEEP_MS).unref();
    if (this.#lastHintAt >= requestStartMs) this.#check([id]);
    return () => {
      open = false;
      timer?.cancel();
      const s = this.#byKey.get(id);
      s?.delete(closeOnce);
      if (s && !s.size) this.#byKey.delete(id);
      if (!this.#byKey.size && this.#sweep) {
        clearInterval(this.#sweep);
        this.#sweep = undefined;
      }
    };
  }

  stop(): void {
    this.#stopHints();
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  #hint(keyId: string): void {
    this.#lastHintAt = Date.now();
    if (keyId === '*') this.#check([...this.#byKey.keys()]);
    else if (this.#byKey.has(keyId)) this.#check([keyId]);
  }

  /** Queues keys for a re-read; one read runs at a time and takes everything queued meanwhile. */
  #check(ids: readonly string[]): void {
    for (const id of ids) this.#pending.add(id);
    if (this.#draining || !this.#pending.size) return;
    this.#draining = true;
    void this.#drain().finally(() => {
      this.#draining = false;
      this.#check([]);
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.size) {
        const ids = [...this.#pending].filter((id) => this.#byKey.has(id));
        this.#pending.clear();
        for (let i = 0; i < ids.length; i += LOOKUP_CHUNK) {
          const chunk = ids.slice(i, i + LOOKUP_CHUNK);
          const valid = new Map((await this.#o.lookup(chunk)).map((r) => [r.id, r.expires_at]));
          const now = Date.now();
          for (const id of chunk) {
            const expiresAt = valid.get(id);
            if (!valid.has(id)) this.#closeKey(id, 'revoked');
            else if (expiresAt && expiresAt.getTime() <= now) this.#closeKey(id, 'expired');
          }
        }
      }
    } catch (err) {
      this.#pending.clear();
      this.#o.onError?.(err);
    }
  }

  #closeKey(id: string, reason: CredentialCloseReason): void {
    for (const close of [...(this.#byKey.get(id) ?? [])]) close(reason);
  }
}
