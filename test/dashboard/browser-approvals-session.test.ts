// The dashboard in Chromium (see browser.test.ts) for approvals and the session: the approvals
// pager (the API's has_more), the keyboard after a decision, a stale card answered 409; a key
// that may not list definitions submitting by id (with a 1500 ms delay); sign-out resetting the deep link; a reload whose
// key check fails on the server keeping the key behind a Retry. Every wait is for a condition.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ADMIN_KEY, until, waitForTask, type TestServer } from '../helpers/server.js';
import { AVAILABLE, WAIT_MS, go as goTo, signIn, switchKey, useDashboardBrowser } from './browser-fixture.js';

describe.runIf(AVAILABLE)('dashboard in a browser: approvals and the session', () => {
  const b = useDashboardBrowser();
  let server: TestServer;
  let page: Page;
  beforeAll(async () => {
    ({ server, page } = b);
    await signIn(page, server.url);
  });

  const go = (hash: string) => goTo(page, hash);
  const focused = () => page.evaluate("[document.activeElement.tagName, document.activeElement.closest('section.approval')?.dataset.workflowId ?? document.activeElement.textContent]");
  const pending = async () => (await server.call('GET', '/api/v1/approvals?status=pending&limit=100')).body.approvals as { workflow_id: string; approval_id: string }[];
  /** Submits `n` approval tasks and waits for their approvals to be pending; their ids, oldest first. */
  async function approvalTasks(n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(await server.submit({ task_definition_id: 'approval', input: { message: `decide ${i}` } }));
    await until(async () => {
      const open = new Set((await pending()).map((a) => a.workflow_id));
      return ids.every((id) => open.has(id));
    }, 'the approvals to be requested', WAIT_MS);
    return ids;
  }
  const cancelAll = async (ids: string[]) => {
    for (const id of ids) await server.call('POST', `/api/v1/tasks/${id}/cancel`, {});
  };

  it('pages through the pending approvals: the oldest, past the first page, are reachable', async () => {
    const ids = await approvalTasks(12);
    try {
      await go('#/approvals?limit=10');
      await page.locator('#approvals-page-info', { hasText: '1–10, more follow' }).waitFor();
      expect(await page.locator('section.approval').count()).toBe(10);
      expect(await page.locator('#approvals-prev').isDisabled()).toBe(true);
      await page.locator('#approvals-next').click();
      await page.locator('#approvals-page-info', { hasText: '11–12' }).waitFor();
      expect(new URL(page.url()).hash).toBe('#/approvals?limit=10&offset=10');
      expect(await page.locator('#approvals-next').isDisabled()).toBe(true);
      // newest first: the two submitted first are on the last page
      const shown = await page.locator('section.approval').evaluateAll((els) => els.map((e) => e.getAttribute('data-workflow-id')));
      expect(shown.sort()).toEqual(ids.slice(0, 2).sort());
      await page.locator('#approvals-prev').click();
      await page.locator('#approvals-page-info', { hasText: '1–10, more follow' }).waitFor();
    } finally {
      await cancelAll(ids);
    }
  });

  it('after a decision the keyboard goes to the card now in its place, then to the heading', async () => {
    const [first, second] = await approvalTasks(2);
    await go('#/approvals');
    await page.locator(`section.approval[data-workflow-id="${first}"]`).waitFor();
    await page.locator(`section.approval[data-workflow-id="${second}"]`).waitFor();
    // newest first: the second submitted is the first card
    await page.locator(`section.approval[data-workflow-id="${second}"] button.approve`).focus();
    await page.keyboard.press('Enter');
    await page.locator(`section.approval[data-workflow-id="${second}"]`).waitFor({ state: 'detached' });
    await expect.poll(focused).toEqual(['A', first]);
    await page.locator(`section.approval[data-workflow-id="${first}"] button.deny`).focus();
    await page.keyboard.press('Enter');
    await page.locator('#approvals-body .empty').waitFor();
    await expect.poll(focused).toEqual(['H1', 'Approvals']);
    expect((await waitForTask(server, second, undefined, { timeoutMs: WAIT_MS })).status).toBe('COMPLETED');
    expect((await waitForTask(server, first, undefined, { timeoutMs: WAIT_MS })).status).toBe('FAILED');
  });

  it('a card decided elsewhere answers 409 on Approve: the list is read again and says why', async () => {
    const [id] = await approvalTasks(1);
    await go('#/approvals');
    // the page was open already (the hash unchanged): read it again
    await page.locator('#approvals-refresh').click();
    const card = page.locator(`section.approval[data-workflow-id="${id}"]`);
    await card.waitFor();
    const approval = (await pending()).find((a) => a.workflow_id === id)!;
    expect((await server.call('POST', '/api/v1/approvals/decision', { workflow_id: id, approval_id: approval.approval_id, approved: false })).status).toBe(200);
    await card.locator('button.approve').click();
    await page.locator('#approvals-message .notice-error', { hasText: 'already decided' }).waitFor();
    await card.waitFor({ state: 'detached' });
    await page.locator('#approvals-body .empty').waitFor();
  });

  it("a key without tasks:definitions:list (the README's ci key) submits by id; signing out resets the page", async () => {
    const created = await server.call('POST', '/api/v1/auth/api-keys', { name: 'ci', scopes: ['tasks:execute', 'tasks:read', 'tasks:list'] });
    expect(created.status).toBe(201);
    await switchKey(page, created.body.key, 'tasks:execute');
    await go('#/submit?definition=noop');
    await page.locator('#definition-note', { hasText: 'Missing required scope: tasks:definitions:list' }).waitFor();
    expect(await page.locator('#submit-definition-id').inputValue()).toBe('noop');
    expect(await page.locator('label[for=submit-definition-id]').innerText()).toBe('Definition id');
    // any whole number of ms is a valid delay (step 1000 refused 1500, and the browser with it the form)
    await page.locator('#submit-delay').fill('1500');
    expect(await page.locator('#submit-delay').evaluate((el) => (el as unknown as { validity: { valid: boolean } }).validity.valid)).toBe(true);
    const posted = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/tasks');
    await page.locator('#submit-button').click();
    expect(JSON.parse((await posted).postData()!)).toMatchObject({ task_definition_id: 'noop', delay_ms: 1500 });
    await expect.poll(() => new URL(page.url()).hash, { timeout: WAIT_MS }).toMatch(/^#\/tasks\/task_/);
    const id = decodeURIComponent(new URL(page.url()).hash.slice('#/tasks/'.length));
    expect((await server.call('GET', `/api/v1/tasks/${id}`)).body.task_definition_id).toBe('noop');

    // the next key signing in in this tab starts on the task list, not on this key's task
    await page.locator('#signout').click();
    await page.locator('#api-key').waitFor();
    expect(new URL(page.url()).hash).toBe('#/tasks');
    await page.locator('#api-key').fill(ADMIN_KEY);
    await page.locator('#signin-form button[type=submit]').click();
    await page.locator('#tasks-body').waitFor();
    expect(new URL(page.url()).hash).toBe('#/tasks');
  });

  it('a reload whose key check fails on the server keeps the key and offers a Retry', async () => {
    await go('#/definitions');
    await page.locator('#definitions-table').waitFor();
    let fail = true;
    await page.route('**/api/v1/auth/me', (route) => (fail
      ? route.fulfill({ status: 500, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: { code: 'INTERNAL', message: 'Internal server error' }, request_id: 'req_test' }) })
      : route.continue()));
    try {
      await page.reload();
      await page.locator('#unreachable .notice-error', { hasText: 'Internal server error' }).waitFor();
      expect(await page.locator('#api-key').count()).toBe(0);
      expect(await page.evaluate("sessionStorage.getItem('taskgate.apiKey')")).toBe(ADMIN_KEY);
      fail = false;
      await page.locator('#retry-me').click();
      await page.locator('#definitions-table').waitFor();
      await page.locator('#who .who-tenant', { hasText: 'default' }).waitFor();
    } finally {
      await page.unroute('**/api/v1/auth/me');
    }
  });

  it('no script error or CSP refusal on the way', () => {
    expect(b.problems).toEqual([]);
  });
});
