// The SDK as the dashboard gets it: the compiled dist/sdk modules served beside its files. Their
// import graph is closed over what is served (no bare or node: specifier, nothing unlisted), dist/sdk
// is as current as src/sdk, a missing build fails at registration naming `npm run build`, and the
// served bytes, run in Node against a real server, end a stream whose key is revoked with
// AuthenticationError (what signs the task page out). The SDK itself is tested in test/sdk/*.
import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { useTestServer } from '../helpers/server.js';
import { DASHBOARD_DIR, DASHBOARD_FILES, DASHBOARD_SDK_FILES, SDK_DIR, dashboardRoutes } from '../../src/api/routes/dashboard.js';
import * as srcSdk from '../../src/sdk/index.js';

const fixture = useTestServer();

/** The specifiers a module imports or re-exports (static and dynamic). */
function specifiers(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/^\s*(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  for (const m of code.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  return out;
}

const served = new Set<string>([...DASHBOARD_FILES, ...DASHBOARD_SDK_FILES]);
const sdkFiles = new Set<string>(DASHBOARD_SDK_FILES);

describe('the SDK modules the dashboard is served', () => {
  it('every import of a served module names another served module; the SDK\'s import only each other', () => {
    const seen = new Set<string>();
    const queue: string[] = DASHBOARD_FILES.filter((n) => n.endsWith('.js'));
    while (queue.length) {
      const name = queue.shift()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const fromSdk = sdkFiles.has(name);
      const code = readFileSync(new URL(name, fromSdk ? SDK_DIR : DASHBOARD_DIR), 'utf8');
      for (const spec of specifiers(code)) {
        const target = /^\.\/([a-z-]+\.js)$/.exec(spec)?.[1];
        expect(target, `${name} imports ${spec}: only ./<served>.js resolves under /dashboard/`).toBeDefined();
        expect(served.has(target!), `${name} imports ${spec}, which is not served (DASHBOARD_SDK_FILES in src/api/routes/dashboard.ts)`).toBe(true);
        if (fromSdk) expect(sdkFiles.has(target!), `${name} imports ${spec}, a dashboard file`).toBe(true);
        queue.push(target!);
      }
    }
    // the dashboard reaches the SDK, and all of it that is served is needed
    expect([...DASHBOARD_SDK_FILES].filter((n) => !seen.has(n))).toEqual([]);
    expect(specifiers(readFileSync(new URL('api.js', DASHBOARD_DIR), 'utf8'))).toContain('./index.js');
  });

  it('dist/sdk is as current as src/sdk (else: npm run build)', async () => {
    const dist = await import(new URL('index.js', SDK_DIR).href);
    expect(Object.keys(dist).sort(), 'dist/sdk/index.js is stale: run npm run build').toEqual(Object.keys(srcSdk).sort());
  });

  it('a missing compiled SDK fails registration with a message naming npm run build', async () => {
    const app = Fastify();
    try {
      await expect(dashboardRoutes(app, { sdkDir: new URL('./no-such-build/', import.meta.url) })).rejects.toThrow(/index\.js is missing from .*no-such-build.*npm run build/);
    } finally {
      await app.close();
    }
  });

  it('the served modules, run as served: a stream whose key is revoked ends with AuthenticationError after one request', async () => {
    // the bytes a browser gets, as files (Node cannot import over http), two levels down like dist/sdk
    mkdirSync('.tmp', { recursive: true });
    const dir = mkdtempSync(join('.tmp', 'served-sdk-'));
    try {
      for (const name of DASHBOARD_SDK_FILES) {
        const res = await fixture.server.call('GET', `/dashboard/${name}`, undefined, { key: null });
        expect(res.status, name).toBe(200);
        writeFileSync(join(dir, name), res.text);
        // (not served; beside them only so that the test runner finds the map their last line names)
        copyFileSync(new URL(`${name}.map`, SDK_DIR), join(dir, `${name}.map`));
      }
      const sdk = await import(pathToFileURL(join(process.cwd(), dir, 'index.js')).href);

      const created = await fixture.server.call('POST', '/api/v1/auth/api-keys', { name: 'doomed', scopes: ['tasks:read'] });
      expect(created.status, created.text).toBe(201);
      const id = await fixture.server.submit({ task_definition_id: 'sleep', input: { ms: 8_000, steps: 4 } });
      let requests = 0;
      const counting: typeof fetch = (input, init) => {
        requests++;
        return fetch(input, init);
      };
      const client = new sdk.TaskgateClient({ baseUrl: fixture.server.url, apiKey: created.body.key, fetch: counting });
      const states: string[] = [];
      const err = await (async () => {
        for await (const _ of client.stream(id, {
          onState: (s: string) => {
            states.push(s);
            if (s === 'live') void fixture.server.call('DELETE', `/api/v1/auth/api-keys/${created.body.id}`);
          },
        })) { /* events until the key goes */ }
      })().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(sdk.AuthenticationError);
      expect(err).toMatchObject({ status: 401, code: 'UNAUTHORIZED', message: expect.stringMatching(/revoked/) });
      expect(states).not.toContain('reconnecting');
      expect(requests).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
