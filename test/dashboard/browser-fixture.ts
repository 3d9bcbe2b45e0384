// The browser tests' shared setup: a real in-process server (with a fake OpenAI) and Debian's
// Chromium driven by playwright-core (no downloaded browser), a persistent profile so the HTTP
// cache behaves as a user's; script errors and CSP refusals, and every request, are recorded.
import { afterAll, beforeAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, type TestServer } from '../helpers/server.js';
import { startFakeOpenAi, type FakeOpenAi } from '../helpers/fake-llm/index.js';

export const CHROMIUM = '/usr/bin/chromium';
export const REQUIRED = process.env.TASKGATE_BROWSER_TESTS === 'required';
export const AVAILABLE = existsSync(CHROMIUM);
/** One condition's patience on a loaded 2-core machine (ms); a healthy run needs a fraction. */
export const WAIT_MS = 15_000;

export interface DashboardBrowser {
  tdb: TestDb;
  oai: FakeOpenAi;
  server: TestServer;
  page: Page;
  /** Script errors and CSP refusals seen by the page: none allowed. */
  problems: string[];
  /** Every URL the page asked for, and whether its API calls carried a key header. */
  requests: { url: string; keyHeader: boolean }[];
}

/** Starts the server and the browser before the file's tests (its fields are set once they run) and stops them after. */
export function useDashboardBrowser(): DashboardBrowser {
  const b = { problems: [], requests: [] } as unknown as DashboardBrowser;
  let profile: string | undefined;
  let context: BrowserContext | undefined;
  beforeAll(async () => {
    b.tdb = await openTestDb();
    b.oai = await startFakeOpenAi();
    b.server = await startTestServer(b.tdb.db, { OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: b.oai.baseUrl });
    profile = mkdtempSync(join(tmpdir(), 'taskgate-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context.setDefaultTimeout(WAIT_MS);
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => b.problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) b.problems.push(`console: ${msg.text()}`);
    });
    page.on('request', (req) => b.requests.push({ url: req.url(), keyHeader: 'x-api-key' in req.headers() }));
    b.page = page;
  });
  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await b.server?.close();
    await b.oai?.stop();
    await b.tdb?.close();
  });
  return b;
}

// code run in the page is passed as strings: the project type-checks without the DOM library
export const go = (page: Page, hash: string) => page.evaluate(`location.hash = ${JSON.stringify(hash)}`);

/** Signs in through the form with `key` (the admin key by default) and waits for the task list. */
export async function signIn(page: Page, url: string, key = ADMIN_KEY): Promise<void> {
  await page.goto(url + '/');
  await page.locator('#api-key').fill(key);
  await page.locator('#signin-form button[type=submit]').click();
  await page.locator('#tasks-body').waitFor();
}

/** Signs out and in again with `key`, and waits until the page shows one of its scopes. */
export async function switchKey(page: Page, key: string, scopeShown: string): Promise<void> {
  await page.locator('#signout').click();
  await page.locator('#api-key').fill(key);
  await page.locator('#signin-form button[type=submit]').click();
  await page.locator('#who .who-scopes', { hasText: scopeShown }).waitFor();
}
