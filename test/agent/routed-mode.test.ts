// An agent task submitted without a mode is routed by the executor (metadata.mode, mode_source
// 'auto'); once it has run, its views show that mode (seed 002: mode is a string), not null.
import { describe, expect, it } from 'vitest';
import { waitForTask } from '../helpers/server.js';
import { useAgentServer } from '../helpers/agent-server.js';

const fx = useAgentServer((baseUrl) => ({ OPENAI_API_KEY: 'sk-upstream', OPENAI_BASE_URL: baseUrl }));

describe('the mode of an auto-routed agent task', () => {
  it('is the routed mode in the task and the session history once it has run', async () => {
    fx.oai.script({ kind: 'text', text: 'Hello there.' });
    const res = await fx.server.call('POST', '/api/v1/tasks', { query: 'Say hello', session_id: 'sess-routed-mode' });
    expect(res.status, res.text).toBe(200);
    const id = res.body.task_id as string;
    const task = await waitForTask(fx.server, id);
    expect(task.status).toBe('COMPLETED');
    expect(task.metadata).toMatchObject({ mode: 'simple', mode_source: 'auto' });
    expect(task.mode).toBe('simple');

    const history = await fx.server.call('GET', '/api/v1/sessions/sess-routed-mode/history');
    expect(history.body.tasks.map((t: any) => [t.task_id, t.mode])).toEqual([[id, 'simple']]);
  });

  it('is the routed mode in GET /api/v1/tasks items once it has run', async () => {
    fx.oai.script({ kind: 'text', text: 'Listed.' });
    const id = await fx.server.submit({ query: 'Say hello', session_id: 'sess-routed-list' });
    await waitForTask(fx.server, id);
    const list = await fx.server.call('GET', '/api/v1/tasks?session_id=sess-routed-list');
    expect(list.body.tasks.map((t: any) => [t.task_id, t.mode])).toEqual([[id, 'simple']]);
  });

  it('is the requested mode when one was sent, and a definition task free metadata key `mode` is not one', async () => {
    fx.oai.script({ kind: 'text', text: 'Done.' });
    const asked = await fx.server.submit({ query: 'Say hello', mode: 'standard' });
    expect((await waitForTask(fx.server, asked)).mode).toBe('standard');
    const def = await fx.server.submit({ task_definition_id: 'noop', input: {}, metadata: { mode: 'batch' } });
    const t = await waitForTask(fx.server, def);
    expect(t.metadata.mode).toBe('batch');
    expect(t.mode).toBeNull();
  });
});
