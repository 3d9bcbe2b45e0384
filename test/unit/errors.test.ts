// Which failures are "the database is away" (503 UNAVAILABLE, retry) rather than a bug (500).
import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../../src/storage/unavailable.js';

const sys = (code: string) => Object.assign(new Error(code), { code });

describe('isDatabaseUnavailable', () => {
  it('recognises connection failures, shutdowns and connection limits', () => {
    for (const err of [
      sys('ECONNREFUSED'), sys('ECONNRESET'), sys('ETIMEDOUT'), sys('EPIPE'), sys('ENOTFOUND'),
      sys('08006'), sys('08001'), sys('57P01'), sys('57P03'), sys('53300'),
      new Error('Connection terminated unexpectedly'), new Error('timeout exceeded when trying to connect'),
      new AggregateError([sys('ECONNREFUSED'), sys('ECONNREFUSED')], 'connect failed'),
    ]) expect(isDatabaseUnavailable(err), String((err as Error).message)).toBe(true);
  });
  it('leaves everything else a 500', () => {
    for (const err of [new Error('boom'), sys('23505'), sys('42P01'), sys('40P01'), new TypeError('x is undefined'), null, undefined, 'text', new AggregateError([new Error('a')])]) {
      expect(isDatabaseUnavailable(err), String(err)).toBe(false);
    }
  });
});
