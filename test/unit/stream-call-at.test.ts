// callAt (src/api/stream-credentials.ts), the timer that closes a stream when its credential
// expires: an expiry that is no instant (NaN) acts at once instead of re-arming a 1 ms timer for ever.
import { describe, expect, it } from 'vitest';
import { callAt } from '../../src/api/stream-credentials.js';

describe('callAt', () => {
  it('calls at once for a NaN instant (setTimeout(NaN) would re-arm every 1 ms) and for a past one', () => {
    let calls = 0;
    const nan = callAt(Number.NaN, () => calls++);
    nan.cancel();
    expect(calls).toBe(1);
    callAt(Date.now() - 1, () => calls++).cancel();
    expect(calls).toBe(2);
  });

  it('waits for a future or infinite instant, and cancel stops it', () => {
    let calls = 0;
    const later = callAt(Date.now() + 60_000, () => calls++);
    const never = callAt(Number.POSITIVE_INFINITY, () => calls++);
    later.cancel();
    never.cancel();
    expect(calls).toBe(0);
  });
});
