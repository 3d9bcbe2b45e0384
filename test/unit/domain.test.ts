import { describe, expect, it } from 'vitest';
import {
  TASK_STATUSES, TRANSITIONS, backoffDelayMs, canTransition, isTerminal, nextStatusAfter, parsePriority, parseStatus,
  priorityFromRank, priorityRank, MAX_BACKOFF_MS,
} from '../../src/domain/lifecycle.js';
import { ID_PATTERN, isValidId, newId, newTaskId } from '../../src/domain/ids.js';

describe('lifecycle', () => {
  it('final statuses have no way out; every edge stays within the status set', () => {
    for (const s of TASK_STATUSES) {
      if (isTerminal(s)) expect(TRANSITIONS[s]).toEqual([]);
      for (const to of TRANSITIONS[s]) expect(TASK_STATUSES).toContain(to);
    }
    expect(canTransition('QUEUED', 'RUNNING')).toBe(true);
    expect(canTransition('COMPLETED', 'QUEUED')).toBe(false);
    expect(canTransition('PAUSED', 'RUNNING')).toBe(false);
  });

  it('parses status filters leniently', () => {
    expect(parseStatus('canceled')).toBe('CANCELLED');
    expect(parseStatus(' completed ')).toBe('COMPLETED');
    expect(parseStatus('PENDING')).toBe('QUEUED');
    expect(parseStatus('nope')).toBeUndefined();
  });

  it('orders priorities urgent first', () => {
    expect(['low', 'urgent', 'medium', 'high'].map((p) => priorityRank(p as never)).sort()).toEqual([0, 1, 2, 3]);
    expect(priorityRank('urgent')).toBe(0);
    expect(priorityFromRank(3)).toBe('low');
    expect(priorityFromRank(99)).toBe('medium');
    expect(parsePriority('HIGH')).toBe('high');
    expect(parsePriority('critical')).toBeUndefined();
  });

  it('backs off exponentially with equal jitter, capped', () => {
    const policy = { maxRetries: 5, retryIntervalMs: 1000, backoffMultiplier: 2 };
    expect(backoffDelayMs(policy, 1, () => 0)).toBe(500);
    expect(backoffDelayMs(policy, 1, () => 1)).toBe(1000);
    expect(backoffDelayMs(policy, 3, () => 0)).toBe(2000);
    expect(backoffDelayMs(policy, 3, () => 1)).toBe(4000);
    expect(backoffDelayMs(policy, 40, () => 1)).toBe(MAX_BACKOFF_MS);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelayMs(policy, 2);
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThanOrEqual(2000);
    }
  });

  it('decides the status after an attempt', () => {
    expect(nextStatusAfter({ kind: 'completed' }, 1, 1)).toEqual({ status: 'COMPLETED', retry: false });
    expect(nextStatusAfter({ kind: 'failed', permanent: false }, 1, 3)).toEqual({ status: 'QUEUED', retry: true });
    expect(nextStatusAfter({ kind: 'failed', permanent: false }, 3, 3)).toEqual({ status: 'FAILED', retry: false });
    expect(nextStatusAfter({ kind: 'failed', permanent: true }, 1, 3)).toEqual({ status: 'FAILED', retry: false });
    expect(nextStatusAfter({ kind: 'timed_out' }, 1, 2)).toEqual({ status: 'QUEUED', retry: true });
    expect(nextStatusAfter({ kind: 'timed_out' }, 2, 2)).toEqual({ status: 'TIMEOUT', retry: false });
    expect(nextStatusAfter({ kind: 'cancelled' }, 1, 5)).toEqual({ status: 'CANCELLED', retry: false });
  });
});

describe('ids', () => {
  it('are prefixed, valid on the wire, unique and time-sortable', () => {
    const a = newId('task', 1_000);
    const b = newId('task', 2_000);
    expect(a < b).toBe(true);
    expect(newTaskId()).toMatch(/^task_[0-9a-z]{26}$/);
    const many = new Set(Array.from({ length: 10_000 }, () => newTaskId()));
    expect(many.size).toBe(10_000);
    for (const id of many) expect(ID_PATTERN.test(id)).toBe(true);
    expect(isValidId('a b')).toBe(false);
    expect(isValidId('x'.repeat(129))).toBe(false);
    expect(isValidId('ok:id_1-2.3')).toBe(true);
  });
});
