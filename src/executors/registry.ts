// The catalogue of task definitions (shipped, plus modules from --tasks-dir) and the executors
// that run them by kind.
import { readdirSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compileSchema, validateAgainst, type SchemaViolation } from './schema.js';
import type { ExecutionResult, Executor, TaskDefinition } from './types.js';

export class DefinitionError extends Error {
  override name = 'DefinitionError';
}

const DEF_ID = /^[A-Za-z0-9:_\-.]{1,128}$/;

export function checkDefinition(def: TaskDefinition, source: string): TaskDefinition {
  if (!def || typeof def !== 'object') throw new DefinitionError(`${source}: no definition exported`);
  if (typeof def.id !== 'string' || !DEF_ID.test(def.id)) throw new DefinitionError(`${source}: definition id must match ${DEF_ID}`);
  if (typeof def.kind !== 'string') throw new DefinitionError(`${source}: definition ${def.id} has no kind`);
  if (def.kind === 'function' && typeof def.handler !== 'function') throw new DefinitionError(`${source}: function definition ${def.id} has no handler`);
  compileSchema(def.input_schema ?? {});
  compileSchema(def.output_schema ?? {});
  return {
    ...def,
    name: def.name ?? def.id, description: def.description ?? '', version: def.version ?? '1.0.0',
    input_schema: def.input_schema ?? {}, output_schema: def.output_schema ?? {},
  };
}

export class Registry {
  readonly #definitions = new Map<string, TaskDefinition>();
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

  /** Definitions visible to a tenant (tenant-specific ones come with the admin API). */
  get(_tenantId: string, id: string): TaskDefinition | undefined {
    return this.#definitions.get(id);
  }

  list(_tenantId: string): TaskDefinition[] {
    return [...this.#definitions.values()].sort((a, b) => a.id.localeCompare(b.id));
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

  /** Imports every .js/.mjs module in `dir`; each exports `default` or `definition` (one or an array). */
  async loadTasksDir(dir: string): Promise<string[]> {
    const abs = resolve(dir);
    const files = readdirSync(abs).filter((f) => /\.(m?js)$/.test(f)).sort();
    const loaded: string[] = [];
    for (const file of files) {
      const mod = (await import(pathToFileURL(join(abs, file)).href)) as Record<string, unknown>;
      const exported = mod.default ?? mod.definition ?? mod.definitions;
      const defs = (Array.isArray(exported) ? exported : [exported]) as TaskDefinition[];
      for (const def of defs) {
        this.addDefinition({ ...def, kind: def.kind ?? 'function' }, file);
        loaded.push(def.id);
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
