// The agent half of main.ts's wiring: builds the agent executor's deps (session memory and usage
// roll-up in SQL, child tasks for run_task, http_fetch limits) and the OpenAI-compatible routes'
// deps (submit through the canonical route, follow through the event hub).
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Config } from './config/index.js';
import type { LlmConfig } from './config/llm.js';
import { ApiError, type ErrorCode } from './contract/errors.js';
import type { SubmitTaskBody } from './contract/tasks.js';
import { DEFAULT_RETRY_POLICY, priorityRank, type Priority } from './domain/lifecycle.js';
import { newTaskId } from './domain/ids.js';
import type { Db } from './storage/db.js';
import { tasksGet, tasksInsertMany, tasksList } from './storage/queries/tasks.js';
import {
  agentSessionAccount, agentSessionAddUsage, agentSessionReleaseTokens, agentSessionReserveTokens, agentSessionSetBudget, agentSessionTurns,
} from './storage/queries/agent.js';
import type { EventHub } from './events/hub.js';
import type { Signals } from './events/signals.js';
import { cancelTask } from './api/task-control.js';
import type { StreamCredentials } from './api/stream-credentials.js';
import type { Registry } from './executors/registry.js';
import type { Executor } from './executors/types.js';
import { createAgentExecutor, type RunChildTask } from './executors/agent/index.js';
import { historyReadChars } from './executors/agent/history.js';
import { openaiRoutes, type FollowedEvent } from './api/routes/openai.js';
import type { StreamSlots } from './api/routes/stream.js';
import type { Metrics } from './api/metrics.js';
import { RATE_LIMIT_HEADERS } from './api/rate-limit.js';

interface Wiring {
  db: Db;
  hub: EventHub;
  signals?: Signals;
  /** The stream routes' per-principal cap, which streaming chat completions count against too. */
  streamSlots?: StreamSlots;
}

