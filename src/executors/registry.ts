// The catalogue of task definitions (shipped, modules from --tasks-dir, and each tenant's own from
// the admin API) and the executors that run them by kind. TenantDefinitionSync
// (tenant-definitions.ts) keeps the tenants' part in memory: get() is synchronous and on the submit
// path.
import { readdirSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Type } from 'typebox';
import { DefinitionBody } from '../contract/definitions.js';
import { ID_PATTERN } from '../domain/ids.js';
import { compileSchema, validateAgainst, type SchemaViolation } from './schema.js';
import type { ExecutionResult, Executor, TaskDefinition } from './types.js';

export class DefinitionError extends Error {
  override name = 'DefinitionError';
  /** The offending field of the definition (dotted), when one is to blame. */
  readonly path: string | undefined;
  constructor(message: string, path?: string) {
    super(message);
    this.path = path;
  }
}


/**
 * A definition's task settings, as PUT /api/v1/definitions takes them: a --tasks-dir module's
 * were used unchecked (`priority: 'HIGH'` or `max_retries: -1` failed every submit with a 500,
 * `timeout_ms: 3e9` with a 400 blaming the request).
 */
const SETTINGS = (() => {
  const { priority, timeout_ms, retry_policy, approval } = DefinitionBody.properties;
  return Type.Object({ priority, timeout_ms, retry_policy, approval }) as unknown as Record<string, unknown>;
})();

