// The round-robin start point a worker passes to its next claim (engine/tenant-rotation.ts).
import { describe, expect, it } from 'vitest';
import { TenantRotation } from '../../src/engine/tenant-rotation.js';

describe('TenantRotation', () => {
  it('starts from the first tenant and moves to the last one a claim served', () => {
    const r = new TenantRotation();
    expect(r.after).toBe('');
    r.served(['ten_b', 'ten_a', 'ten_c']);
    expect(r.after).toBe('ten_c');
  });

  it('takes a wrapped-around tenant as served after those past the start point', () => {
    const r = new TenantRotation();
    r.served(['ten_m']);
    // a claim that went ten_p, ten_x, then wrapped to ten_b: ten_b was served last
    r.served(['ten_x', 'ten_b', 'ten_p']);
    expect(r.after).toBe('ten_b');
    // the start point itself is reached last, after the wrap
    r.served(['ten_c', 'ten_b']);
    expect(r.after).toBe('ten_b');
  });

  it('keeps its place when a claim served nobody', () => {
    const r = new TenantRotation();
    r.served(['ten_k']);
    r.served([]);
    expect(r.after).toBe('ten_k');
  });
});
