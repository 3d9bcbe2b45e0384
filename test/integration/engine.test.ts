// The engine end to end on a real database: claim order, retries with backoff, timeouts,
// cancellation of running tasks, durable steps across retries, delayed tasks, output validation.
import { describe, expect, it } from 'vitest';
import { startTestServer, until, useTestServer, waitForTask } from '../helpers/server.js';
import { PermanentError, RetryAfterError, type TaskDefinition } from '../../src/executors/types.js';
import { gates } from '../streaming/helpers.js';
import { openTestDb, usingPostgres } from '../helpers/db.js';
import { holdRow } from '../helpers/row-lock.js';
import type { Db } from '../../src/storage/db.js';
import { MAX_RETRY_AFTER_MS } from '../../src/engine/runner.js';
import { MAX_OUTPUT_CHARS } from '../../src/engine/results.js';

const attemptsSeen = new Map<string, number>();
const bodyRuns = new Map<string, number>();

const flaky: TaskDefinition = {
  id: 'test-flaky', name: 'flaky', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { failTimes: { type: 'integer' }, key: { type: 'string' } }, required: ['failTimes', 'key'] },
  output_schema: { type: 'object', required: ['attempts'] },
  async handler(input: { failTimes: number; key: string }, ctx) {
    // a durable step before the failure point: must run once across all attempts
    await ctx.step('prepare', () => {
      bodyRuns.set(input.key, (bodyRuns.get(input.key) ?? 0) + 1);
      return 'ok';
    });
    const n = (attemptsSeen.get(input.key) ?? 0) + 1;
    attemptsSeen.set(input.key, n);
    if (n <= input.failTimes) throw new Error(`planned failure ${n}`);
    return { attempts: ctx.attempt };
  },
};

const permanent: TaskDefinition = {
  id: 'test-permanent', name: 'permanent', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  handler() {
    throw new PermanentError('bad input, do not retry');
  },
};

/** Step `one`, then waits at gate `<key>` (no step boundary meanwhile), then steps `two` and `three`; counts each step body's runs. */
const stepRuns = new Map<string, number>();
const pausable: TaskDefinition = {
  id: 'test-pausable', name: 'pausable', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] }, output_schema: { type: 'object' },
  async handler(input: { key: string }, ctx) {
    const body = (name: string) => () => {
      const k = `${input.key}:${name}`;
      stepRuns.set(k, (stepRuns.get(k) ?? 0) + 1);
      return stepRuns.get(k);
    };
    await ctx.step('one', body('one'));
    await gates.wait(input.key);
    await ctx.step('two', body('two'));
    await ctx.step('three', body('three'));
    return { runs: ['one', 'two', 'three'].map((n) => stepRuns.get(`${input.key}:${n}`) ?? 0) };
  },
};

const stubborn: TaskDefinition = {
  id: 'test-stubborn', name: 'ignores abort', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  handler: () => new Promise(() => {}), // never settles, ignores its signal
};

const badOutput: TaskDefinition = {
  id: 'test-bad-output', name: 'bad output', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { how: { enum: ['plain', 'toJSON', 'date'] } } },
  output_schema: { type: 'object', required: ['total'], properties: { total: { type: 'number' }, at: { type: 'string' } } },
  handler: (input: { how?: string }) => {
    // checked as stored: a toJSON that drops `total` fails; a Date (stored as a string) passes
    if (input.how === 'toJSON') return { total: 1, toJSON: () => ({ nope: true }) };
    if (input.how === 'date') return { total: 2, at: new Date(0) };
    return { nope: true };
  },
};

// a handler that throws undefined (or a value whose message cannot be read): it failed all the same
const throwsNothing: TaskDefinition = {
  id: 'test-throws-nothing', name: 'throws undefined', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { how: { enum: ['undefined', 'getter'] } } }, output_schema: {}, retry_policy: { max_retries: 0 },
  handler: (input: { how: string }) => {
    if (input.how === 'getter') {
      const err = new Error();
      Object.defineProperty(err, 'message', { get: () => { throw new Error('no message for you'); } });
      throw err;
    }
    return Promise.reject(undefined);
  },
};

