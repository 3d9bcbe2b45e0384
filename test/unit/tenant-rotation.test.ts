// The round-robin start point a worker passes to its next claim (engine/tenant-rotation.ts): a
// claim goes down in id order from below it, then wraps to the last tenant down to it.
import { describe, expect, it } from 'vitest';
import { TenantRotation } from '../../src/engine/tenant-rotation.js';

describe('TenantRotation', () => {
  it('starts from the last tenant down and moves to the last one a claim served', () => {
    const r = new TenantRotation();
    expect(r.after).toBe('');
    r.served(['ten_b', 'ten_a', 'ten_c']);
    expect(r.after).toBe('ten_a');
  });

  it('takes a wrapped-around tenant as served after those below the start point', () => {
    const r = new TenantRotation();
    r.served(['ten_m']);
    // a claim that went ten_k, ten_b, then wrapped to ten_x: ten_x was served last
    r.served(['ten_b', 'ten_x', 'ten_k']);
    expect(r.after).toBe('ten_x');
    // the start point itself is reached last, after the wrap
    r.served(['ten_x', 'ten_z']);
    expect(r.after).toBe('ten_x');
  });

  it('keeps its place when a claim served nobody', () => {
    const r = new TenantRotation();
    r.served(['ten_k']);
    r.served([]);
    expect(r.after).toBe('ten_k');
  });
});
