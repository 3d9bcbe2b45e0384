// Input hygiene over HTTP against a real server: request bodies labelled with a Content-Encoding,
// Expect headers Node refuses, invisible characters in session titles, timestamps at the edges
// of what RFC 3339 can write (read back alike on PGlite and PostgreSQL).
import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { connect, type Socket } from 'node:net';
import { ADMIN_KEY, useTestServer } from '../helpers/server.js';
import { parseTimestamptz } from '../../src/storage/pglite.js';

const fx = useTestServer({ TASKGATE_ROLE: 'api' });
const noop = { task_definition_id: 'noop', input: {} };

describe('Content-Encoding on a request body', () => {
  it('refuses a body labelled with any coding but identity: 415 in the envelope', async () => {
    const plain = JSON.stringify(noop);
    for (const [coding, body] of [['gzip', plain], ['gzip', gzipSync(plain)], ['br', plain], ['identity, gzip', plain], ['GZIP', plain]] as const) {
      const res = await fetch(fx.server.url + '/api/v1/tasks', {
        method: 'POST', headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json', 'content-encoding': coding }, body,
      });
      const json = (await res.json()) as any;
      expect(res.status, coding).toBe(415);
      expect(json, coding).toEqual({
        error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: expect.stringMatching(/^Compressed request bodies are not accepted/) },
        request_id: res.headers.get('x-request-id'),
      });
    }
  });

  it('accepts identity, and no Content-Encoding at all', async () => {
    for (const headers of [{ 'content-encoding': 'identity' }, { 'content-encoding': 'Identity' }, {}] as Record<string, string>[]) {
      const res = await fx.server.call('POST', '/api/v1/tasks', noop, { headers });
      expect(res.status, JSON.stringify(headers)).toBe(200);
    }
  });
});

/** A raw connection: `send` writes bytes, `until(re)` resolves with everything read once it matches. */
function rawConnection(port: number): Promise<{ socket: Socket; send(bytes: string): void; until(re: RegExp): Promise<string>; closed: Promise<string> }> {
  return new Promise((resolve, reject) => {
    let got = '';
    const waiters: { re: RegExp; done: (s: string) => void }[] = [];
    const socket = connect(port, '127.0.0.1');
    const closed = new Promise<string>((r) => socket.on('close', () => r(got)));
    socket.on('data', (d) => {
      got += d.toString();
      for (const w of waiters.splice(0)) (w.re.test(got) ? w.done(got) : waiters.push(w));
    });
    socket.on('error', reject);
    socket.on('connect', () => resolve({
      socket, closed,
      send: (bytes) => socket.write(bytes),
      until: (re) => new Promise((done) => (re.test(got) ? done(got) : waiters.push({ re, done }))),
    }));
  });
}

describe('Expect', () => {
  const port = () => (fx.server.app.server.address() as { port: number }).port;
  const head = (expect: string, body: string) =>
    `POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nX-API-Key: ${ADMIN_KEY}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-ID: req-expect-1\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nExpect: ${expect}\r\n\r\n`;

  it('answers an expectation other than 100-continue with 417 in the envelope and closes', async () => {
    const c = await rawConnection(port());
    c.send(head('999-nope', JSON.stringify(noop)));
    const got = await c.closed;
    expect(got).toMatch(/^HTTP\/1\.1 417 /);
    expect(got.toLowerCase()).toContain('x-request-id: req-expect-1');
    // the caller's trace, as on every other answer (it was missing here)
    expect(got.toLowerCase()).toContain('x-trace-id: 0af7651916cd43dd8448eb211c80319c');
    expect(got.toLowerCase()).toContain('content-type: application/json');
    expect(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'EXPECTATION_FAILED', message: 'Only the expectation 100-continue is supported' }, request_id: 'req-expect-1',
    });
  });

  it('keeps 100-continue working: 100, then the body, then the 200', async () => {
    const body = JSON.stringify(noop);
    const c = await rawConnection(port());
    c.send(head('100-continue', body));
    expect(await c.until(/\r\n\r\n/)).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    c.send(body);
    const got = await c.until(/"task_id"/);
    expect(got).toMatch(/HTTP\/1\.1 200 OK/);
    c.socket.destroy();
  });
});

