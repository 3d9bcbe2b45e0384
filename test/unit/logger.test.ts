// The process logger: credentials never reach a log line (headers, nested keys, URL query
// parameters), and a request's child logger costs nothing until it logs at an enabled level.
import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { LazyChildLogger, createLogger, redactUrl, taskLogger } from '../../src/logger.js';

function sink() {
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('redacts credentials in headers, nested keys and URLs', () => {
    const { lines, stream } = sink();
    const log = createLogger('info', stream);
    log.info({
      req: { method: 'GET', url: '/api/v1/stream/sse?workflow_id=t1&api_key=sk_live_secret&token=jwt.abc', id: 'r1', ip: '127.0.0.1' },
      headers: { authorization: 'Bearer sk_live_secret', 'x-api-key': 'sk_live_secret' },
      upstream: { password: 'hunter2', token: 'tok', apiKey: 'k', api_key: 'k2', authorization: 'Basic x' },
    }, 'request');
    expect(lines).toHaveLength(1);
    const text = JSON.stringify(lines[0]);
    for (const secret of ['sk_live_secret', 'hunter2', 'jwt.abc', '"tok"', '"k"', '"k2"', 'Basic x']) expect(text).not.toContain(secret);
    expect(lines[0]!.req).toEqual({ method: 'GET', url: '/api/v1/stream/sse?workflow_id=t1&api_key=[REDACTED]&token=[REDACTED]', request_id: 'r1', remote: '127.0.0.1' });
    expect(lines[0]!.headers.authorization).toBe('[REDACTED]');
    expect(lines[0]!.service).toBe('taskgate');
    expect(typeof lines[0]!.time).toBe('string');
  });

  it('serializes errors with their stack, and respects the level', () => {
    const { lines, stream } = sink();
    const log = createLogger('warn', stream);
    log.info('dropped');
    log.error({ err: new Error('boom') }, 'failed');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.err).toMatchObject({ type: 'Error', message: 'boom' });
    expect(lines[0]!.err.stack).toContain('boom');
  });
});

