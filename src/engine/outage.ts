// A worker's durable writes ride out a database restart: tried again, with backoff, while the
// database cannot be reached, for up to a lease's length — the heartbeats keep the lease
// meanwhile, and every write is fenced on it, so a try after the lease was lost changes nothing.
import { setTimeout as delay } from 'node:timers/promises';

export interface OutageOptions {
  /** How long after the first failure to keep trying (TASKGATE_LEASE_MS). */
  forMs: number;
  /** Which errors are worth another try. */
  retryable: (err: unknown) => boolean;
  /** Checked before each wait: true rethrows at once (the attempt was aborted meanwhile). */
  stop: () => boolean;
  onRetry: (err: unknown, waitMs: number) => void;
}

/** Waits between tries: 100, 200, 400 … ms, then every 2 s. */
const FIRST_WAIT_MS = 100;
const MAX_WAIT_MS = 2_000;

export async function retryThroughOutage<T>(write: () => Promise<T>, o: OutageOptions): Promise<T> {
  let giveUpAt: number | undefined;
  for (let i = 0; ; i++) {
    try {
      return await write();
    } catch (err) {
      const wait = Math.min(FIRST_WAIT_MS * 2 ** i, MAX_WAIT_MS);
      giveUpAt ??= Date.now() + o.forMs;
      if (!o.retryable(err) || o.stop() || Date.now() + wait > giveUpAt) throw err;
      o.onRetry(err, wait);
      await delay(wait);
    }
  }
}