describe('session titles', () => {
  it('lose bidirectional controls as well as control characters, zero-width space and BOM', async () => {
    const sid = 'sess-hygiene-title';
    expect((await fx.server.call('POST', '/api/v1/tasks', { ...noop, session_id: sid })).status).toBe(200);
    const bidi = ['\u202A', '\u202B', '\u202C', '\u202D', '\u202E', '\u2066', '\u2067', '\u2068', '\u2069', '\u200E', '\u200F', '\u061C'];
    const res = await fx.server.call('PATCH', `/api/v1/sessions/${sid}`, { title: ` \uFEFF${bidi.join('')}Trip\u200B plan\u0007 \u202Egnp.exe\u202C\t` });
    expect(res.status).toBe(200);
    expect(res.body.title).toBe('Trip plan gnp.exe');
    expect((await fx.server.call('GET', `/api/v1/sessions/${sid}`)).body.title).toBe('Trip plan gnp.exe');
    // a title of nothing but them is empty: 400
    expect((await fx.server.call('PATCH', `/api/v1/sessions/${sid}`, { title: bidi.join('') })).status).toBe(400);
    // the zero-width joiner (emoji sequences) stays
    expect((await fx.server.call('PATCH', `/api/v1/sessions/${sid}`, { title: 'family \u{1F468}\u200D\u{1F469}' })).body.title).toBe('family \u{1F468}\u200D\u{1F469}');
  });
});

describe('timestamps at the edges of RFC 3339', () => {
  const runAt = async (run_at: string) => {
    const res = await fx.server.call('POST', '/api/v1/tasks', { ...noop, run_at });
    if (res.status !== 200) return res;
    return fx.server.call('GET', `/api/v1/tasks/${res.body.task_id}`);
  };

  it('stores and reads back run_at in years 0000–0099 and the last millisecond of 9999 alike on both backends', async () => {
    for (const [sent, back] of [
      ['0049-01-01T00:00:00Z', '0049-01-01T00:00:00.000Z'],
      ['0001-03-01T10:20:30.456Z', '0001-03-01T10:20:30.456Z'],
      ['0099-12-31T23:59:59Z', '0099-12-31T23:59:59.000Z'],
      ['0000-01-01T00:00:00Z', '0000-01-01T00:00:00.000Z'], // 1 BC to PostgreSQL
      ['0001-01-01T00:00:00+01:00', '0000-12-31T23:00:00.000Z'],
      ['1000-06-15T12:00:00.5Z', '1000-06-15T12:00:00.500Z'],
      ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
    ]) {
      const res = await runAt(sent!);
      expect([sent, res.status, res.body?.run_at]).toEqual([sent, 200, back]);
    }
  });

  it('refuses instants RFC 3339 cannot write in UTC (an offset past year 9999 or before 0000): 400 naming the field', async () => {
    for (const sent of ['9999-12-31T23:59:59-23:59', '0000-01-01T00:00:00+00:01']) {
      const res = await runAt(sent);
      expect([sent, res.status, res.body.error.code, res.body.error.details]).toEqual([sent, 400, 'VALIDATION_ERROR', { path: 'run_at', reason: 'out of range' }]);
    }
    const key = await fx.server.call('POST', '/api/v1/auth/api-keys', { name: 'far', scopes: ['tasks:read'], expires_at: '9999-12-31T23:59:59-23:59' });
    expect([key.status, key.body.error.details]).toEqual([400, { path: 'expires_at', reason: 'out of range' }]);
    expect((await fx.server.call('POST', '/api/v1/auth/api-keys', { name: 'late', scopes: ['tasks:read'], expires_at: '9999-12-31T23:59:59Z' })).status).toBe(201);
  });

  it("PGlite's reader takes PostgreSQL's text as pg does: BC, 5-digit years, offsets with seconds, infinity", () => {
    expect(parseTimestamptz('0001-12-31 23:00:00+00 BC')).toEqual(new Date('0000-12-31T23:00:00.000Z'));
    expect(parseTimestamptz('0049-01-01 00:00:00.123456+00')).toEqual(new Date('0049-01-01T00:00:00.123Z'));
    expect(parseTimestamptz('10000-01-01 23:58:59+00')).toEqual(new Date('+010000-01-01T23:58:59.000Z'));
    expect(parseTimestamptz('1890-01-01 12:00:00+00:53:28')).toEqual(new Date('1890-01-01T11:06:32.000Z'));
    expect(parseTimestamptz('2026-01-01 00:00:00.5-03')).toEqual(new Date('2026-01-01T03:00:00.500Z'));
    expect(parseTimestamptz('2026-05-01 12:34:56.789+00')).toEqual(new Date('2026-05-01T12:34:56.789Z'));
    expect([parseTimestamptz('infinity'), parseTimestamptz('-infinity')]).toEqual([Infinity, -Infinity]);
  });
});

/** POST raw bytes with a Content-Type; answers status and parsed body. */
async function postBytes(path: string, bytes: Buffer, contentType = 'application/json'): Promise<{ status: number; body: any }> {
  const res = await fetch(fx.server.url + path, { method: 'POST', headers: { 'x-api-key': ADMIN_KEY, 'content-type': contentType }, body: bytes });
  return { status: res.status, body: await res.json() };
}
const latin1 = (text: string) => Buffer.from(text, 'latin1');