// an upstream asking for a retry in 300 years (a provider's Retry-After: 10000000000000)
const farRetry: TaskDefinition = {
  id: 'test-far-retry', name: 'far retry', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: {},
  handler: () => {
    throw new RetryAfterError('upstream says come back much later', 1e13);
  },
};

// an output JSON cannot hold (a cycle, a BigInt): the handler's bug, not the engine's
const unserializable: TaskDefinition = {
  id: 'test-unserializable', name: 'unserializable output', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { kind: { enum: ['cycle', 'bigint', 'huge'] } } }, output_schema: {},
  handler: (input: { kind: string }) => {
    if (input.kind === 'bigint') return { n: 1n };
    if (input.kind === 'huge') return { text: 'x'.repeat(MAX_OUTPUT_CHARS) };
    const o: Record<string, unknown> = { a: 1 };
    o.self = o;
    return o;
  },
};

// a step whose result JSON cannot hold: its body (a charge, an email) must not run again on a retry
const stepBodyRuns = new Map<string, number>();
const unstorableStep: TaskDefinition = {
  id: 'test-unstorable-step', name: 'unstorable step result', description: '', version: '1', kind: 'function',
  retry_policy: { max_retries: 2, retry_interval_ms: 10, backoff_multiplier: 1 },
  input_schema: { type: 'object', properties: { kind: { enum: ['bigint', 'cycle', 'function', 'nan'] } } }, output_schema: {},
  async handler(input: { kind: string }, ctx) {
    const charged = await ctx.step('charge', () => {
      stepBodyRuns.set(input.kind, (stepBodyRuns.get(input.kind) ?? 0) + 1);
      if (input.kind === 'bigint') return { amount: 10n };
      if (input.kind === 'function') return () => 1;
      if (input.kind === 'nan') return { amount: NaN, at: new Date(0) };
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    });
    return { charged };
  },
};

// one step name twice at once, and a step an earlier attempt recorded after this one loaded its steps
const sameStep: TaskDefinition = {
  id: 'test-same-step', name: 'same step', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { late: { type: 'boolean' } } }, output_schema: {},
  async handler(input: { late?: boolean }, ctx) {
    if (input.late) {
      // what an earlier attempt's in-flight write, committed after this attempt started, leaves
      await fixture.tdb.db.query(`INSERT INTO task_steps (task_id, name, attempt, done, result) VALUES ($1, 'pay', 1, true, '{"paid": "earlier"}')`, [ctx.taskId]);
    }
    const body = async () => {
      stepBodyRuns.set(`same:${ctx.taskId}`, (stepBodyRuns.get(`same:${ctx.taskId}`) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 20));
      return { paid: 'now' };
    };
    const [a, b] = await Promise.all([ctx.step('pay', body), ctx.step('pay', body)]);
    return { a, b, after: ctx.stepInfo('pay') };
  },
};

// an executor may take the context apart: every member must work detached from it
const destructured: TaskDefinition = {
  id: 'test-destructured', name: 'destructured context', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object' }, output_schema: { type: 'object' },
  async handler(_input, { step, stepInfo, progress, emit, log, signal, taskId, attempt, maxAttempts }) {
    const before = stepInfo('double');
    const doubled = await step('double', () => 21 * 2);
    log.info('doubled', { doubled });
    await progress('half way', { doubled });
    await emit({ type: 'AGENT_THINKING', message: 'thinking' });
    return { before: before ?? null, after: stepInfo('double'), doubled, taskId, attempt, maxAttempts, aborted: signal.aborted };
  },
};

// sleeps past the claim window, so its completion is written under a lease (the completer's
// path); with `steps`, records that many durable steps, each with a PROGRESS event
const sleepy: TaskDefinition = {
  id: 'test-sleepy', name: 'sleepy', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { ms: { type: 'integer' }, steps: { type: 'integer' }, failWrites: { type: 'integer' } } }, output_schema: {},
  handler: async (input: { ms: number; steps?: number }, ctx) => {
    await new Promise((r) => setTimeout(r, input.ms));
    for (let i = 0; i < (input.steps ?? 0); i++) await ctx.step(`s${i}`, () => i, { event: { type: 'PROGRESS', message: `step ${i}` } });
    return { slept: input.ms };
  },
};

