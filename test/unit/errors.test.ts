// Which failures are "the database is away" (503 UNAVAILABLE, retry) rather than a bug (500).
import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable, STORAGE_FAILURE_WINDOW_MS, StorageHealth } from '../../src/storage/unavailable.js';

const sys = (code: string) => Object.assign(new Error(code), { code });

describe('isDatabaseUnavailable', () => {
  it('recognises connection failures, shutdowns and connection limits', () => {
    for (const err of [
      sys('ECONNREFUSED'), sys('ECONNRESET'), sys('ETIMEDOUT'), sys('EPIPE'), sys('ENOTFOUND'),
      sys('08006'), sys('08001'), sys('57P01'), sys('57P03'), sys('53300'),
      new Error('Connection terminated unexpectedly'), new Error('timeout exceeded when trying to connect'),
      // pg, for a query on a client whose connection already failed (or was closed)
      new Error('Client has encountered a connection error and is not queryable'), new Error('Client was closed and is not queryable'),
      new AggregateError([sys('ECONNREFUSED'), sys('ECONNREFUSED')], 'connect failed'),
      // a database that cannot write: disk full, out of memory, I/O error
      sys('53100'), sys('53200'), sys('58030'), sys('53000'),
      // ALTER DATABASE … ALLOW_CONNECTIONS false: 55000 at connect
      Object.assign(new Error('database "taskgate" is not currently accepting connections'), { code: '55000' }),
    ]) expect(isDatabaseUnavailable(err), String((err as Error).message)).toBe(true);
  });
  it('leaves everything else a 500', () => {
    for (const err of [new Error('boom'), sys('23505'), sys('55000'), sys('42P01'), sys('40P01'), new TypeError('x is undefined'), null, undefined, 'text', new AggregateError([new Error('a')])]) {
      expect(isDatabaseUnavailable(err), String(err)).toBe(false);
    }
  });
});

describe('StorageHealth', () => {
  it('reports the last storage failure for STORAGE_FAILURE_WINDOW_MS, and nothing for other errors', () => {
    let now = 1_000_000;
    const health = new StorageHealth(() => now);
    health.note(sys('23505'));
    health.note(sys('ECONNREFUSED'));
    expect(health.failing()).toBeUndefined();
    health.note(Object.assign(new Error('could not extend file: No space left on device'), { code: '53100' }));
    expect(health.failing()).toMatch(/^writes failing: disk full \(SQLSTATE 53100\)/);
    now += STORAGE_FAILURE_WINDOW_MS - 1;
    expect(health.failing()).toBeDefined();
    now += 1;
    expect(health.failing()).toBeUndefined();
  });
});
