// Prometheus metrics, one registry per app instance (so tests can build several apps).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueStats } from '../storage/queries/tasks.js';

/** Scrapes closer together than this share one queue query (/metrics may be public). */
const QUEUE_STATS_MAX_AGE_MS = 1_000;

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({ name: 'taskgate_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  readonly httpDuration = new Histogram({
    name: 'taskgate_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry],
  });
  readonly httpAborted = new Counter({
    name: 'taskgate_http_requests_aborted_total', help: 'HTTP requests the client abandoned before the answer', labelNames: ['method', 'route'], registers: [this.registry],
  });
  readonly tasksSubmitted = new Counter({ name: 'taskgate_tasks_submitted_total', help: 'Tasks submitted', labelNames: ['kind'], registers: [this.registry] });
  readonly submitBatchSize = new Histogram({ name: 'taskgate_submit_batch_size', help: 'Tasks per submit transaction', buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [this.registry] });
  readonly tasksClaimed = new Counter({ name: 'taskgate_tasks_claimed_total', help: 'Attempts started', registers: [this.registry] });
  readonly taskOutcomes = new Counter({ name: 'taskgate_task_outcomes_total', help: 'Attempt outcomes', labelNames: ['status'], registers: [this.registry] });
  /** Counts attempts running in this process; read when the metrics are scraped (main.ts sets it). */
  activeAttemptsSource: () => number = () => 0;
  readonly activeAttempts: Gauge = new Gauge({
    name: 'taskgate_worker_active_attempts', help: 'Attempts running in this process', registers: [this.registry],
    collect: (): void => this.activeAttempts.set(this.activeAttemptsSource()),
  });
  readonly retentionDeleted = new Counter({
    name: 'taskgate_retention_deleted_total', help: 'Rows deleted by the retention sweep', labelNames: ['kind'], registers: [this.registry],
  });
  readonly streamClients = new Gauge({ name: 'taskgate_stream_clients', help: 'Open SSE/WebSocket streams and streamed chat completions', registers: [this.registry] });
  readonly streamsClosed = new Counter({
    name: 'taskgate_streams_closed_total', help: 'SSE/WebSocket streams and streamed chat completions (transport chat) ended, by why', labelNames: ['transport', 'reason'], registers: [this.registry],
  });

  /** Reads the queue from the database (main.ts sets it); unset or failing, the queue gauges read NaN. */
  queueSource: (() => Promise<QueueStats>) | undefined;
  #queueRead: { at: number; stats: Promise<QueueStats | undefined> } | undefined;
  readonly queueDepth: Gauge = new Gauge({
    name: 'taskgate_queue_depth', help: 'QUEUED tasks across all tenants: ready (due now) or scheduled (later run_at, retry backoff)',
    labelNames: ['state'], registers: [this.registry],
    collect: async (): Promise<void> => {
      const q = await this.#queueStats();
      this.queueDepth.set({ state: 'ready' }, q?.ready ?? NaN);
      this.queueDepth.set({ state: 'scheduled' }, q?.scheduled ?? NaN);
    },
  });
  readonly queueOldest: Gauge = new Gauge({
    name: 'taskgate_queue_oldest_ready_seconds', help: 'How long the oldest ready QUEUED task has been due (0: none)', registers: [this.registry],
    collect: async (): Promise<void> => {
      const q = await this.#queueStats();
      this.queueOldest.set(q?.oldestReadyS ?? NaN);
    },
  });

  /** taskOutcomes' child per status: an increment with a label object validates and hashes it every time. */
  readonly #outcomeByStatus = new Map<string, { inc(): void }>();

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'taskgate_' });
  }

  /** One database read shared by both queue gauges and by scrapes within a second; NaN if it failed. */
  #queueStats(): Promise<QueueStats | undefined> {
    const source = this.queueSource;
    if (!source) return Promise.resolve(undefined);
    const now = Date.now();
    if (!this.#queueRead || now - this.#queueRead.at > QUEUE_STATS_MAX_AGE_MS) {
      this.#queueRead = { at: now, stats: source().catch(() => undefined) };
    }
    return this.#queueRead.stats;
  }

  /** Counts one attempt outcome (a worker's hot path: once per task). */
  countOutcome(status: string): void {
    let child = this.#outcomeByStatus.get(status);
    if (!child) this.#outcomeByStatus.set(status, (child = this.taskOutcomes.labels(status)));
    child.inc();
  }
}