/**
 * Makes the first `failWrites` writes of `table` rows whose task's input has `failWrites` fail
 * with `errcode`, through a real trigger (a sequence counts them: nextval survives the rollback of
 * the failed write). `when` narrows the rows (SQL over NEW). Returns the clean-up.
 */
async function injectWriteFailures(db: Db, o: { table: string; op: 'INSERT' | 'UPDATE'; when: string; taskId: string; errcode: string }): Promise<{ tries: () => Promise<number>; remove: () => Promise<void> }> {
  await db.exec(`
    CREATE SEQUENCE test_write_failures;
    CREATE FUNCTION test_fail_writes() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE planned int;
    BEGIN
      IF ${o.when} THEN
        SELECT (input->>'failWrites')::int INTO planned FROM tasks WHERE id = ${o.taskId};
        IF planned IS NOT NULL AND nextval('test_write_failures') <= planned THEN
          RAISE EXCEPTION 'injected write failure' USING ERRCODE = '${o.errcode}';
        END IF;
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_fail_writes BEFORE ${o.op} ON ${o.table} FOR EACH ROW EXECUTE FUNCTION test_fail_writes();`);
  return {
    tries: async () => Number((await db.query<{ last_value: string }>('SELECT last_value FROM test_write_failures')).rows[0]!.last_value),
    remove: () => db.exec(`DROP TRIGGER test_fail_writes ON ${o.table}; DROP FUNCTION test_fail_writes(); DROP SEQUENCE test_write_failures;`),
  };
}

// on attempt 1, a cancel or pause is asked for (written as the API writes it, but with no hint
// to the worker: one that lands while the attempt is failing) and the attempt fails right after
const failsAfterControl: TaskDefinition = {
  id: 'test-fails-after-control', name: 'fails after a control request', description: '', version: '1', kind: 'function',
  input_schema: { type: 'object', properties: { action: { enum: ['cancel', 'pause'] } }, required: ['action'] }, output_schema: {},
  handler: async (input: { action: string }, ctx) => {
    if (ctx.attempt > 1) return { attempt: ctx.attempt };
    await fixture.tdb.db.query(`UPDATE tasks SET ${input.action}_requested = true WHERE id = $1`, [ctx.taskId]);
    throw new Error('failed just after the request');
  },
};

const fixture = useTestServer({ TASKGATE_CANCEL_GRACE_MS: '300' }, { definitions: [flaky, permanent, stubborn, badOutput, throwsNothing, unserializable, unstorableStep, sameStep, farRetry, destructured, pausable, sleepy, failsAfterControl], flags: { concurrency: '4' } });

