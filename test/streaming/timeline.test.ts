// GET /tasks/{id}/timeline: the attempt-level history from the persisted log — real runs (steps,
// retries, pause/resume) on a server, and lease loss and approvals from a crafted log.
import { describe, expect, it } from 'vitest';
import { newTenant, useTestServer, waitForTask } from '../helpers/server.js';
import { buildTimeline } from '../../src/api/routes/timeline.js';
import type { TaskDefinition } from '../../src/executors/types.js';
import type { StoredEvent } from '../../src/storage/queries/transitions.js';

const failedOnce = new Set<string>();
const failOnce: TaskDefinition = {
  id: 'test-fail-once', name: 'fail once', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] },
  output_schema: { type: 'object' },
  async handler(input: { key: string }, ctx) {
    await ctx.progress('before the failure point');
    if (!failedOnce.has(input.key)) {
      failedOnce.add(input.key);
      throw new Error('planned failure');
    }
    return {};
  },
};

const fixture = useTestServer({ TASKGATE_RATE_LIMIT_PER_MIN: '0' }, { definitions: [failOnce] });

const submit = (body: Record<string, unknown>) => fixture.server.submit(body);
const timeline = async (id: string) => {
  const res = await fixture.server.call('GET', `/api/v1/tasks/${id}/timeline`);
  expect(res.status, res.text).toBe(200);
  return res.body;
};

