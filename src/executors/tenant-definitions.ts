// Tenants' own task definitions (PUT/DELETE /api/v1/definitions/{id}): declarative kinds only (checked
// by tenant-definition-check.ts), stored in tenant_definitions (migration 0008), kept in every process's
// Registry and fresh across processes by a NOTIFY per changed tenant plus a periodic full reload.
import type { Db } from '../storage/db.js';
import type { Signals } from '../events/signals.js';
import {
  tenantDefinitionsDelete, tenantDefinitionsExists, tenantDefinitionsListAllTenants, tenantDefinitionsListByTenant, tenantDefinitionsUpsert,
  tenantDefinitionsVersionsAllTenants, versionOfRows, type TenantDefinitionRow,
} from '../storage/queries/definitions.js';
import { DefinitionError, type Registry } from './registry.js';
import { releaseSchema } from './schema.js';
import type { TaskDefinition } from './types.js';
import { checkTenantDefinition } from './tenant-definition-check.js';

/** Definitions a tenant may hold at most: every process keeps every tenant's in memory. */
export const MAX_TENANT_DEFINITIONS = 500;
/** Default interval of the periodic check of tenant definitions (heals a lost NOTIFY), ms. */
export const DEFAULT_DEFINITIONS_REFRESH_MS = 15_000;
/**
 * One periodic check in this many reads every row; the others compare each tenant's row count and
 * newest update and reload only tenants that differ. (A replace whose transaction started before,
 * but committed after, another one's the check already saw can hide behind that newest time: the
 * full reload catches it, and the NOTIFY normally has long before.)
 */
export const FULL_RELOAD_EVERY = 8;

export type DefinitionSaveResult =
  | { ok: true; created: boolean; definition: TaskDefinition }
  | { ok: false; reason: 'invalid'; message: string; path: string | undefined }
  | { ok: false; reason: 'built_in' | 'limit'; message: string };

export interface TenantDefinitionSyncOptions {
  /** Hints to and from other processes (Signals' definitions kind); none: this process only. */
  signals?: Signals;
  /** Periodic check interval, ms (±20 % jitter). Default DEFAULT_DEFINITIONS_REFRESH_MS. */
  refreshIntervalMs?: number;
  onError?: (err: unknown) => void;
}

/**
 * The tenants' definitions: saved to and deleted from the database, applied to the Registry in
 * this process at once, and hinted to the others through Signals with the tenant id (each reloads
 * that tenant: one indexed query). A periodic check every ~15 s heals a lost hint: it reloads the
 * tenants whose row count or newest update moved, and every FULL_RELOAD_EVERY-th check all of them.
 * Unchanged rows keep their definition object, so a reload does not compile their schemas again.
 */
export class TenantDefinitionSync {
  readonly #db: Db;
  readonly #registry: Registry;
  readonly #opts: TenantDefinitionSyncOptions;
  /** tenant → id → the stored JSON it was built from. */
  readonly #stamps = new Map<string, Map<string, string>>();
  /**
   * Bumped per tenant by every local write, every applied reload and every start of a tenant's
   * reload: a reload applies only if its tenant's epoch did not move while it read.
   */
  readonly #epoch = new Map<string, number>();
  /** tenant → its latest reload (refreshTenant) while one runs. */
  readonly #reading = new Map<string, Promise<void>>();
  /** tenant → versionOfRows() of its last applied load (absent: no rows). */
  readonly #versions = new Map<string, string>();
  #checks = 0;
  #state: 'idle' | 'running' | 'stopped' = 'idle';
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(db: Db, registry: Registry, opts: TenantDefinitionSyncOptions) {
    this.#db = db;
    this.#registry = registry;
    this.#opts = opts;
  }

