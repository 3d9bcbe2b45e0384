// What the HTTP layer needs from the rest of the process, injected by main.ts (the API never
// imports the engine: a submit is an insert plus a wake-up hint).
import type { Db } from '../storage/db.js';
import type { EventHub } from '../events/hub.js';
import type { Signals } from '../events/signals.js';
import type { LocalDispatch } from './submit-batcher.js';
import type { Config } from '../config/index.js';
import type { Metrics } from './metrics.js';
import type { StorageHealth } from '../storage/unavailable.js';

export interface DefinitionView {
  id: string;
  name: string;
  description: string;
  version: string;
  kind: string;
  type?: string;
  input_schema: Record<string, unknown>;
  output_schema: Record<string, unknown>;
  priority?: string;
  timeout_ms?: number;
  retry_policy?: { max_retries?: number; retry_interval_ms?: number; backoff_multiplier?: number };
  approval?: { required: boolean; timeout_ms?: number };
  config?: Record<string, unknown>;
}

/** The task-definition catalogue as the API sees it (implemented by executors/Registry). */
export interface DefinitionCatalog {
  get(tenantId: string, id: string): DefinitionView | undefined;
  /** get(), but a miss looks in the database (a definition created on another process a moment ago). */
  getFresh(tenantId: string, id: string): Promise<DefinitionView | undefined>;
  list(tenantId: string): DefinitionView[];
  /** Shipped or --tasks-dir (every tenant has it), not a tenant's own. */
  isBuiltIn(id: string): boolean;
  validateInput(def: DefinitionView, input: unknown): { path: string; reason: string } | undefined;
  hasExecutor(kind: string): boolean;
}

/** Tenants' own definitions (PUT/DELETE /api/v1/definitions/{id}; implemented by TenantDefinitionSync). */
export interface DefinitionAdmin {
  save(tenantId: string, id: string, body: Record<string, unknown>): Promise<
    | { ok: true; created: boolean; definition: DefinitionView }
    | { ok: false; reason: 'invalid'; message: string; path: string | undefined }
    | { ok: false; reason: 'built_in' | 'limit'; message: string }
  >;
  /** False when the tenant has no definition by that id. */
  remove(tenantId: string, id: string): Promise<boolean>;
  isBuiltIn(id: string): boolean;
}

export interface AppDeps {
  config: Config;
  db: Db;
  hub: EventHub;
  signals: Signals;
  catalog: DefinitionCatalog;
  /** Absent: PUT/DELETE of definitions answer 405. */
  definitions?: DefinitionAdmin;
  metrics: Metrics;
  version: string;
  /** This process's worker, when it runs one: submits it can take at once skip the queue (direct dispatch). */
  dispatch?: LocalDispatch;
  /** Extra readiness checks (Redis, …); database and migrations are always checked. */
  readinessChecks?: (() => Promise<void>)[];
  /** Checks /readiness reports (`degraded: …` when failing) without answering 503 for them. */
  advisoryChecks?: (() => Promise<void>)[];
  /** The process's storage failures for /readiness (its worker notes its own in it too); one of the app's own otherwise. */
  storage?: StorageHealth;
}