const submit = (body: Record<string, unknown>) => fixture.server.submit(body);
const eventTypes = async (id: string) => (await fixture.server.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events.map((e: any) => e.type);

describe('engine', () => {
  it('retries failures with backoff and does not re-run finished durable steps', async () => {
    const id = await submit({ task_definition_id: 'test-flaky', input: { failTimes: 2, key: 'a' }, retry_policy: { max_retries: 3, retry_interval_ms: 20, backoff_multiplier: 2 } });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('COMPLETED');
    expect(t.attempts).toBe(3);
    expect(t.output).toEqual({ attempts: 3 });
    expect(bodyRuns.get('a')).toBe(1);
    const types = await eventTypes(id);
    expect(types.filter((x: string) => x === 'RETRYING')).toHaveLength(2);
    expect(types.at(-1)).toBe('STREAM_END');
    const seqs = (await fixture.server.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events.map((e: any) => e.seq);
    expect(seqs).toEqual(seqs.map((_: number, i: number) => i + 1));
  });

  it('gives executors a context whose members work when taken apart', async () => {
    const id = await submit({ task_definition_id: 'test-destructured', input: {} });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('COMPLETED');
    expect(t.output).toEqual({ before: null, after: { runs: 1, done: true }, doubled: 42, taskId: id, attempt: 1, maxAttempts: expect.any(Number), aborted: false });
    expect(await eventTypes(id)).toEqual(expect.arrayContaining(['PROGRESS', 'AGENT_THINKING', 'WORKFLOW_COMPLETED', 'STREAM_END']));
  });

  it('fails after the retry budget is spent', async () => {
    const id = await submit({ task_definition_id: 'test-flaky', input: { failTimes: 5, key: 'b' }, retry_policy: { max_retries: 1, retry_interval_ms: 10 } });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('FAILED');
    expect(t.attempts).toBe(2);
    expect(t.error).toBe('planned failure 2');
    const types = await eventTypes(id);
    expect(types).toContain('WORKFLOW_FAILED');
    expect(types.at(-1)).toBe('STREAM_END');
  });

  it('does not retry a PermanentError', async () => {
    const id = await submit({ task_definition_id: 'test-permanent', input: {}, retry_policy: { max_retries: 5, retry_interval_ms: 10 } });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('FAILED');
    expect(t.attempts).toBe(1);
    expect(t.error).toContain('do not retry');
  });

  it('times out: the AbortSignal fires and the status is TIMEOUT once retries are spent', async () => {
    const id = await submit({ task_definition_id: 'sleep', input: { ms: 10_000 }, timeout_ms: 100, retry_policy: { max_retries: 1, retry_interval_ms: 10 } });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('TIMEOUT');
    expect(t.attempts).toBe(2);
    expect(t.error).toContain('timed out');
  });

  it('cancels a running task through its AbortSignal', async () => {
    const id = await submit({ task_definition_id: 'sleep', input: { ms: 30_000 } });
    await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    const res = await fixture.server.call('POST', `/api/v1/tasks/${id}/cancel`, { reason: 'changed my mind' });
    expect(res.status).toBe(202);
    // the answer carries the task's status: still RUNNING until the attempt stops
    expect(res.body).toEqual({ success: true, message: expect.any(String), task_id: id, status: 'RUNNING' });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('CANCELLED');
    const types = await eventTypes(id);
    expect(types).toEqual(expect.arrayContaining(['WORKFLOW_CANCELLING', 'WORKFLOW_CANCELLED', 'STREAM_END']));
    const state = (await fixture.server.call('GET', `/api/v1/tasks/${id}/control-state`)).body;
    expect(state).toMatchObject({ is_cancelled: true, cancel_reason: 'changed my mind', is_paused: false, awaiting_approval: false });
  });

  it('forces CANCELLED after the grace period when the executor ignores its signal', async () => {
    const id = await submit({ task_definition_id: 'test-stubborn', input: {} });
    await waitForTask(fixture.server, id, (t) => t.status === 'RUNNING');
    await fixture.server.call('POST', `/api/v1/tasks/${id}/cancel`, {});
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('CANCELLED');
  });

  it('a cancel that lands while an attempt is failing cancels the task instead of its retry', async () => {
    const id = await submit({ task_definition_id: failsAfterControl.id, input: { action: 'cancel' }, retry_policy: { max_retries: 3, retry_interval_ms: 10 } });
    // before: QUEUED with the cancel still asked for, and attempt 2 ran (COMPLETED here)
    const t = await waitForTask(fixture.server, id);
    expect({ status: t.status, attempts: t.attempts }).toEqual({ status: 'CANCELLED', attempts: 1 });
    const types = await eventTypes(id);
    expect(types).not.toContain('RETRYING');
    expect(types.slice(-3)).toEqual(['ERROR_OCCURRED', 'WORKFLOW_CANCELLED', 'STREAM_END']);
  });

  it('a cancel that lands while the last attempt is failing cancels the task instead of failing it', async () => {
    const id = await submit({ task_definition_id: failsAfterControl.id, input: { action: 'cancel' }, retry_policy: { max_retries: 0 } });
    // before: FAILED although the cancel had been answered 202
    const t = await waitForTask(fixture.server, id);
    expect({ status: t.status, attempts: t.attempts }).toEqual({ status: 'CANCELLED', attempts: 1 });
    expect((await eventTypes(id)).slice(-3)).toEqual(['ERROR_OCCURRED', 'WORKFLOW_CANCELLED', 'STREAM_END']);
  });

  it('a pause that lands while the last attempt is failing leaves the task FAILED: no attempt is left to resume', async () => {
    const id = await submit({ task_definition_id: failsAfterControl.id, input: { action: 'pause' }, retry_policy: { max_retries: 0 } });
    const t = await waitForTask(fixture.server, id);
    expect({ status: t.status, attempts: t.attempts }).toEqual({ status: 'FAILED', attempts: 1 });
  });

  it('a pause that lands while an attempt is failing pauses the task, the failed attempt counted, and a resume runs the next', async () => {
    const id = await submit({ task_definition_id: failsAfterControl.id, input: { action: 'pause' }, retry_policy: { max_retries: 3, retry_interval_ms: 10 } });
    const paused = await waitForTask(fixture.server, id, (t) => t.status !== 'RUNNING' && t.status !== 'QUEUED');
    expect({ status: paused.status, attempts: paused.attempts }).toEqual({ status: 'PAUSED', attempts: 1 });
    expect((await fixture.server.call('POST', `/api/v1/tasks/${id}/resume`, {})).status).toBe(202);
    const t = await waitForTask(fixture.server, id);
    expect({ status: t.status, attempts: t.attempts, output: t.output }).toEqual({ status: 'COMPLETED', attempts: 2, output: { attempt: 2 } });
    expect((await eventTypes(id)).filter((x: string) => x === 'WORKFLOW_PAUSED')).toHaveLength(1);
  });

  it('writes an outcome whose first writes failed (a database blip) instead of leaving the task to its lease', async () => {
    const failures = await injectWriteFailures(fixture.tdb.db, { table: 'tasks', op: 'UPDATE', when: "NEW.status = 'COMPLETED'", taskId: 'NEW.id', errcode: 'P0001' });
    try {
      const id = await submit({ task_definition_id: sleepy.id, input: { ms: 50, failWrites: 2 }, retry_policy: { max_retries: 0 } });
      // before: RUNNING until the lease ran out, then FAILED "lease expired on the last attempt"
      const t = await waitForTask(fixture.server, id, undefined, { timeoutMs: 15_000 });
      expect({ status: t.status, attempts: t.attempts, output: t.output }).toEqual({ status: 'COMPLETED', attempts: 1, output: { slept: 50 } });
      expect(await failures.tries()).toBe(3);
      expect((await eventTypes(id)).filter((x: string) => x === 'WORKFLOW_COMPLETED')).toHaveLength(1);
    } finally {
      await failures.remove();
    }
  });

  it('an attempt whose step cannot be recorded while the database is unreachable records it once it is back, and goes on', async () => {
    // 57P01 admin_shutdown: what a restarting PostgreSQL answers
    const failures = await injectWriteFailures(fixture.tdb.db, { table: 'task_events', op: 'INSERT', when: "NEW.type = 'PROGRESS'", taskId: 'NEW.task_id', errcode: '57P01' });
    try {
      const id = await submit({ task_definition_id: sleepy.id, input: { ms: 1, steps: 2, failWrites: 2 }, retry_policy: { max_retries: 0 } });
      // before: the step's failed write failed the attempt, and with no retries left, the task
      const t = await waitForTask(fixture.server, id, undefined, { timeoutMs: 15_000 });
      expect({ status: t.status, attempts: t.attempts }).toEqual({ status: 'COMPLETED', attempts: 1 });
      expect(await failures.tries()).toBe(4);
      expect((await eventTypes(id)).filter((x: string) => x === 'PROGRESS')).toHaveLength(2);
    } finally {
      await failures.remove();
    }
  });

  it('fails a task whose output does not match its output_schema — as it would be stored (toJSON applied, a Date a string)', async () => {
    for (const how of ['plain', 'toJSON']) {
      const t = await waitForTask(fixture.server, await submit({ task_definition_id: 'test-bad-output', input: { how } }));
      expect([t.status, t.error], how).toEqual(['FAILED', expect.stringContaining('output_schema')]);
    }
    const dated = await waitForTask(fixture.server, await submit({ task_definition_id: 'test-bad-output', input: { how: 'date' } }));
    expect([dated.status, dated.output]).toEqual(['COMPLETED', { total: 2, at: '1970-01-01T00:00:00.000Z' }]);
  });

  it('fails a task whose handler throws undefined, or an error whose message cannot be read, at once (was: RUNNING until its lease expired)', async () => {
    for (const [how, error] of [['undefined', 'the handler failed without an error (it threw or rejected with undefined)'], ['getter', 'unknown error (its message could not be read)']]) {
      const id = await submit({ task_definition_id: throwsNothing.id, input: { how } });
      const t = await waitForTask(fixture.server, id, undefined, { timeoutMs: 10_000 });
      expect([t.status, t.error], how).toEqual(['FAILED', error]);
    }
  });

  it('fails a task whose output JSON cannot hold, at once and alone: the tasks completing beside it complete', async () => {
    const ids = await Promise.all([
      submit({ task_definition_id: unserializable.id, input: { kind: 'cycle' } }),
      submit({ task_definition_id: unserializable.id, input: { kind: 'bigint' } }),
      ...Array.from({ length: 6 }, () => submit({ task_definition_id: 'noop', input: {} })),
    ]);
    const done = await Promise.all(ids.map((id) => waitForTask(fixture.server, id)));
    expect(done.map((t) => t.status)).toEqual(['FAILED', 'FAILED', ...Array(6).fill('COMPLETED')]);
    for (const t of done.slice(0, 2)) {
      expect(t.error).toMatch(/output cannot be stored as JSON/);
      expect(t.attempts).toBe(1);
    }
  });

  it('fails a task whose output holds a number JSON cannot (Infinity would be stored as null), or is over MAX_OUTPUT_CHARS', async () => {
    // seed 003's order total over amounts a double cannot sum: it completed with "total": null
    const overflow = await submit({ task_definition_id: 'calculate-order-total', input: { orderId: 'o', items: [{ id: 'a', quantity: 1e308, price: 1e308 }] } });
    const huge = await submit({ task_definition_id: unserializable.id, input: { kind: 'huge' } });
    const [o, h] = [await waitForTask(fixture.server, overflow), await waitForTask(fixture.server, huge)];
    expect({ status: o.status, error: o.error, output: o.output ?? null }).toEqual({
      status: 'FAILED', error: 'output cannot be stored as JSON: "subtotal" is Infinity, a number JSON cannot hold', output: null,
    });
    expect({ status: h.status, error: h.error, attempts: h.attempts }).toEqual({
      status: 'FAILED', error: `output is ${MAX_OUTPUT_CHARS + '[{"text":""},null,null]'.length} characters as JSON, over the limit of ${MAX_OUTPUT_CHARS}`, attempts: 1,
    });
  });

  it("fails a task for good when a step's result JSON cannot hold (the step's body ran once, not once per attempt); a storable step replays as stored", async () => {
    const ids = Object.fromEntries(await Promise.all(['bigint', 'cycle', 'function', 'nan'].map(async (kind) => [kind, await submit({ task_definition_id: unstorableStep.id, input: { kind } })])));
    const bigint = await waitForTask(fixture.server, ids.bigint);
    expect({ status: bigint.status, attempts: bigint.attempts, error: bigint.error }).toEqual({
      status: 'FAILED', attempts: 1, error: 'step "charge": its result cannot be stored as JSON: Do not know how to serialize a BigInt',
    });
    const cycle = await waitForTask(fixture.server, ids.cycle);
    expect({ status: cycle.status, attempts: cycle.attempts }).toEqual({ status: 'FAILED', attempts: 1 });
    expect(cycle.error).toMatch(/^step "charge": its result cannot be stored as JSON: Converting circular structure/);
    expect(stepBodyRuns.get('bigint')).toBe(1);
    expect(stepBodyRuns.get('cycle')).toBe(1);
    // what JSON turns into null or a string is what the step returns, on its first run as on a replay
    const fn = await waitForTask(fixture.server, ids.function);
    expect({ status: fn.status, output: fn.output }).toEqual({ status: 'COMPLETED', output: { charged: null } });
    const nan = await waitForTask(fixture.server, ids.nan);
    expect({ status: nan.status, output: nan.output }).toEqual({ status: 'COMPLETED', output: { charged: { amount: null, at: '1970-01-01T00:00:00.000Z' } } });
  });

  it('runs a step once when one attempt calls it twice at once, and replays a step recorded after the attempt loaded its steps (neither reads as a lost lease)', async () => {
    const [twice, late] = [await submit({ task_definition_id: sameStep.id, input: {} }), await submit({ task_definition_id: sameStep.id, input: { late: true } })];
    const t = await waitForTask(fixture.server, twice);
    expect({ status: t.status, attempts: t.attempts, output: t.output }).toEqual({
      status: 'COMPLETED', attempts: 1, output: { a: { paid: 'now' }, b: { paid: 'now' }, after: { runs: 1, done: true } },
    });
    expect(stepBodyRuns.get(`same:${twice}`)).toBe(1);
    const l = await waitForTask(fixture.server, late);
    expect({ status: l.status, attempts: l.attempts, output: l.output }).toEqual({
      status: 'COMPLETED', attempts: 1, output: { a: { paid: 'earlier' }, b: { paid: 'earlier' }, after: { runs: 1, done: true } },
    });
    expect(stepBodyRuns.get(`same:${late}`)).toBeUndefined();
  });

  it("caps an executor's Retry-After at a day: the task is queued again, not stuck RUNNING", async () => {
    const id = await submit({ task_definition_id: farRetry.id, input: {}, retry_policy: { max_retries: 2, retry_interval_ms: 10 } });
    const t = await waitForTask(fixture.server, id, (x) => x.status === 'QUEUED' && x.attempts === 1);
    const wait = new Date(t.run_at).getTime() - Date.now();
    expect(wait).toBeGreaterThan(MAX_RETRY_AFTER_MS - 60_000);
    expect(wait).toBeLessThanOrEqual(MAX_RETRY_AFTER_MS);
    const retrying = (await fixture.server.call('GET', `/api/v1/tasks/${id}/events`)).body.events.find((e: any) => e.type === 'RETRYING');
    expect(retrying.payload.delay_ms).toBe(MAX_RETRY_AFTER_MS);
    expect((await fixture.server.call('POST', `/api/v1/tasks/${id}/cancel`, {})).status).toBe(202);
  });

  it('runs delayed tasks no earlier than run_at', async () => {
    const before = Date.now();
    const id = await submit({ task_definition_id: 'noop', input: {}, delay_ms: 400 });
    const t = await waitForTask(fixture.server, id);
    expect(t.status).toBe('COMPLETED');
    expect(new Date(t.started_at).getTime()).toBeGreaterThanOrEqual(before + 350);
  });

  it('sleep with steps reports how often each step ran', async () => {
    const id = await submit({ task_definition_id: 'sleep', input: { ms: 5, steps: 3 } });
    const t = await waitForTask(fixture.server, id);
    expect(t.output).toEqual({ steps: 3, step_runs: [1, 1, 1] });
    const types = await eventTypes(id);
    expect(types.filter((x: string) => x === 'PROGRESS')).toHaveLength(3);
  });

  it('a pause withdrawn while the task runs (resume before its next step) is not carried out', async () => {
    const key = 'withdrawn';
    const id = await submit({ task_definition_id: pausable.id, input: { key } });
    await until(() => stepRuns.get(`${key}:one`) === 1, 'step one');
    expect((await fixture.server.call('POST', `/api/v1/tasks/${id}/pause`, { reason: 'hold on' })).body.status).toBe('RUNNING');
    await until(() => fixture.server.worker!.pauseRequested(id) === true, 'the worker to hear of the pause (control hint)');
    const w = await fixture.server.call('POST', `/api/v1/tasks/${id}/resume`, {});
    expect(w.status).toBe(202);
    expect(w.body).toMatchObject({ status: 'RUNNING', message: 'Pause request withdrawn' });
    await until(() => fixture.server.worker!.pauseRequested(id) === false, 'the worker to hear of the withdrawal');
    gates.open(key);
    const done = await waitForTask(fixture.server, id);
    expect(done.status).toBe('COMPLETED');
    expect(done.output.runs).toEqual([1, 1, 1]);
    const types = await eventTypes(id);
    expect(types).toEqual(expect.arrayContaining(['WORKFLOW_PAUSING', 'WORKFLOW_RESUMED', 'WORKFLOW_COMPLETED']));
    expect(types).not.toContain('WORKFLOW_PAUSED');
  });

  it.skipIf(!usingPostgres())('runs one heartbeat at a time: hints while one waits are folded into one more (PostgreSQL)', async () => {
    // Heartbeats answered out of order could set a pause flag back; stacked ones hold the pool.
    // A transaction holds the running task's row, so each heartbeat statement waits on it.
    const key = 'heartbeat-serial';
    const id = await submit({ task_definition_id: pausable.id, input: { key } });
    await until(() => stepRuns.get(`${key}:one`) === 1, 'step one');
    const lock = await holdRow(fixture.server.db, 'tasks', id);
    for (let i = 0; i < 5; i++) {
      fixture.server.signals.control(id);
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(async () => (await lock.waiting()) > 0, 'a heartbeat waiting on the row');
    await new Promise((r) => setTimeout(r, 200));
    expect(await lock.waiting()).toBe(1);
    await lock.release();
    // the waiting heartbeat and the one folded behind it renewed the lease: the task runs on
    gates.open(key);
    const done = await waitForTask(fixture.server, id);
    expect(done.status).toBe('COMPLETED');
    expect(done.output.runs).toEqual([1, 1, 1]);
  });

  it('pauses a running task at a step boundary and resumes it without re-running finished steps', async () => {
    const key = 'paused';
    const id = await submit({ task_definition_id: pausable.id, input: { key } });
    await until(() => stepRuns.get(`${key}:one`) === 1, 'step one');
    const p = await fixture.server.call('POST', `/api/v1/tasks/${id}/pause`, { reason: 'hold on' });
    expect(p.status).toBe(202);
    expect(p.body.status).toBe('RUNNING'); // PAUSED once it reaches a step boundary
    await until(() => fixture.server.worker!.pauseRequested(id) === true, 'the worker to hear of the pause (control hint)');
    gates.open(key); // the next step boundary: step two
    const paused = await waitForTask(fixture.server, id, (t) => t.status === 'PAUSED' || t.status === 'COMPLETED');
    expect(paused.status).toBe('PAUSED');
    expect(stepRuns.get(`${key}:two`)).toBeUndefined();
    expect(fixture.server.worker!.activeCount).toBe(0);
    expect((await fixture.server.call('POST', `/api/v1/tasks/${id}/pause`, {})).status).toBe(409);
    const r = await fixture.server.call('POST', `/api/v1/tasks/${id}/resume`, { reason: 'go on' });
    expect(r.status).toBe(202);
    const done = await waitForTask(fixture.server, id);
    expect(done.status).toBe('COMPLETED');
    expect(done.output.runs).toEqual([1, 1, 1]);
    // the resume's reason is kept, as the pause's is
    const events = (await fixture.server.call('GET', `/api/v1/tasks/${id}/events?limit=200`)).body.events as { type: string; payload: unknown }[];
    expect(events.find((e) => e.type === 'WORKFLOW_RESUMED')?.payload).toEqual({ reason: 'go on', resumed_by: expect.any(String) });
    // the resumed attempt replayed the finished steps itself: no lease lost on the way (a pause
    // gives its attempt back, so the resumed claim is attempt 1 again and must still load them)
    expect(done.attempts).toBe(1);
    const types = await eventTypes(id);
    expect(types).toEqual(expect.arrayContaining(['WORKFLOW_PAUSING', 'WORKFLOW_PAUSED', 'WORKFLOW_RESUMED', 'WORKFLOW_COMPLETED']));
    expect(types).not.toContain('WARNING');
  });
});

describe('worker stop', () => {
  it('a second stop() resolves when the first has stopped the worker, not at once', async () => {
    const tdb = await openTestDb();
    const server = await startTestServer(tdb.db, { TASKGATE_SHUTDOWN_GRACE_MS: '5000' });
    try {
      const id = await server.submit({ task_definition_id: 'sleep', input: { ms: 400 } });
      await waitForTask(server, id, (t) => t.status === 'RUNNING');
      const first = server.worker!.stop();
      await server.worker!.stop();
      expect(server.worker!.state).toBe('stopped');
      await first;
      expect((await waitForTask(server, id)).status).toBe('COMPLETED');
    } finally {
      await server.close();
      await tdb.close();
    }
  });
});
