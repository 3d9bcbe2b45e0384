// The dashboard in Chromium (see browser.test.ts) for what is not a flow: a keyboard sign-in, the
// skip link and each page's title; the task list's focus kept through its auto-refresh and its
// pager (the API's lower-bound count, a page past the end); no page wider than a 375 px screen, nor
// than the window with long unbroken text; a 4.5:1 text contrast in both colour schemes; "Runs at"
// and the definitions pager. Every wait is for a condition.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { TestDb } from '../helpers/db.js';
import { ADMIN_KEY, until, waitForTask, type TestServer } from '../helpers/server.js';
import { tasksInsertMany } from '../../src/storage/queries/tasks.js';
import { newTaskId } from '../../src/domain/ids.js';
import { AVAILABLE, WAIT_MS, go as goTo, signIn, useDashboardBrowser } from './browser-fixture.js';

describe.runIf(AVAILABLE)('dashboard in a browser: layout, keyboard, paging', () => {
  const b = useDashboardBrowser();
  let server: TestServer;
  let tdb: TestDb;
  let page: Page;
  beforeAll(async () => {
    ({ server, tdb, page } = b);
    await signIn(page, server.url);
  });

  const go = (hash: string) => goTo(page, hash);
  const text = (selector: string) => page.locator(selector).innerText();

  it('by keyboard: sign-in with Enter lands on the heading, a skip link leads past the header; each page has its title', async () => {
    const focused = () => page.evaluate('[document.activeElement.tagName, document.activeElement.textContent]');
    await page.locator('#signout').click();
    await page.locator('#api-key').waitFor();
    expect(await page.title()).toBe('Sign in · Taskgate');
    await page.keyboard.type(ADMIN_KEY);
    await page.keyboard.press('Enter');
    await page.locator('#tasks-body').waitFor();
    expect(await focused()).toEqual(['H1', 'Tasks']);
    expect(await page.title()).toBe('Tasks · Taskgate');

    // on a fresh load the first Tab reaches the skip link; Enter moves to the heading, the route stays
    await page.reload();
    await page.locator('#tasks-body').waitFor();
    await page.keyboard.press('Tab');
    expect(await focused()).toEqual(['A', 'Skip to content']);
    expect(await page.locator('#skip-link').isVisible()).toBe(true);
    await page.keyboard.press('Enter');
    expect(await focused()).toEqual(['H1', 'Tasks']);
    expect(new URL(page.url()).hash).toBe('#/tasks');

    for (const [hash, title] of [['#/submit', 'Submit a task'], ['#/approvals', 'Approvals'], ['#/definitions', 'Definitions'], ['#/definitions/noop', 'Definition noop'], ['#/tasks/task_x', 'Task task_x'], ['#/nowhere', 'No such page']]) {
      await go(hash!);
      await expect.poll(() => page.title()).toBe(`${title} · Taskgate`);
    }
    await go('#/tasks');
  });

  it("the list's auto-refresh keeps the keyboard on the task link it was on", async () => {
    for (let i = 0; i < 3; i++) await server.submit({ task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 });
    await go('#/tasks');
    await page.locator('#refresh').click();
    await page.locator('#tasks-table tbody tr:nth-child(3) a').waitFor();
    expect(await page.locator('#auto-refresh').isChecked()).toBe(true);
    const link = page.locator('#tasks-table tbody tr:nth-child(2) a');
    const id = await link.innerText();
    await link.focus();
    // the next refresh (every 5 s) redraws the table and writes the time again
    await page.evaluate("document.getElementById('updated').textContent = ''");
    await page.locator('#updated', { hasText: 'Updated' }).waitFor();
    expect(await page.evaluate("[document.activeElement.tagName, document.activeElement.closest('tr')?.dataset.taskId, document.activeElement.isConnected]")).toEqual(['A', id, true]);
  });

  it('at 375 px wide no page is wider than the screen: the header wraps, tables scroll in their box, long ids break', async () => {
    const id = await server.submit({ task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 });
    /** How far the page reaches past the screen's right edge (px). */
    const overflow = () => page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as Promise<number>;
    await page.setViewportSize({ width: 375, height: 800 });
    try {
      await go('#/tasks');
      await page.locator(`#tasks-table tr[data-task-id="${id}"]`).waitFor();
      expect(await overflow(), '#/tasks').toBe(0);
      // the table is wider than a phone: it scrolls inside its box
      expect(await page.evaluate("(() => { const b = document.querySelector('#tasks-table').parentElement; return b.scrollWidth > b.clientWidth && getComputedStyle(b).overflowX; })()")).toBe('auto');
      await go(`#/tasks/${id}`);
      await page.locator('#task-summary .badge[data-status=QUEUED]').waitFor();
      expect(await overflow(), 'task page').toBe(0);
      expect(await page.evaluate("(() => { const h = document.querySelector('main h1'); return h.scrollWidth - h.clientWidth; })()")).toBe(0);
      // each page once what it loads has arrived
      const pages: [string, string][] = [['#/submit', '#submit-definition option[value=noop]'], ['#/approvals', '#approvals-body :is(.empty, section)'], ['#/definitions', '#definitions-table']];
      for (const [hash, loaded] of pages) {
        await go(hash);
        await page.locator(loaded).first().waitFor({ state: 'attached' });
        expect(await overflow(), hash).toBe(0);
      }
    } finally {
      await page.setViewportSize({ width: 1280, height: 720 });
    }
  });

  it('text on buttons and badges reaches a 4.5:1 contrast, light and dark', async () => {
    const paused = await server.submit({ task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 });
    expect((await server.call('POST', `/api/v1/tasks/${paused}/pause`, {})).status).toBe(202);
    await waitForTask(server, await server.submit({ task_definition_id: 'noop', input: {} }), undefined, { timeoutMs: WAIT_MS });
    // each element's text colour and the first opaque background behind it, as rgb() strings
    const colours = `[...document.querySelectorAll('.button.primary, .badge')].map((el) => {
      let bg = el;
      while (bg && /^rgba\\(.*, 0\\)$|^transparent$/.test(getComputedStyle(bg).backgroundColor)) bg = bg.parentElement;
      return [el.textContent, getComputedStyle(el).color, bg ? getComputedStyle(bg).backgroundColor : 'rgb(255, 255, 255)'];
    })`;
    const luminance = (rgb: string) => {
      const [r, g, b] = rgb.match(/\d+(\.\d+)?/g)!.slice(0, 3).map((v) => Number(v) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
      return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
    };
    const ratio = (a: string, b: string) => {
      const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
      return (hi! + 0.05) / (lo! + 0.05);
    };
    const low: string[] = [];
    try {
      for (const colorScheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme });
        await go('#/tasks');
        await page.locator(`#tasks-table tr[data-task-id="${paused}"] .badge[data-status=PAUSED]`).waitFor();
        await page.locator('#tasks-table .badge[data-status=COMPLETED]').first().waitFor();
        const seen = (await page.evaluate(colours)) as [string, string, string][];
        low.push(...seen.filter(([, fg, bg]) => ratio(fg, bg) < 4.5).map(([t, fg, bg]) => `${colorScheme} ${t}: ${fg} on ${bg} ${ratio(fg, bg).toFixed(2)}:1`));
        expect(seen.map(([t]) => t)).toEqual(expect.arrayContaining(['Submit a task', 'PAUSED', 'COMPLETED']));
      }
      expect([...new Set(low)]).toEqual([]);
    } finally {
      await page.emulateMedia({ colorScheme: null });
      await server.call('POST', `/api/v1/tasks/${paused}/cancel`, {});
    }
  });

  it("the pager shows the API's lower-bound count as such, and past the end leads back to the last page", async () => {
    // 1,205 rows of a definition of their own straight into the admin's tenant (delayed: no worker touches them)
    const rows = Array.from({ length: 1_205 }, () => ({
      id: newTaskId(), tenant_id: 'default', user_id: 'u', session_id: null, kind: 'definition' as const, task_definition_id: 'pager-rows', query: '',
      input: {}, context: {}, options: {}, mode: null, priority: 2, max_attempts: 1, retry_interval_ms: 1000, backoff_multiplier: 2,
      timeout_ms: 60_000, run_at: new Date(Date.now() + 3_600_000), metadata: {}, tags: [], workflow_instance_id: null,
    }));
    for (let i = 0; i < rows.length; i += 256) await tasksInsertMany(tdb.db, rows.slice(i, i + 256));
    // the API counts 1,000 rows past the offset: at offset 0 that is a lower bound
    await go('#/tasks?definition=pager-rows');
    await page.locator('#page-info', { hasText: '1–20 of 1000+' }).waitFor();
    await go('#/tasks?definition=pager-rows&offset=300');
    await page.locator('#page-info', { hasText: '301–320 of 1205' }).waitFor();
    expect(await text('#page-info')).toBe('301–320 of 1205');
    await go('#/tasks?definition=pager-rows&offset=6000');
    await page.locator('#page-info', { hasText: 'past the end: 1205 tasks' }).waitFor();
    expect(await page.locator('#page-next').isDisabled()).toBe(true);
    await page.locator('#page-prev').click();
    await page.locator('#page-info', { hasText: '1201–1205 of 1205' }).waitFor();
    expect(new URL(page.url()).hash).toBe('#/tasks?definition=pager-rows&offset=1200');
    expect(await page.locator('#page-next').isDisabled()).toBe(true);
  });

  it('long unbroken text breaks: a 2,000-character approval message, a 128-character definition id with a 200-character name', async () => {
    const overflow = () => page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth') as Promise<number>;
    const defId = 'd'.repeat(128);
    expect((await server.call('PUT', `/api/v1/definitions/${defId}`, { kind: 'approval', name: 'N'.repeat(200) })).status).toBe(201);
    const id = await server.submit({ task_definition_id: 'approval', input: { message: 'M'.repeat(2_000) } });
    try {
      await until(async () => (await server.call('GET', '/api/v1/approvals?status=pending')).body.approvals.some((a: any) => a.workflow_id === id), 'the approval to be requested', WAIT_MS);
      await go('#/approvals');
      await page.locator(`section.approval[data-workflow-id="${id}"] .approval-message`).waitFor();
      expect(await overflow(), '#/approvals').toBe(0);
      await go('#/tasks');
      await page.locator(`#filter-definition option[value="${defId}"]`).waitFor({ state: 'attached' });
      expect(await overflow(), '#/tasks').toBe(0);
      expect(await page.locator('#filter-definition').evaluate((el) => el.getBoundingClientRect().width)).toBeLessThanOrEqual(400);
      await go('#/submit');
      await page.locator(`#submit-definition option[value="${defId}"]`).waitFor({ state: 'attached' });
      expect(await page.locator('#submit-definition').evaluate((el) => el.getBoundingClientRect().width)).toBeLessThanOrEqual(400);
      await go(`#/definitions/${defId}`);
      await page.locator('#definition-detail section').first().waitFor();
      expect(await overflow(), 'definition page').toBe(0);
    } finally {
      await server.call('POST', `/api/v1/tasks/${id}/cancel`, {});
      await server.call('DELETE', `/api/v1/definitions/${defId}`);
    }
  });

  it('"Runs at" only for a task waiting for its time; a definitions page past the end leads back to the last', async () => {
    const delayed = await server.submit({ task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 });
    // no delay, but queued again after its approval: its run_at is later than its created_at
    const now = await server.submit({ task_definition_id: 'approval', input: { message: 'Go?' } });
    await until(async () => (await server.call('GET', '/api/v1/approvals?status=pending')).body.approvals.some((a: any) => a.workflow_id === now), 'the approval to be requested', WAIT_MS);
    const approval = (await server.call('GET', '/api/v1/approvals?status=pending')).body.approvals.find((a: any) => a.workflow_id === now);
    expect((await server.call('POST', '/api/v1/approvals/decision', { workflow_id: now, approval_id: approval.approval_id, approved: true })).status).toBe(200);
    await waitForTask(server, now, undefined, { timeoutMs: WAIT_MS });
    const labels = () => page.locator('#task-summary dt').allInnerTexts();
    await go(`#/tasks/${delayed}`);
    await page.locator('#task-summary .badge[data-status=QUEUED]').waitFor();
    expect(await labels()).toContain('Runs at');
    await go(`#/tasks/${now}`);
    await page.locator('#task-summary .badge[data-status=COMPLETED]').waitFor();
    expect(await labels()).not.toContain('Runs at');
    await server.call('POST', `/api/v1/tasks/${delayed}/cancel`, {});

    await go('#/definitions?page=99');
    await page.locator('#definitions-body .empty').waitFor();
    const pages = (await server.call('GET', '/api/v1/definitions?limit=25')).body.pagination;
    expect(await text('#definitions-body .empty')).toBe(`Page 99 is past the end: ${pages.total_items} definitions.`);
    expect(await text('#definitions-pager span')).toBe(`past the end (${pages.total_pages} page${pages.total_pages === 1 ? '' : 's'})`);
    expect(await page.locator('#definitions-pager button.next').isDisabled()).toBe(true);
    await page.locator('#definitions-pager button.prev').click();
    await page.locator('#definitions-table').waitFor();
    expect(new URL(page.url()).hash).toBe(pages.total_pages > 1 ? `#/definitions?page=${pages.total_pages}` : '#/definitions');
  });

  it("the list's refresh keeps the table box's horizontal scroll on a phone, and rows that did not change", async () => {
    const id = await server.submit({ task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 });
    await page.setViewportSize({ width: 375, height: 800 });
    try {
      await go('#/tasks');
      await page.locator(`#tasks-table tr[data-task-id="${id}"]`).waitFor();
      const box = "document.querySelector('#tasks-body .table-scroll')";
      await page.evaluate(`(() => { ${box}.scrollLeft = 120; window.__row = document.querySelector('#tasks-table tr[data-task-id="${id}"]'); })()`);
      const refreshed = async () => {
        await page.evaluate("document.getElementById('updated').textContent = ''");
        await page.locator('#refresh').click();
        await page.locator('#updated', { hasText: 'Updated' }).waitFor();
      };
      await refreshed();
      expect(await page.evaluate(`[${box}.scrollLeft, window.__row.isConnected]`)).toEqual([120, true]);
      // a refresh that brings a new task keeps the scroll too
      const newer = await server.submit({ task_definition_id: 'noop', input: {}, delay_ms: 3_600_000 });
      await refreshed();
      await page.locator(`#tasks-table tr[data-task-id="${newer}"]`).waitFor();
      expect(await page.evaluate(`[${box}.scrollLeft, window.__row.isConnected]`)).toEqual([120, true]);
      await server.call('POST', `/api/v1/tasks/${newer}/cancel`, {});
    } finally {
      await page.setViewportSize({ width: 1280, height: 720 });
      await server.call('POST', `/api/v1/tasks/${id}/cancel`, {});
    }
  });

  it("a task's refreshes keep its boxes (scroll, selection) while they do not change; after Cancel the heading takes the keyboard", async () => {
    const long = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`key${i}`, `value ${i}`]));
    const id = await server.submit({ task_definition_id: 'noop', input: long, metadata: { note: 'kept' }, delay_ms: 3_600_000 });
    await go(`#/tasks/${id}`);
    await page.locator('[data-block=input] pre').waitFor();
    await page.locator('#stream-state[data-state=live]').waitFor();
    const input = "document.querySelector('[data-block=input] pre')";
    await page.evaluate(`(() => { const p = ${input}; p.scrollTop = 200; window.__pre = p; getSelection().selectAllChildren(document.querySelector('[data-block=metadata] pre')); })()`);
    const kept = `[window.__pre.isConnected, window.__pre.scrollTop, getSelection().toString().includes('kept')]`;
    // the 5-second re-read of an unfinished task
    await page.waitForResponse((r) => new URL(r.url()).pathname === `/api/v1/tasks/${id}`);
    await page.waitForResponse((r) => new URL(r.url()).pathname === `/api/v1/tasks/${id}/control-state`);
    expect(await page.evaluate(kept)).toEqual([true, 200, true]);
    // a change elsewhere on the page (paused: its badge, the control state, the buttons)
    expect((await server.call('POST', `/api/v1/tasks/${id}/pause`, {})).status).toBe(202);
    await page.locator('#task-summary .badge[data-status=PAUSED]').waitFor();
    await page.locator('#control-state dd', { hasText: 'yes' }).first().waitFor();
    expect(await page.evaluate(kept)).toEqual([true, 200, true]);

    await page.locator('#task-cancel').focus();
    await page.keyboard.press('Enter');
    await page.locator('#task-summary .badge[data-status=CANCELLED]').waitFor();
    await page.locator('#task-actions').waitFor({ state: 'hidden' });
    await expect.poll(() => page.evaluate('[document.activeElement.tagName, document.activeElement.textContent]')).toEqual(['H1', id]);
  });

  it('small things: a lower-case status filter, "1 definition", costs below a cent', async () => {
    await go('#/tasks?status=completed');
    await page.locator('#tasks-table .badge').first().waitFor();
    expect(await page.locator('#filter-status').inputValue()).toBe('COMPLETED');
    expect([...new Set(await page.locator('#tasks-table .badge').allInnerTexts())]).toEqual(['COMPLETED']);
    await go('#/definitions?search=sleep');
    await page.locator('#definitions-pager span', { hasText: '(1 definition)' }).waitFor();
    expect(await page.evaluate("import('/dashboard/dom.js').then((m) => [0, 0.0000042, 0.01234, 2.5].map(m.formatCost))")).toEqual(['$0', '$0.0000042', '$0.0123', '$2.50']);
  });

  it('no script error or CSP refusal on the way', () => {
    expect(b.problems).toEqual([]);
  });
});