describe('redactUrl', () => {
  it('redacts credential parameters by their decoded names, whatever their spelling', () => {
    expect(redactUrl('/s?workflow_id=t&api%5Fkey=sk_1&API_KEY=sk_2&%74oken=j&access_token=a')).toBe(
      '/s?workflow_id=t&api%5Fkey=[REDACTED]&API_KEY=[REDACTED]&%74oken=[REDACTED]&access_token=[REDACTED]',
    );
    expect(redactUrl('/s?token')).toBe('/s?token=[REDACTED]');
    expect(redactUrl('/s?a=%E0%A4%A&token=x')).toBe('/s?a=%E0%A4%A&token=[REDACTED]');
    expect(redactUrl('/api/v1/tasks?limit=5')).toBe('/api/v1/tasks?limit=5');
    expect(redactUrl('/health')).toBe('/health');
  });

  it('reads a raw # as part of the query, as the query parser does, and redacts bracketed names', () => {
    // a request target has no fragment: `?x=#&api_key=S` authenticates with S
    expect(redactUrl('/s?x=#&api_key=S3CRET')).toBe('/s?x=#&api_key=[REDACTED]');
    expect(redactUrl('/s?a=b#c&token=S3CRET')).toBe('/s?a=b#c&token=[REDACTED]');
    expect(redactUrl('/s?access_token=S3CRET#x')).toBe('/s?access_token=[REDACTED]');
    expect(redactUrl('/s?api_key[]=S3CRET&token%5B0%5D=S3CRET&ACCESS_TOKEN[a]=S3CRET')).toBe('/s?api_key[]=[REDACTED]&token%5B0%5D=[REDACTED]&ACCESS_TOKEN[a]=[REDACTED]');
    expect(redactUrl('/s?workflow_id=t#api_key')).toBe('/s?workflow_id=t#api_key');
  });

  it("redacts credentials under names no route reads (a client's mistake) and keys or JWTs anywhere in the URL", () => {
    const key = 'sk_abcdefABCDEF_0123456789abcdefghijKLMNOP_-xyz';
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl';
    for (const name of ['apikey', 'key', 'api+key', '%20api_key', '%2561pi_key', 'x-api-key', 'Authorization', 'password', 'client_secret']) {
      expect(redactUrl(`/s?workflow_id=t&${name}=S3CRET`), name).toBe(`/s?workflow_id=t&${name}=[REDACTED]`);
    }
    expect(redactUrl(`/api/v1/stream/sse%3Fworkflow_id=t&api_key=${key}`)).toBe('/api/v1/stream/sse%3Fworkflow_id=t&api_key=[REDACTED]');
    expect(redactUrl(`/x/${key}/y?q=${jwt}`)).toBe('/x/[REDACTED]/y?q=[REDACTED]');
    expect(redactUrl('/api/v1/tasks?limit=5&status=RUNNING&session_id=s1')).toBe('/api/v1/tasks?limit=5&status=RUNNING&session_id=s1');
    // an operator's own key (sk_ and 32 characters) and a JWT behind other characters of its run
    expect(redactUrl(`/s?q=sk_${'A'.repeat(32)}&r=1`)).toBe('/s?q=[REDACTED]&r=1');
    expect(redactUrl(`/s?q=Bearer%20${jwt}`)).toBe('/s?q=Bearer%20[REDACTED]');
    // ids are not keys: a task id holds `sk_` (ta-sk_), and was logged redacted
    expect(redactUrl('/api/v1/tasks/task_01m98z2h8pr4ehfx6tv9fa3a5n/events?after=3')).toBe('/api/v1/tasks/task_01m98z2h8pr4ehfx6tv9fa3a5n/events?after=3');
    expect(redactUrl(`/api/v1/tasks/task_01m98z2h8pr4ehfx6tv9fa3a5n?x=${key}`)).toBe('/api/v1/tasks/task_01m98z2h8pr4ehfx6tv9fa3a5n?x=[REDACTED]');
    // a run of eyJ that is no JWT is left as it is (and is looked at once, not from every eyJ)
    const eyj = 'eyJ'.repeat(5_000);
    expect(redactUrl(`/health?x=${eyj}`)).toBe(`/health?x=${eyj}`);
  });
});

describe('LazyChildLogger', () => {
  it('builds its bindings only when it first logs at an enabled level, then once', () => {
    const { lines, stream } = sink();
    const parent = createLogger('warn', stream);
    let built = 0;
    const child = new LazyChildLogger(parent, () => {
      built++;
      return { request_id: 'r9' };
    });
    child.info('below the level');
    child.debug('below');
    child.trace('below');
    child.silent();
    expect(child.isLevelEnabled('info')).toBe(false);
    expect(child.level).toBe('warn');
    expect(built).toBe(0);
    child.warn('one');
    child.error('two');
    child.fatal('three');
    expect(built).toBe(1);
    expect(lines.map((l) => [l.msg, l.request_id])).toEqual([['one', 'r9'], ['two', 'r9'], ['three', 'r9']]);
    expect(child.bindings()).toMatchObject({ request_id: 'r9' });
    child.child({ step: 's' }).warn('grandchild');
    expect(lines.at(-1)).toMatchObject({ msg: 'grandchild', request_id: 'r9', step: 's' });
  });

  it('a child with options of its own is built at once, and its level can be changed', () => {
    const { lines, stream } = sink();
    const parent = createLogger('warn', stream);
    let built = 0;
    const child = new LazyChildLogger(parent, () => (built++, { task: 't' }), { level: 'debug' });
    expect(built).toBe(1);
    child.debug('visible');
    child.level = 'error';
    child.warn('hidden now');
    expect(lines.map((l) => l.msg)).toEqual(['visible']);
  });
});

describe('taskLogger', () => {
  it('maps a task handler’s log calls to the process logger with their data', () => {
    const { lines, stream } = sink();
    const log = taskLogger(createLogger('info', stream));
    log.info('started', { n: 1 });
    log.warn('slow');
    log.error('failed', { code: 'E' });
    expect(lines.map((l) => [l.level, l.msg, l.n ?? l.code])).toEqual([[30, 'started', 1], [40, 'slow', undefined], [50, 'failed', 'E']]);
  });
});