describe('request body encoding', () => {
  const submit = (s: string) => `{"task_definition_id":"noop","delay_ms":3600000,"input":{"s":"${s}"}}`;

  it('refuses bytes that are not UTF-8 (400 naming the body) instead of storing U+FFFD', async () => {
    const bad = [
      latin1(submit('caf\xe9')), // Latin-1 é
      Buffer.concat([Buffer.from(submit('x').slice(0, -4)), Buffer.from([0xc0, 0xaf]), Buffer.from('"}}')]), // overlong '/'
      Buffer.concat([Buffer.from(submit('x').slice(0, -4)), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}}')]), // an encoded surrogate
      Buffer.concat([Buffer.from(submit('x').slice(0, -4)), Buffer.from([0xe2, 0x82]), Buffer.from('"}}')]), // truncated sequence
    ];
    for (const bytes of bad) {
      const res = await postBytes('/api/v1/tasks', bytes);
      expect([res.status, res.body.error?.code, res.body.error?.details], bytes.toString('hex')).toEqual([400, 'VALIDATION_ERROR', { location: 'body', reason: 'invalid UTF-8' }]);
    }
  });

  it('refuses a declared charset other than UTF-8 (415), takes utf-8 and utf8 in any case', async () => {
    for (const ct of ['application/json; charset=iso-8859-1', 'application/json;charset="windows-1252"', 'application/json; charset=utf-16']) {
      const res = await postBytes('/api/v1/tasks', Buffer.from(submit('plain')), ct);
      expect([res.status, res.body.error?.code], ct).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    }
    for (const ct of ['application/json; charset=utf-8', 'application/json; charset=UTF-8', 'application/json;charset="utf8"', 'application/json']) {
      const res = await postBytes('/api/v1/tasks', Buffer.from(submit('caf\u00e9 \u{1F600}')), ct);
      expect(res.status, ct).toBe(200);
      const back = await fx.server.call('GET', `/api/v1/tasks/${res.body.task_id}`);
      expect(back.body.input.s).toBe('caf\u00e9 \u{1F600}');
    }
  });

  it('keeps refusing a body that starts with a BOM, as JSON.parse does', async () => {
    const res = await postBytes('/api/v1/tasks', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(submit('x'))]));
    expect([res.status, res.body.error.code, res.body.error.message]).toEqual([400, 'VALIDATION_ERROR', expect.stringMatching(/^Invalid JSON body/)]);
  });

  it("answers the compatibility routes in their own shapes: seed 004's and OpenAI's", async () => {
    const compat = await postBytes('/api/v1/task', latin1('{"type":"noop","args":{"s":"caf\xe9"}}'));
    expect(compat).toEqual({ status: 400, body: { status: 'error', message: 'The request body is not valid UTF-8', timestamp: expect.any(String) } });
    const compatCharset = await postBytes('/api/v1/task', Buffer.from('{"type":"noop","args":{}}'), 'application/json; charset=latin1');
    expect([compatCharset.status, compatCharset.body.status]).toEqual([415, 'error']);
    const chat = await postBytes('/v1/chat/completions', latin1('{"model":"taskgate","messages":[{"role":"user","content":"caf\xe9"}]}'));
    expect(chat).toEqual({ status: 400, body: { error: { message: 'The request body is not valid UTF-8', type: 'invalid_request_error', param: null, code: 'validation_error' } } });
    const chatCharset = await postBytes('/v1/chat/completions', Buffer.from('{"model":"taskgate","messages":[]}'), 'application/json; charset=latin1');
    expect([chatCharset.status, chatCharset.body.error?.code]).toEqual([415, 'unsupported_media_type']);
  });
});

describe('query values PostgreSQL cannot store', () => {
  it('refuses a NUL in a query value or name with a 400 naming the parameter, before any statement', async () => {
    for (const url of ['/api/v1/tasks?tag=%00', '/api/v1/tasks?tag=a%00b', '/api/v1/definitions?search=x%00', '/api/v1/sessions?x%00=1']) {
      const res = await fx.server.call('GET', url);
      expect([res.status, res.body.error?.code, res.body.error?.details?.location, res.body.error?.details?.reason], url)
        .toEqual([400, 'VALIDATION_ERROR', 'querystring', 'unstorable character']);
    }
    expect((await fx.server.call('GET', '/api/v1/tasks?tag=%00')).body.error.details.path).toBe('tag');
    // percent-encoding that is storable is untouched
    expect((await fx.server.call('GET', '/api/v1/tasks?tag=caf%C3%A9')).status).toBe(200);
  });
});

