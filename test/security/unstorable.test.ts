// Strings PostgreSQL cannot hold (a NUL, an unpaired surrogate) and numbers it cannot take: a
// request carrying one is a 400, never a 500; an executor producing one (an upstream body, a
// handler's output or error) completes with U+FFFD in its place instead of failing the statement
// that writes it — which, in a claim window, writes its neighbours' completions too.
import { describe, expect, it } from 'vitest';
import { useTestServer, waitForTask } from '../helpers/server.js';
import type { TaskDefinition } from '../../src/executors/types.js';
import { storableJson, storableText } from '../../src/storage/storable.js';

const poison: TaskDefinition = {
  id: 'test-unstorable', name: 'unstorable output', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: {},
  async handler(input: any, ctx) {
    await ctx.step('s', () => ({ step: 'nul\u0000 and lone \ud800' }));
    await ctx.progress('progress with nul\u0000');
    if (input.fail) throw new Error('failed with nul\u0000 and \udc00');
    return { text: 'a\u0000b', lone: 'x\ud800y', [`key\u0000`]: 1, pair: '\ud83d\ude00' };
  },
};

const fixture = useTestServer({}, { definitions: [poison] });

const raw = (method: string, path: string, text: string) => fixture.server.call(method, path, text, { headers: { 'content-type': 'application/json' } });

describe('values the database cannot store', () => {
  it('a request body holding a NUL or an unpaired surrogate is a 400 (values and keys, every route)', async () => {
    for (const [path, text] of [
      ['/api/v1/tasks', String.raw`{"task_definition_id":"noop","input":{"a":"\u0000"}}`],
      ['/api/v1/tasks', String.raw`{"task_definition_id":"noop","input":{"a":"\ud800"}}`],
      ['/api/v1/tasks', String.raw`{"task_definition_id":"noop","input":{"a":"\uDC00x"}}`],
      ['/api/v1/tasks', String.raw`{"task_definition_id":"noop","input":{"k\u0000":1}}`],
      ['/api/v1/tasks', String.raw`{"task_definition_id":"noop","input":{},"metadata":{"m":"\u0000"}}`],
      ['/api/v1/auth/api-keys', String.raw`{"name":"a\u0000b","scopes":["tasks:read"]}`],
      ['/api/v1/task', String.raw`{"type":"noop","args":{"a":"\u0000"}}`],
    ] as const) {
      const res = await raw('POST', path, text);
      expect(res.status, `${path} ${text}`).toBe(400);
      expect(JSON.stringify(res.body)).toMatch(/NUL|unpaired surrogate/);
    }
    // an escaped backslash before u0000 is plain text, and a surrogate pair is a character
    const ok = await raw('POST', '/api/v1/tasks', String.raw`{"task_definition_id":"noop","input":{"a":"\\u0000","e":"\ud83d\ude00"}}`);
    expect(ok.status, ok.text).toBe(200);
    const t = await waitForTask(fixture.server, ok.body.task_id);
    expect(t.input).toEqual({ a: '\\u0000', e: '😀' });
  });

  it('a number the database cannot take in a query is a 400', async () => {
    for (const q of ['limit=1e309', 'limit=-1e309', 'offset=1e309', 'limit=Infinity']) {
      const res = await fixture.server.call('GET', `/api/v1/tasks?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.error.code, q).toBe('VALIDATION_ERROR');
    }
    expect((await fixture.server.call('GET', '/api/v1/sessions?limit=1e309')).status).toBe(400);
  });

  it('an executor output, error, event or step result holding them is stored with U+FFFD; neighbours unharmed', async () => {
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await fixture.server.submit({ task_definition_id: i % 2 ? 'noop' : 'test-unstorable', input: {}, retry_policy: { max_retries: 0 } }));
    const failing = await fixture.server.submit({ task_definition_id: 'test-unstorable', input: { fail: true }, retry_policy: { max_retries: 0 } });
    for (const id of ids) {
      const t = await waitForTask(fixture.server, id);
      expect(t.status, JSON.stringify(t)).toBe('COMPLETED');
      expect(t.attempts).toBe(1);
    }
    const done = await waitForTask(fixture.server, ids[0]!);
    expect(done.output).toEqual({ text: 'a\ufffdb', lone: 'x\ufffdy', 'key\ufffd': 1, pair: '😀' });
    const events = (await fixture.server.call('GET', `/api/v1/tasks/${ids[0]}/events?limit=50`)).body.events as any[];
    expect(events.find((e) => e.type === 'PROGRESS')?.message).toBe('progress with nul\ufffd');
    const failed = await waitForTask(fixture.server, failing);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toContain('failed with nul\ufffd and \ufffd');
  });
});

describe('storableText / storableJson', () => {
  it('replace NUL and unpaired surrogates only', () => {
    expect(storableText('a\u0000b\ud800c\udc00d\ud83d\ude00')).toBe('a\ufffdb\ufffdc\ufffdd\ud83d\ude00');
    expect(storableText('plain')).toBe('plain');
    expect(JSON.parse(storableJson({ 'k\u0000': ['\ud800', 'ok\\u0000', '\ud83d\ude00', '\u0001'] }))).toEqual({ 'k\ufffd': ['\ufffd', 'ok\\u0000', '\ud83d\ude00', '\u0001'] });
    expect(storableJson(undefined)).toBeUndefined();
  });
});