  /** Loads every tenant's definitions, then listens for hints and reloads periodically. */
  async start(): Promise<void> {
    if (this.#state !== 'idle') return;
    this.#state = 'running';
    this.#registry.setTenantLookUp((tenantId, id) => this.refreshIfStored(tenantId, id));
    await this.refreshAll();
    this.#unsubscribe = this.#opts.signals?.onDefinitions((tenantId) => void this.refreshTenant(tenantId));
    this.#scheduleRefresh();
  }

  stop(): void {
    this.#state = 'stopped';
    clearTimeout(this.#timer);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #scheduleRefresh(): void {
    if (this.#state !== 'running') return;
    const base = this.#opts.refreshIntervalMs ?? DEFAULT_DEFINITIONS_REFRESH_MS;
    const check = () => (++this.#checks % FULL_RELOAD_EVERY === 0 ? this.refreshAll() : this.refreshChanged());
    this.#timer = setTimeout(() => void check().finally(() => this.#scheduleRefresh()), base * (0.8 + Math.random() * 0.4));
    this.#timer.unref();
  }

  isBuiltIn(id: string): boolean {
    return this.#registry.isBuiltIn(id);
  }

  /**
   * Creates or replaces the tenant's definition `id` from an admin API body. The new set is
   * installed at once, then read back: writes of one tenant commit in order (an advisory lock) but
   * their answers come back in any order, and two concurrent saves of one id installed in answer
   * order left this process serving the older one (until the periodic check) — the read, started
   * after this commit, is applied unless a later one started meanwhile (the epoch).
   */
  async save(tenantId: string, id: string, body: Record<string, unknown>): Promise<DefinitionSaveResult> {
    if (this.#registry.isBuiltIn(id)) return { ok: false, reason: 'built_in', message: `task definition ${id} is built in (shipped or --tasks-dir) and cannot be changed` };
    let def: TaskDefinition;
    try {
      def = checkTenantDefinition(id, body);
    } catch (err) {
      if (err instanceof DefinitionError) return { ok: false, reason: 'invalid', message: err.message, path: err.path };
      throw err;
    }
    const { id: _id, ...stored } = body;
    const row = await tenantDefinitionsUpsert(this.#db, { tenantId, id, definition: stored, maxPerTenant: MAX_TENANT_DEFINITIONS });
    if (!row) return { ok: false, reason: 'limit', message: `a tenant holds at most ${MAX_TENANT_DEFINITIONS} task definitions; delete one first` };
    this.#bump(tenantId);
    const defs = new Map(this.#registry.tenantDefinitions(tenantId));
    defs.set(id, def);
    this.#install(tenantId, defs);
    this.#stampsOf(tenantId).set(id, JSON.stringify(row.definition));
    this.#opts.signals?.definitions(tenantId);
    await this.refreshTenant(tenantId);
    return { ok: true, created: row.created, definition: def };
  }

  /** Deletes the tenant's definition `id`; false when the tenant has none by that id. */
  async remove(tenantId: string, id: string): Promise<boolean> {
    const deleted = await tenantDefinitionsDelete(this.#db, { tenantId, id });
    this.#bump(tenantId);
    const defs = new Map(this.#registry.tenantDefinitions(tenantId));
    defs.delete(id);
    this.#install(tenantId, defs);
    this.#stamps.get(tenantId)?.delete(id);
    if (deleted) this.#opts.signals?.definitions(tenantId);
    await this.refreshTenant(tenantId);
    return deleted;
  }

  /**
   * Reloads one tenant's definitions (on another process's hint, or to find one). Never rejects.
   * Resolves once what it read — or what a reload of the tenant started while it read, which
   * applies instead — is installed: a caller looking a definition up (getFresh) reads the registry
   * next. Several tasks of a new definition claimed at once each started one; the earlier ones
   * returned with nothing installed, and their tasks failed for good ("no longer exists").
   */
  async refreshTenant(tenantId: string): Promise<void> {
    const epoch = this.#bump(tenantId);
    const read = (async () => {
      try {
        const rows = await tenantDefinitionsListByTenant(this.#db, tenantId);
        if (this.#epochOf(tenantId) === epoch) this.#apply(tenantId, rows);
      } catch (err) {
        this.#opts.onError?.(err);
      }
    })();
    this.#reading.set(tenantId, read);
    let mine = read;
    for (;;) {
      await mine;
      const latest = this.#reading.get(tenantId);
      if (!latest || latest === mine) break;
      mine = latest;
    }
    if (this.#reading.get(tenantId) === mine) this.#reading.delete(tenantId);
  }

  /**
   * Reloads the tenant's definitions if `id` is among them in the database (one primary-key
   * lookup otherwise: an unknown id costs no more). Never rejects.
   */
  async refreshIfStored(tenantId: string, id: string): Promise<void> {
    if (this.#registry.isBuiltIn(id)) return;
    let stored: boolean;
    try {
      stored = await tenantDefinitionsExists(this.#db, { tenantId, id });
    } catch (err) {
      this.#opts.onError?.(err);
      return;
    }
    if (stored) await this.refreshTenant(tenantId);
  }

  /** Reloads every tenant's definitions (start-up, and periodically). Never rejects. */
  async refreshAll(): Promise<void> {
    const epochs = new Map(this.#epoch);
    try {
      const rows = await tenantDefinitionsListAllTenants(this.#db);
      const byTenant = new Map<string, TenantDefinitionRow[]>();
      for (const r of rows) {
        const list = byTenant.get(r.tenant_id);
        if (list) list.push(r);
        else byTenant.set(r.tenant_id, [r]);
      }
      for (const t of new Set([...byTenant.keys(), ...this.#registry.tenantIds()])) {
        if (this.#epochOf(t) === (epochs.get(t) ?? 0)) this.#apply(t, byTenant.get(t) ?? []);
      }
    } catch (err) {
      this.#opts.onError?.(err);
    }
  }

  /**
   * Reloads the tenants whose definitions changed since their last load here (count or newest
   * update differ), reading only their rows. Never rejects.
   */
  async refreshChanged(): Promise<void> {
    try {
      const now = await tenantDefinitionsVersionsAllTenants(this.#db);
      for (const t of new Set([...now.keys(), ...this.#versions.keys(), ...this.#registry.tenantIds()])) {
        if (now.get(t) !== this.#versions.get(t)) await this.refreshTenant(t);
      }
    } catch (err) {
      this.#opts.onError?.(err);
    }
  }

  #apply(tenantId: string, rows: TenantDefinitionRow[]): void {
    this.#bump(tenantId);
    const version = versionOfRows(rows);
    if (version) this.#versions.set(tenantId, version);
    else this.#versions.delete(tenantId);
    const old = this.#registry.tenantDefinitions(tenantId);
    const oldStamps = this.#stamps.get(tenantId);
    const defs = new Map<string, TaskDefinition>();
    const stamps = new Map<string, string>();
    for (const row of rows) {
      const stamp = JSON.stringify(row.definition);
      const kept = oldStamps?.get(row.id) === stamp ? old?.get(row.id) : undefined;
      try {
        // rows were checked when written: their schemas compile on first use, not here (start-up cost)
        defs.set(row.id, kept ?? checkTenantDefinition(row.id, row.definition, { compile: false }));
        stamps.set(row.id, stamp);
      } catch (err) {
        this.#opts.onError?.(new Error(`tenant ${tenantId}: stored task definition ${row.id} is invalid and ignored`, { cause: err }));
      }
    }
    this.#install(tenantId, defs);
    if (stamps.size) this.#stamps.set(tenantId, stamps);
    else this.#stamps.delete(tenantId);
  }

  /** Puts the tenant's new set in the Registry and releases the compiled schemas of what it drops. */
  #install(tenantId: string, defs: Map<string, TaskDefinition>): void {
    const before = this.#registry.tenantDefinitions(tenantId);
    this.#registry.setTenantDefinitions(tenantId, defs);
    const still = new Set(defs.values());
    for (const def of before?.values() ?? []) {
      if (still.has(def)) continue;
      releaseSchema(def.input_schema);
      releaseSchema(def.output_schema);
    }
  }

  #stampsOf(tenantId: string): Map<string, string> {
    let m = this.#stamps.get(tenantId);
    if (!m) this.#stamps.set(tenantId, (m = new Map()));
    return m;
  }

  #epochOf(tenantId: string): number {
    return this.#epoch.get(tenantId) ?? 0;
  }

  #bump(tenantId: string): number {
    const next = this.#epochOf(tenantId) + 1;
    this.#epoch.set(tenantId, next);
    return next;
  }
}