describe('__proto__ keys', () => {
  it('refuses a key named __proto__ anywhere, spelled out or escaped (400), instead of dropping it; takes the word as a value', async () => {
    for (const body of [
      '{"task_definition_id":"noop","input":{"__proto__":{"admin":true}}}',
      '{"task_definition_id":"noop","__proto__":{"x":1},"input":{}}',
      '{"task_definition_id":"noop","input":{"a":[{"\\u005f_proto__":1}]}}',
    ]) {
      const res = await postBytes('/api/v1/tasks', Buffer.from(body));
      expect([res.status, res.body.error?.message, res.body.error?.details], body).toEqual([400, 'JSON keys named __proto__ are not accepted', { location: 'body', reason: 'forbidden key' }]);
    }
    const word = await postBytes('/api/v1/tasks', Buffer.from('{"task_definition_id":"noop","delay_ms":3600000,"input":{"k":"__proto__"}}'));
    expect(word.status).toBe(200);
    expect((await fx.server.call('GET', `/api/v1/tasks/${word.body.task_id}`)).body.input).toEqual({ k: '__proto__' });
  });
});

describe('numbers a double cannot hold', () => {
  const withN = (n: string) => Buffer.from(`{"task_definition_id":"noop","delay_ms":3600000,"input":{"n":${n}}}`);

  it('refuses a non-zero number that underflows to 0 and an integer past 2^53 - 1 no double equals, naming the literal', async () => {
    for (const n of ['1e-400', '-1e-400', `0.${'0'.repeat(330)}1`, '9007199254740993', '-9007199254740993', '12345678901234567890']) {
      const res = await postBytes('/api/v1/tasks', withN(n));
      expect([res.status, res.body.error?.code, res.body.error?.details?.location], n).toEqual([400, 'VALIDATION_ERROR', 'body']);
      expect(res.body.error.message, n).toContain(n.slice(0, 20));
    }
  });

  it('takes floats that merely round, safe integers, integers a double holds exactly, and exact zeros, stored as JSON.parse reads them', async () => {
    for (const n of [
      '0.1', '3.14159265358979323846', '9007199254740991', '-9007199254740991', '9007199254740992', '10000000000000000', '1152921504606846976',
      '1e20', '12345678901234567890.0', '0e-400', '2.5e-300', '1e308',
    ]) {
      const res = await postBytes('/api/v1/tasks', withN(n));
      expect(res.status, n).toBe(200);
      const back = await fx.server.call('GET', `/api/v1/tasks/${res.body.task_id}`);
      expect(back.body.input.n, n).toBe(JSON.parse(n));
    }
  });

  it('refuses a number that overflows however its digits are split between mantissa and exponent', async () => {
    for (const n of ['1e309', `${'9'.repeat(250)}e99`, `0.${'9'.repeat(30)}e309`]) {
      const res = await postBytes('/api/v1/tasks', withN(n));
      expect([res.status, res.body.error?.message], n).toEqual([400, 'JSON numbers must be finite doubles (at most about 1.8e308)']);
    }
  });

  it('answers a body that is not JSON as such first', async () => {
    const res = await postBytes('/api/v1/tasks', Buffer.from('{"input":{"n":12345678901234567890,'));
    expect([res.status, res.body.error.message]).toEqual([400, expect.stringMatching(/^Invalid JSON body/)]);
  });
});

describe('ids made of dots', () => {
  // every URL parser folds `.` and `..` away as path segments (`%2E%2E` too): so named, a session,
  // definition or tenant could be created but never read, changed or deleted
  it('refuses `.` and `..` as ids (400 naming the field), and takes ids that merely hold dots', async () => {
    for (const bad of ['.', '..']) {
      const submit = await fx.server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, session_id: bad });
      expect(submit.status, submit.text).toBe(400);
      expect(submit.body.error.message).toContain('session_id');
      const tenant = await fx.server.call('POST', '/api/v1/admin/tenants', { tenant_id: bad, name: 'dots' });
      expect(tenant.status, tenant.text).toBe(400);
      const def = await fx.server.call('PUT', `/api/v1/definitions/${bad}`, { kind: 'approval' });
      expect(def.status, def.text).toBeGreaterThanOrEqual(400);
      expect(def.status).toBeLessThan(500);
      expect(def.status).not.toBe(201);
    }
    const fine = await fx.server.call('POST', '/api/v1/tasks', { task_definition_id: 'noop', input: {}, session_id: '...a.b.' });
    expect(fine.status, fine.text).toBe(200);
    const triple = await fx.server.call('PUT', '/api/v1/definitions/...', { kind: 'approval' });
    expect(triple.status, triple.text).toBe(201);
    expect((await fx.server.call('GET', '/api/v1/definitions/...')).status).toBe(200);
    expect((await fx.server.call('DELETE', '/api/v1/definitions/...')).status).toBe(204);
  });
});
