// One worker's view of the capped tenants (engine/capped-tenants.ts): nobody is dispatched directly
// before the first read; a tenant signalled as changed counts as capped until a read begun after
// the signal, so a read already in flight when the signal came is discarded and made again; a
// failing read keeps what is known (and a signalled tenant capped) and is reported once per run.
import { describe, expect, it } from 'vitest';
import { CappedTenants } from '../../src/engine/capped-tenants.js';

/** A read the test answers by hand: `reads` holds one resolver per read started. */
function manualReads() {
  const reads: { resolve: (ids: string[]) => void; reject: (err: Error) => void }[] = [];
  const read = () => new Promise<string[]>((resolve, reject) => reads.push({ resolve, reject }));
  return { reads, read };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('CappedTenants', () => {
  it('dispatches nobody directly before the first read, then everyone but the capped', async () => {
    const { reads, read } = manualReads();
    const caps = new CappedTenants(read, () => {});
    const done = caps.refresh();
    expect(caps.allowsDirect('ten_a')).toBe(false);
    reads[0]!.resolve(['ten_capped']);
    await done;
    expect(caps.allowsDirect('ten_a')).toBe(true);
    expect(caps.allowsDirect('ten_capped')).toBe(false);
    expect(caps.has('ten_capped')).toBe(true);
    expect(caps.has('ten_a')).toBe(false);
  });

  it('keeps a signalled tenant capped through a read in flight, and reads again', async () => {
    const { reads, read } = manualReads();
    const caps = new CappedTenants(read, () => {});
    const first = caps.refresh();
    reads[0]!.resolve([]);
    await first;

    const inFlight = caps.refresh();
    await tick();
    expect(reads).toHaveLength(2);
    // the cap is set after that read has looked: it must not clear the tenant when it answers
    caps.changed('ten_a');
    expect(caps.allowsDirect('ten_a')).toBe(false);
    reads[1]!.resolve([]);
    await tick();
    expect(caps.allowsDirect('ten_a')).toBe(false);
    expect(reads).toHaveLength(3); // the read begun after the signal
    reads[2]!.resolve(['ten_a']);
    await inFlight;
    expect(caps.allowsDirect('ten_a')).toBe(false);

    // and a change that removed the cap frees the tenant once a read begun after it says so
    caps.changed('ten_a');
    await tick();
    expect(reads).toHaveLength(4);
    reads[3]!.resolve([]);
    await tick();
    expect(caps.allowsDirect('ten_a')).toBe(true);
  });

  it('shares one read between refreshes asked for while it runs', async () => {
    const { reads, read } = manualReads();
    const caps = new CappedTenants(read, () => {});
    const a = caps.refresh();
    const b = caps.refresh();
    expect(a).toBe(b);
    await tick();
    // asked for during the read: one more read after it, not one per ask
    reads[0]!.resolve([]);
    await tick();
    expect(reads).toHaveLength(2);
    reads[1]!.resolve([]);
    await a;
    expect(reads).toHaveLength(2);
  });

  it('keeps what it knew through failing reads, reports them once per run, and a signalled tenant stays capped', async () => {
    const { reads, read } = manualReads();
    const failures: unknown[] = [];
    const caps = new CappedTenants(read, (err) => failures.push(err));
    const first = caps.refresh();
    reads[0]!.resolve(['ten_capped']);
    await first;

    caps.changed('ten_b');
    await tick();
    reads[1]!.reject(new Error('connection terminated'));
    await tick();
    expect(caps.allowsDirect('ten_b')).toBe(false);
    expect(caps.allowsDirect('ten_capped')).toBe(false);
    expect(caps.allowsDirect('ten_other')).toBe(true);

    const again = caps.refresh();
    await tick();
    reads[2]!.reject(new Error('connection terminated'));
    await again;
    expect(failures).toHaveLength(1);

    const ok = caps.refresh();
    await tick();
    reads[3]!.resolve(['ten_capped']);
    await ok;
    expect(caps.allowsDirect('ten_b')).toBe(true);
    // a new run of failures is reported again
    const later = caps.refresh();
    await tick();
    reads[4]!.reject(new Error('connection terminated'));
    await later;
    expect(failures).toHaveLength(2);
  });
});