/** Checks a definition and fills its defaults; `compile: false` leaves its schemas to compile on first use. */
export function checkDefinition(def: TaskDefinition, source: string, opts: { compile?: boolean } = {}): TaskDefinition {
  if (!def || typeof def !== 'object') throw new DefinitionError(`${source}: no definition exported`);
  if (typeof def.id !== 'string' || !ID_PATTERN.test(def.id)) throw new DefinitionError(`${source}: definition id must match ${ID_PATTERN}`);
  if (typeof def.kind !== 'string') throw new DefinitionError(`${source}: definition ${def.id} has no kind`);
  if (def.kind === 'function' && typeof def.handler !== 'function') throw new DefinitionError(`${source}: function definition ${def.id} has no handler`);
  // seed 003 writes priorities in capitals ("MEDIUM"), as submits may
  const priority = typeof def.priority === 'string' ? (def.priority.toLowerCase() as TaskDefinition['priority']) : def.priority;
  const bad = validateAgainst(SETTINGS, { priority, timeout_ms: def.timeout_ms, retry_policy: def.retry_policy, approval: def.approval });
  if (bad) {
    const at = bad.path.slice(1).replace(/\//g, '.');
    throw new DefinitionError(`${source}: definition ${def.id}: ${at} ${bad.reason}`, at);
  }
  if (opts.compile !== false) {
    compileSchema(def.input_schema ?? {});
    compileSchema(def.output_schema ?? {});
  }
  return {
    ...def,
    ...(priority === undefined ? {} : { priority }),
    name: def.name ?? def.id, description: def.description ?? '', version: def.version ?? '1.0.0',
    input_schema: def.input_schema ?? {}, output_schema: def.output_schema ?? {},
  };
}

export class Registry {
  /** Shipped and --tasks-dir definitions: every tenant sees them, and no tenant may replace them. */
  readonly #definitions = new Map<string, TaskDefinition>();
  /** Tenant id → that tenant's own definitions (admin API). */
  readonly #tenants = new Map<string, Map<string, TaskDefinition>>();
  readonly #executors = new Map<string, Executor>();

  addExecutor(executor: Executor): this {
    this.#executors.set(executor.kind, executor);
    return this;
  }

  addDefinition(def: TaskDefinition, source = 'built-in'): this {
    const checked = checkDefinition(def, source);
    this.#definitions.set(checked.id, checked);
    return this;
  }

  /** A definition visible to the tenant: a built-in one, else the tenant's own. */
  get(tenantId: string, id: string): TaskDefinition | undefined {
    return this.#definitions.get(id) ?? this.#tenants.get(tenantId)?.get(id);
  }

  list(tenantId: string): TaskDefinition[] {
    const own = [...(this.#tenants.get(tenantId)?.values() ?? [])].filter((d) => !this.#definitions.has(d.id));
    return [...this.#definitions.values(), ...own].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Shipped or --tasks-dir: not a tenant's to replace or delete. */
  isBuiltIn(id: string): boolean {
    return this.#definitions.has(id);
  }

  /** The tenant's own definitions (by id), or undefined when it has none. */
  tenantDefinitions(tenantId: string): ReadonlyMap<string, TaskDefinition> | undefined {
    return this.#tenants.get(tenantId);
  }

  tenantIds(): string[] {
    return [...this.#tenants.keys()];
  }

  /**
   * Looks a definition this process has not heard of up in the database, reloading its tenant's
   * own definitions when it is there (TenantDefinitionSync sets it).
   */
  #lookUp: ((tenantId: string, id: string) => Promise<void>) | undefined;

  setTenantLookUp(fn: (tenantId: string, id: string) => Promise<void>): void {
    this.#lookUp = fn;
  }

  /**
   * get() for a definition this process may not have heard of yet: another process created it a
   * moment ago and its hint has not been applied here. A miss costs one primary-key lookup, and a
   * reload of the tenant's own definitions if the id is stored. Used where a miss fails a request
   * or a task: a submit, a definition's GET, a worker's claimed task.
   */
  async getFresh(tenantId: string, id: string): Promise<TaskDefinition | undefined> {
    const def = this.get(tenantId, id);
    if (def || !this.#lookUp) return def;
    await this.#lookUp(tenantId, id);
    return this.get(tenantId, id);
  }

  /** Replaces the tenant's own set (an empty map forgets the tenant). Definitions must be checked. */
  setTenantDefinitions(tenantId: string, defs: Map<string, TaskDefinition>): void {
    if (defs.size) this.#tenants.set(tenantId, defs);
    else this.#tenants.delete(tenantId);
  }

  executor(kind: string): Executor | undefined {
    return this.#executors.get(kind);
  }

  hasExecutor(kind: string): boolean {
    return this.#executors.has(kind);
  }

  validateInput(def: TaskDefinition, input: unknown): SchemaViolation | undefined {
    return validateAgainst(def.input_schema, input);
  }

  validateOutput(def: TaskDefinition, output: unknown): SchemaViolation | undefined {
    return validateAgainst(def.output_schema, output);
  }

  /**
   * Imports every .js/.mjs module in `dir`; each exports `default` or `definition` (one or an
   * array). A directory that cannot be read, or a module that fails to load or to define, is one
   * DefinitionError naming it (the start prints it on one line).
   */
  async loadTasksDir(dir: string): Promise<string[]> {
    const abs = resolve(dir);
    let files: string[];
    try {
      files = readdirSync(abs).filter((f) => /\.(m?js)$/.test(f)).sort();
    } catch (err) {
      throw new DefinitionError(`cannot read the directory ${abs}: ${firstLine(err)}`);
    }
    const loaded: string[] = [];
    for (const file of files) {
      try {
        const mod = (await import(pathToFileURL(join(abs, file)).href)) as Record<string, unknown>;
        const exported = mod.default ?? mod.definition ?? mod.definitions;
        const defs = (Array.isArray(exported) ? exported : [exported]) as TaskDefinition[];
        for (const def of defs) {
          this.addDefinition({ ...def, kind: def.kind ?? 'function' }, file);
          loaded.push(def.id);
        }
      } catch (err) {
        // addDefinition's own errors name the file already
        throw err instanceof DefinitionError ? err : new DefinitionError(`${file}: ${(err as Error).name ?? 'Error'}: ${firstLine(err)}`);
      }
    }
    return loaded;
  }
}

/** Runs `function` definitions: the handler's return value is the output. */
export const functionExecutor: Executor = {
  kind: 'function',
  async run(task, ctx): Promise<ExecutionResult> {
    const handler = task.definition?.handler;
    if (!handler) throw new DefinitionError(`definition ${task.definition?.id} has no handler`);
    const output = await handler(task.input, ctx);
    return { output: output === undefined ? null : output };
  },
};

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
