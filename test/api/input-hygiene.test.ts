// Input hygiene over HTTP against a real server: request bodies labelled with a Content-Encoding,
// Expect headers Node refuses, invisible characters in session titles, timestamps at the edges
// of what RFC 3339 can write (read back alike on PGlite and PostgreSQL).
import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { ADMIN_KEY, useTestServer } from '../helpers/server.js';

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
