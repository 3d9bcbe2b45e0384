// The dashboard's files over HTTP from a real server: redirects, content types, its own strict
// CSP, ETag/304, the allow-lists (its own files and the SDK's compiled modules; unknown files and
// traversal are 404 in the error envelope), no auth, nothing secret in the files, and none of it in
// the OpenAPI document. (test/dashboard/sdk.test.ts: the SDK modules' import graph and freshness.)
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { ADMIN_KEY, useTestServer } from '../helpers/server.js';
import { DASHBOARD_CSP, DASHBOARD_DIR, DASHBOARD_FILES, DASHBOARD_SDK_FILES, SDK_DIR } from '../../src/api/routes/dashboard.js';

/** Every served name under /dashboard/ with the file it comes from. */
const SERVED: [string, URL][] = [
  ...DASHBOARD_FILES.map((n): [string, URL] => [n, new URL(n, DASHBOARD_DIR)]),
  ...DASHBOARD_SDK_FILES.map((n): [string, URL] => [n, new URL(n, SDK_DIR)]),
];

// rate limits on (the helpers turn them off): public files must not count against anything
const fixture = useTestServer({ TASKGATE_RATE_LIMIT_PER_MIN: '60' });

const get = (path: string, headers: Record<string, string> = {}) => fixture.server.call('GET', path, undefined, { key: null, headers });

