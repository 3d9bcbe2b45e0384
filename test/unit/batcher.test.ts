// The one group-commit mechanism: flush sizes under the options that shape them.
import { describe, expect, it } from 'vitest';
import { Batcher } from '../../src/storage/batcher.js';

function recording(opts: { maxInFlight: number; minBatchWhileBusy?: number; deferFlush?: boolean }, flushMs = 5) {
  const sizes: number[] = [];
  const batcher = new Batcher<number, number>({
    ...opts,
    maxBatch: 100,
    flush: async (items) => {
      sizes.push(items.length);
      await new Promise((r) => setTimeout(r, flushMs));
      return items.map((i) => i * 2);
    },
  });
  return { sizes, batcher };
}

describe('Batcher', () => {
  it('flushes a lone item at once, and what queued meanwhile together', async () => {
    const { sizes, batcher } = recording({ maxInFlight: 1 });
    const out = await Promise.all([1, 2, 3, 4].map((i) => batcher.submit(i)));
    expect(out).toEqual([2, 4, 6, 8]);
    expect(sizes).toEqual([1, 3]);
  });

  it('with deferFlush, items submitted before pending I/O callbacks run share the first flush', async () => {
    const { sizes, batcher } = recording({ maxInFlight: 2, deferFlush: true });
    const out = await Promise.all([1, 2, 3, 4].map((i) => batcher.submit(i)));
    expect(out).toEqual([2, 4, 6, 8]);
    expect(sizes).toEqual([4]); // the second deferred start found the queue empty and stood down
  });

  it('starts a second flush only once minBatchWhileBusy items wait', async () => {
    const { sizes, batcher } = recording({ maxInFlight: 4, minBatchWhileBusy: 3 }, 20);
    const first = batcher.submit(0);
    const small = [1, 2].map((i) => batcher.submit(i)); // 2 waiting: no second flush
    await new Promise((r) => setTimeout(r, 5));
    expect(sizes).toEqual([1]);
    const more = [3].map((i) => batcher.submit(i)); // 3 waiting: a second flush starts
    expect(sizes).toEqual([1, 3]);
    await Promise.all([first, ...small, ...more]);
  });

  it('retries a failed batch item by item, so one bad item fails alone', async () => {
    const batcher = new Batcher<number, number>({
      maxInFlight: 1,
      maxBatch: 10,
      flush: async (items) => {
        if (items.includes(13)) throw new Error('unlucky');
        return items;
      },
    });
    const results = await Promise.allSettled([12, 13, 14].map((i) => batcher.submit(i)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });

  it('runs a lone item again once when its flush lost a deadlock; other errors and a second loss pass through', async () => {
    const failures = new Map<number, { code?: string }[]>([
      [1, [{ code: '40P01' }]], // lost a deadlock once: runs again and succeeds
      [2, [{ code: '40001' }, { code: '40001' }]], // lost twice: the second error is its own
      [3, [{ code: '23505' }]], // a unique violation is not transient
    ]);
    const calls: number[] = [];
    const batcher = new Batcher<number, number>({
      maxInFlight: 1,
      maxBatch: 1,
      flush: async ([i]) => {
        calls.push(i!);
        const next = failures.get(i!)?.shift();
        if (next) throw Object.assign(new Error(`failed ${i}`), next);
        return [i!];
      },
    });
    const results = await Promise.allSettled([1, 2, 3].map((i) => batcher.submit(i)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect(calls).toEqual([1, 1, 2, 2, 3]);
  });
});
