// Prometheus metrics, one registry per app instance (so tests can build several apps).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({ name: 'taskgate_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  readonly httpDuration = new Histogram({
    name: 'taskgate_http_request_duration_seconds', help: 'HTTP request duration', labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry],
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
  readonly streamClients = new Gauge({ name: 'taskgate_stream_clients', help: 'Open SSE/WebSocket streams', registers: [this.registry] });

  /** taskOutcomes' child per status: an increment with a label object validates and hashes it every time. */
  readonly #outcomeByStatus = new Map<string, { inc(): void }>();

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'taskgate_' });
  }

  /** Counts one attempt outcome (a worker's hot path: once per task). */
  countOutcome(status: string): void {
    let child = this.#outcomeByStatus.get(status);
    if (!child) this.#outcomeByStatus.set(status, (child = this.taskOutcomes.labels(status)));
    child.inc();
  }
}