/** Resolves once the task's STREAM_END is in the log (replayed or live); rejects on abort. */
export function waitForTaskEnd(hub: EventHub, tenantId: string, taskId: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      stop();
      reject(signal.reason);
    };
    const stop = hub.subscribe(taskId, tenantId, 0, {
      deliver: (e) => {
        if (e.type !== 'STREAM_END') return;
        stop();
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      fail: (err) => {
        stop();
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Follows a task's events (replay, then live) until STREAM_END or abort. */
export async function* followTask(hub: EventHub, tenantId: string, taskId: string, signal: AbortSignal): AsyncIterable<FollowedEvent> {
  const queue: FollowedEvent[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  const stop = hub.subscribe(taskId, tenantId, 0, {
    deliver: (event, ephemeral) => {
      queue.push({ event, ephemeral });
      wake?.();
    },
    fail: (err) => {
      failure = err;
      wake?.();
    },
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  try {
    for (;;) {
      while (queue.length) {
        const e = queue.shift()!;
        yield e;
        if (e.event.type === 'STREAM_END') return;
      }
      if (failure) throw failure;
      if (signal.aborted) return;
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
  } finally {
    stop();
    signal.removeEventListener('abort', onAbort);
  }
}

/** run_task: a definition task of the same tenant, submitted once per tool call, awaited. */
function childTaskRunner(config: Config, w: Wiring & { registry: Registry }): RunChildTask {
  return async (tenantId, userId, definitionId, input, signal, opts) => {
    // as a submit does: a definition another process created a moment ago is found, not "no task definition"
    const def = await w.registry.getFresh(tenantId, definitionId);
    if (!def) throw new Error(`no task definition ${definitionId}`);
    const violation = w.registry.validateInput(def, input);
    if (violation) throw new Error(`input ${violation.path} ${violation.reason}`);
    // a replayed step finds the child it submitted before instead of submitting another
    const tag = opts ? `child:${createHash('sha256').update(opts.idempotencyKey).digest('hex').slice(0, 40)}` : undefined;
    let id = tag ? (await tasksList(w.db, { tenantId, tag, limit: 1, offset: 0 }))[0]?.id : undefined;
    if (!id) {
      const childId = newTaskId();
      id = childId;
      const rp = def.retry_policy ?? {};
      await w.db.transaction((tx) =>
        tasksInsertMany(tx, [{
          id: childId, tenant_id: tenantId, user_id: userId, session_id: null, kind: 'definition', task_definition_id: def.id, query: '',
          input, context: {}, options: {}, mode: null, priority: priorityRank((def.priority as Priority | undefined) ?? 'medium'),
          max_attempts: (rp.max_retries ?? DEFAULT_RETRY_POLICY.maxRetries) + 1,
          retry_interval_ms: rp.retry_interval_ms ?? DEFAULT_RETRY_POLICY.retryIntervalMs,
          backoff_multiplier: rp.backoff_multiplier ?? DEFAULT_RETRY_POLICY.backoffMultiplier,
          timeout_ms: def.timeout_ms ?? config.defaultTimeoutMs, run_at: null,
          metadata: { source: 'run_task', parent_task_id: opts?.parentTaskId ?? null }, tags: tag ? [tag] : [], workflow_instance_id: opts?.parentTaskId ?? null,
        }]),
      );
      w.signals?.work();
    }
    await waitForTaskEnd(w.hub, tenantId, id, signal);
    const row = await tasksGet(w.db, tenantId, id);
    if (row?.status !== 'COMPLETED') throw new Error(`child task ${id} ended ${row?.status ?? 'missing'}${row?.error ? `: ${row.error}` : ''}`);
    return row.output ?? row.result;
  };
}

/** The agent executor with its production deps. Needs config.llm for anything but templates. */
export function agentExecutorFor(config: Config, llm: LlmConfig | undefined, w: Wiring & { registry: Registry }): Executor {
  return createAgentExecutor({
    llm,
    loadSessionHistory: async (tenantId, sessionId, beforeTaskId) => {
      const [turns, account] = await Promise.all([
        agentSessionTurns(w.db, { tenantId, sessionId, beforeTaskId, ...(llm ? { maxChars: historyReadChars(llm.historyBudgetTokens) } : {}) }),
        agentSessionAccount(w.db, { tenantId, sessionId }),
      ]);
      return { turns, tokens_used: account?.tokens_used ?? 0, token_budget: account?.token_budget ?? null };
    },
    setSessionBudget: async (tenantId, sessionId, tokenBudget) => {
      await agentSessionSetBudget(w.db, { tenantId, sessionId, tokenBudget });
    },
    recordSessionUsage: async (tenantId, sessionId, u) => {
      await agentSessionAddUsage(w.db, { tenantId, sessionId, tokens: u.tokens, costUsd: u.cost_usd, reservedTokens: u.reserved_tokens });
    },
    reserveSessionTokens: (tenantId, sessionId, tokens, budget) => agentSessionReserveTokens(w.db, { tenantId, sessionId, tokens, budget }),
    releaseSessionTokens: async (tenantId, sessionId, tokens) => {
      await agentSessionReleaseTokens(w.db, { tenantId, sessionId, tokens });
    },
    runChildTask: childTaskRunner(config, w),
    listDefinitions: async (tenantId) => w.registry.list(tenantId).map((d) => ({ id: d.id, description: d.description, input_schema: d.input_schema })),
    http: { allowList: config.httpAllowList, timeoutMs: config.httpTimeoutMs, maxResponseBytes: config.httpMaxResponseBytes },
  });
}

/** The rate-limit headers of an in-process answer, to pass on to the caller. */
function limitHeaders(headers: Record<string, unknown>, names: readonly string[] = RATE_LIMIT_HEADERS): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of names) {
    const v = headers[h];
    if (typeof v === 'string') out[h] = v;
  }
  return out;
}

/**
 * Re-issues a request to a canonical route in-process with the caller's credentials; answers its
 * body and rate-limit headers, or throws its error with them (and WWW-Authenticate).
 */
async function injectAs(
  req: FastifyRequest, method: 'POST', url: string, payload: unknown,
): Promise<{ body: Record<string, any>; headers: Record<string, string> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const h of ['authorization', 'x-api-key', 'traceparent', 'x-request-id']) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  const res = await req.server.inject({ method, url, headers, payload: JSON.stringify(payload) });
  const body = res.json() as Record<string, any>;
  if (res.statusCode >= 400) {
    const err = body?.error ?? {};
    const passOn = limitHeaders(res.headers, ['www-authenticate', ...RATE_LIMIT_HEADERS]);
    throw new ApiError((err.code ?? 'INTERNAL_ERROR') as ErrorCode, err.message, err.details, passOn);
  }
  return { body, headers: limitHeaders(res.headers) };
}

/** The OpenAI-compatible routes over the canonical submit/cancel routes and the event hub. */
export function openaiPluginFor(llm: LlmConfig | undefined, w: Wiring & { signals: Signals; credentials?: StreamCredentials; shutdownGraceMs?: number; stallMs?: number; metrics?: Metrics }) {
  return openaiRoutes({
    llm,
    metrics: w.metrics,
    shutdownGraceMs: w.shutdownGraceMs,
    stallMs: w.stallMs,
    streamSlots: w.streamSlots,
    watchCredentials: w.credentials && ((p, startMs, close) => w.credentials!.watch(p, startMs, close)),
    submitAgentTask: async (_p, body: SubmitTaskBody, req) => {
      const { body: out, headers } = await injectAs(req, 'POST', '/api/v1/tasks', body);
      return { taskId: String(out.task_id), sessionId: out.session_id ?? null, headers };
    },
    followTask: (p, taskId, signal) => followTask(w.hub, p.tenantId, taskId, signal),
    getTask: async (p, taskId) => {
      const row = await tasksGet(w.db, p.tenantId, taskId);
      if (!row) return undefined;
      const usage = row.usage as { input_tokens: number; output_tokens: number; total_tokens: number; estimated_cost: number } | null;
      return { status: row.status, result: row.result, error: row.error, usage, model_used: row.model_used };
    },
    cancelTask: async (p, taskId, reason) => {
      // the server's own, not a request of the caller's: neither its rate budget nor its
      // credential (revoked, the reason its stream was closed) may keep the task running
      await cancelTask(w, p.tenantId, taskId, { reason, by: p.userId }).catch(() => undefined);
    },
  });
}