/** A request with the path sent exactly as written (fetch would normalize `..`). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(fixture.server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard routes', () => {
  it('/ and /dashboard redirect to /dashboard/', async () => {
    for (const path of ['/', '/dashboard']) {
      const res = await get(path);
      expect(res.status, path).toBe(302);
      expect(res.headers.get('location'), path).toBe('/dashboard/');
      // the dashboard's policy, like every answer of its routes but a JSON error
      expect(res.headers.get('content-security-policy'), path).toBe(DASHBOARD_CSP);
    }
  });

  it('/dashboard/ is the page, as UTF-8 HTML under the strict CSP, with no auth', async () => {
    const res = await get('/dashboard/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.text).toContain('<script type="module" src="app.js"></script>');
    expect(res.text).toContain('<link rel="stylesheet" href="app.css">');
    // public routes carry no rate-limit budget
    expect(res.headers.get('x-ratelimit-limit')).toBeNull();
    // the page's CSP allows no inline script or style: none may be in it
    expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(res.text).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
  });

  it('the CSP is strict: nothing inline, nothing from elsewhere, no framing', () => {
    expect(DASHBOARD_CSP).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    expect(DASHBOARD_CSP).not.toContain('unsafe');
  });

  it('scripts and the stylesheet have their content types; every listed file is served, the SDK\'s from dist/sdk', async () => {
    for (const [name, file] of SERVED) {
      const res = await get(`/dashboard/${name}`);
      expect(res.status, name).toBe(200);
      const type = name.endsWith('.js') ? 'text/javascript; charset=utf-8' : name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/html; charset=utf-8';
      expect(res.headers.get('content-type'), name).toBe(type);
      expect(res.headers.get('x-content-type-options'), name).toBe('nosniff');
      expect(res.headers.get('content-security-policy'), name).toBe(DASHBOARD_CSP);
      expect(res.headers.get('cache-control'), name).toBe('no-cache');
      expect(res.text, name).toBe(readFileSync(file, 'utf8'));
    }
  });

  it('the allow-list is exactly the files in dashboard/; the SDK\'s modules are compiled ones, none named like a dashboard file', () => {
    expect([...DASHBOARD_FILES].sort()).toEqual(readdirSync(DASHBOARD_DIR).sort());
    expect(DASHBOARD_SDK_FILES.filter((n) => (DASHBOARD_FILES as readonly string[]).includes(n))).toEqual([]);
    for (const name of DASHBOARD_SDK_FILES) expect(readdirSync(new URL('../../src/sdk/', import.meta.url)), name).toContain(name.replace(/\.js$/, '.ts'));
  });

  it('an ETag with Cache-Control: no-cache; If-None-Match answers 304 without a body', async () => {
    const first = await get('/dashboard/app.js');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(first.headers.get('cache-control')).toBe('no-cache');
    const again = await get('/dashboard/app.js', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    expect(again.headers.get('etag')).toBe(etag);
    // Chromium merges a 304's headers into its cached copy: under any other policy the page's
    // next load would refuse its own scripts and stylesheet
    expect(again.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    const page = await get('/dashboard/');
    const pageAgain = await get('/dashboard/', { 'if-none-match': page.headers.get('etag')! });
    expect(pageAgain.status).toBe(304);
    expect(pageAgain.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect((await get('/dashboard/app.js', { 'if-none-match': `"other", W/${etag}` })).status).toBe(304);
    expect((await get('/dashboard/app.js', { 'if-none-match': '"other"' })).status).toBe(200);
    // each file has its own validator
    expect((await get('/dashboard/', { 'if-none-match': etag })).status).toBe(200);
    expect((await get('/dashboard/app.css')).headers.get('etag')).not.toBe(etag);
    // the SDK's modules revalidate the same way
    const sdk = await get('/dashboard/client.js');
    expect((await get('/dashboard/client.js', { 'if-none-match': sdk.headers.get('etag')! })).status).toBe(304);
  });

  it('an unknown file is a 404 in the error envelope; no path escapes the folder', async () => {
    const res = await get('/dashboard/nope.js');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ error: { code: 'NOT_FOUND' }, request_id: expect.any(String) });
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const paths = [
      '/dashboard/..%2Fpackage.json', '/dashboard/%2E%2E%2Fsrc%2Fmain.ts', '/dashboard/../package.json', '/dashboard/.%2F..%2F.taskgate%2Fadmin.key', '/dashboard/app.js%00',
      // dist/sdk serves its five modules only: no source maps, declarations or other compiled files
      '/dashboard/client.js.map', '/dashboard/index.d.ts', '/dashboard/sdk/index.js', '/dashboard/..%2Fmain.js', '/dashboard/..%2F..%2Fdist%2Fmain.js',
    ];
    for (const path of paths) {
      const r = await rawGet(path);
      expect(r.status, path).toBe(404);
      expect(r.body, path).not.toContain('"name": "taskgate"');
      expect(JSON.parse(r.body).error.code, path).toBe('NOT_FOUND');
    }
  });

  it('a wrong method is 405; the routes ignore credentials, good or bad', async () => {
    expect((await fixture.server.call('POST', '/dashboard/app.js', {}, { key: null })).status).toBe(405);
    expect((await fixture.server.call('GET', '/dashboard/', undefined, { key: 'sk_bogus_' + 'x'.repeat(43) })).status).toBe(200);
    expect((await fixture.server.call('GET', '/dashboard/', undefined, { key: ADMIN_KEY })).status).toBe(200);
  });

  it('no file holds key material; the key is kept in sessionStorage only, sent as X-API-Key', () => {
    const all = SERVED.map(([, file]) => readFileSync(file, 'utf8')).join('\n');
    expect(all).not.toContain(ADMIN_KEY);
    expect(all).not.toMatch(/(?<![A-Za-z0-9_])sk_[A-Za-z0-9_]{8,}/);
    // (comments may name what the code avoids: the patterns are uses)
    expect(all).not.toMatch(/localStorage\.|document\.cookie|\.innerHTML|\.outerHTML|insertAdjacentHTML\(|document\.write|eval\(|new Function|new EventSource\(/);
    expect(all).not.toMatch(/[?&](api_key|token)=/);
    expect(all).toContain('sessionStorage');
    // the dashboard hands the key to the SDK's client, which sends it in a header (a JWT as Bearer)
    expect(readFileSync(new URL('api.js', DASHBOARD_DIR), 'utf8')).toMatch(/new (Session|Taskgate)Client\(/);
    expect(readFileSync(new URL('transport.js', SDK_DIR), 'utf8')).toContain("'x-api-key'"); // credentialHeaders
  });

  it('the OpenAPI document lists none of them', async () => {
    const doc = (await get('/openapi.json')).body;
    const paths = Object.keys(doc.paths);
    expect(paths.length).toBeGreaterThan(20);
    expect(paths.filter((p) => p === '/' || p.startsWith('/dashboard'))).toEqual([]);
  });

  it('/docs keeps its own policy', async () => {
    const csp = (await get('/docs/')).headers.get('content-security-policy');
    expect(csp).not.toBe(DASHBOARD_CSP);
    expect(csp).toContain("script-src 'self'");
  });
});