describe('timeline', () => {
  it('a multi-step run: claimed by a worker, each step finished, completed', async () => {
    const id = await submit({ task_definition_id: 'sleep', input: { ms: 1, steps: 3 } });
    await waitForTask(fixture.server, id);
    const t = await timeline(id);
    expect(t.workflow_id).toBe(id);
    expect(t.events.map((e: any) => e.type)).toEqual(['CLAIMED', 'STEP_FINISHED', 'STEP_FINISHED', 'STEP_FINISHED', 'COMPLETED']);
    expect(t.events[0]).toMatchObject({ workflow_id: id, seq: 1, attempt: 1 });
    expect(t.events[0].worker_id).toBeTruthy();
    expect(t.events[1].details).toMatchObject({ step: 1, steps: 3 });
    expect(t.stats).toMatchObject({ total: 5, status: 'COMPLETED', attempts: 1, steps_finished: 3, retries: 0, pauses: 0 });
    expect(t.stats.counts).toMatchObject({ WORKFLOW_STARTED: 1, PROGRESS: 3, WORKFLOW_COMPLETED: 1, STREAM_END: 1 });
    expect(t.stats.attempt_history).toEqual([expect.objectContaining({ attempt: 1, outcome: 'completed', steps_finished: 3 })]);
    expect(typeof t.stats.duration_ms).toBe('number');
  });

  it('a retried run: the failure, the scheduled retry and the second claim', async () => {
    const id = await submit({ task_definition_id: 'test-fail-once', input: { key: 'a' }, retry_policy: { max_retries: 2, retry_interval_ms: 10 } });
    await waitForTask(fixture.server, id);
    const t = await timeline(id);
    expect(t.events.map((e: any) => e.type)).toEqual(['CLAIMED', 'STEP_FINISHED', 'ATTEMPT_FAILED', 'RETRY_SCHEDULED', 'CLAIMED', 'STEP_FINISHED', 'COMPLETED']);
    expect(t.events[2]).toMatchObject({ message: 'planned failure', attempt: 1, details: { retryable: true } });
    expect(t.events[4].attempt).toBe(2);
    expect(t.stats).toMatchObject({ attempts: 2, retries: 1 });
    expect(t.stats.attempt_history.map((a: any) => [a.attempt, a.outcome])).toEqual([[1, 'retried'], [2, 'completed']]);
  });

  it('a paused and resumed run', async () => {
    const id = await submit({ task_definition_id: 'sleep', input: { ms: 100, steps: 40 } });
    await waitForTask(fixture.server, id, (x) => x.status === 'RUNNING');
    expect((await fixture.server.call('POST', `/api/v1/tasks/${id}/pause`, { reason: 'lunch' })).status).toBe(202);
    await waitForTask(fixture.server, id, (x) => x.status === 'PAUSED');
    expect((await fixture.server.call('POST', `/api/v1/tasks/${id}/resume`, {})).status).toBe(202);
    await waitForTask(fixture.server, id);
    const t = await timeline(id);
    const types = t.events.map((e: any) => e.type);
    const at = (type: string) => types.indexOf(type);
    expect(at('PAUSE_REQUESTED')).toBeGreaterThan(0);
    expect(at('PAUSED')).toBeGreaterThan(at('PAUSE_REQUESTED'));
    expect(at('RESUMED')).toBeGreaterThan(at('PAUSED'));
    expect(types.lastIndexOf('CLAIMED')).toBeGreaterThan(at('RESUMED'));
    expect(types.at(-1)).toBe('COMPLETED');
    expect(t.events[at('PAUSE_REQUESTED')].details).toMatchObject({ reason: 'lunch' });
    expect(t.stats).toMatchObject({ pauses: 1, resumes: 1, steps_finished: 40 });
    expect(t.stats.attempt_history.map((a: any) => a.outcome)).toEqual(['paused', 'completed']);
  });

  it('404 for unknown and foreign tasks', async () => {
    expect((await fixture.server.call('GET', '/api/v1/tasks/task_nope/timeline')).status).toBe(404);
    const id = await submit({ task_definition_id: 'noop', input: {} });
    const other = await newTenant(fixture.tdb.db, ['tasks:read']);
    expect((await fixture.server.call('GET', `/api/v1/tasks/${id}/timeline`, undefined, { key: other.key })).status).toBe(404);
  });

  it('lease loss, requeue and an approval, from a crafted log', () => {
    let seq = 0;
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
    const ev = (type: string, payload: Record<string, unknown> | null, message: string | null = null): StoredEvent => {
      seq++;
      return { task_id: 't1', tenant_id: 'x', seq, type, agent_id: null, message, payload, created_at: at(seq) };
    };
    const events = [
      ev('WORKFLOW_STARTED', { attempt: 1, worker_id: 'w1' }),
      ev('PROGRESS', { step: 1 }, 'step 1'),
      ev('WARNING', { reason: 'lease_lost', attempt: 1, worker_id: 'w1' }, 'lease lost by worker w1 (attempt 1)'),
      ev('RETRYING', { attempt: 1, next_attempt: 2, delay_ms: 0 }, 'requeued after lease loss'),
      ev('WORKFLOW_STARTED', { attempt: 2, worker_id: 'w2' }),
      ev('APPROVAL_REQUESTED', { approval_id: '0b6f5c5e-5d3c-4c6e-9a55-0c1c4f2b7a10' }, 'id=0b6f5c5e-5d3c-4c6e-9a55-0c1c4f2b7a10'),
      ev('APPROVAL_DECISION', { approval_id: '0b6f5c5e-5d3c-4c6e-9a55-0c1c4f2b7a10', approved: true, approved_by: 'ana', decided_by_principal: 'api_key:key_1' }, 'approved'),
      ev('WORKFLOW_STARTED', { attempt: 2, worker_id: 'w3' }),
      ev('WORKFLOW_COMPLETED', { duration_ms: 5 }),
      ev('STREAM_END', { status: 'COMPLETED' }),
    ];
    const t = buildTimeline({ id: 't1', status: 'COMPLETED', attempt: 2, created_at: at(0), started_at: at(1), completed_at: at(9) }, events);
    expect(t.events.map((e) => e.type)).toEqual([
      'CLAIMED', 'STEP_FINISHED', 'LEASE_LOST', 'RETRY_SCHEDULED', 'CLAIMED', 'APPROVAL_REQUESTED', 'APPROVAL_DECIDED', 'CLAIMED', 'COMPLETED',
    ]);
    expect(t.events[2]).toMatchObject({ worker_id: 'w1', attempt: 1 });
    expect(t.events[6].details).toMatchObject({ approved: true, decided_by: 'ana', decided_by_principal: 'api_key:key_1' });
    expect(t.stats).toMatchObject({ lease_losses: 1, retries: 1, approvals_requested: 1, approvals_decided: 1, attempts: 2, duration_ms: 8000, queue_ms: 1000 });
    expect(t.stats.attempt_history.map((a) => [a.attempt, a.worker_id, a.outcome])).toEqual([[1, 'w1', 'lease_lost'], [2, 'w2', 'suspended'], [2, 'w3', 'completed']]);
  });
});
