// JSON Schema validation for task definitions' input and output (2020-12 by default, draft-07
// when a schema says so). Compiled validators are cached per schema object.
import { Ajv2020 } from 'ajv/dist/2020.js';
import AjvDraft07 from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ErrorObject, ValidateFunction } from 'ajv';

// ajv-formats is CommonJS with a default export
const addFormats = addFormatsModule as unknown as (ajv: unknown) => void;
const Ajv07 = AjvDraft07 as unknown as typeof import('ajv').default;

const opts = { allErrors: false, strict: false, validateFormats: true } as const;
const ajv2020 = new Ajv2020(opts);
const ajv07 = new Ajv07(opts);
addFormats(ajv2020);
addFormats(ajv07);

const cache = new WeakMap<object, ValidateFunction>();

export class SchemaError extends Error {
  override name = 'SchemaError';
}

export function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  let fn = cache.get(schema);
  if (fn) return fn;
  const draft07 = typeof schema.$schema === 'string' && schema.$schema.includes('draft-07');
  try {
    fn = (draft07 ? ajv07 : ajv2020).compile(schema);
  } catch (err) {
    throw new SchemaError(`invalid JSON Schema: ${(err as Error).message}`, { cause: err });
  }
  cache.set(schema, fn);
  return fn;
}

/**
 * Forgets a schema's compiled validator: Ajv keeps every schema it compiled, so a tenant's
 * definition that is replaced or deleted releases its schemas (a validator already in use keeps
 * working).
 */
export function releaseSchema(schema: object): void {
  cache.delete(schema);
  ajv2020.removeSchema(schema);
  ajv07.removeSchema(schema);
}

export interface SchemaViolation {
  path: string;
  reason: string;
}

function describe(e: ErrorObject): SchemaViolation {
  let path = e.instancePath || '/';
  if (e.keyword === 'required') path = `${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}`;
  if (e.keyword === 'additionalProperties') path = `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`;
  return { path, reason: e.message ?? e.keyword };
}

/** Validates; returns the first violation (path as JSON Pointer) or undefined when valid. */
export function validateAgainst(schema: Record<string, unknown>, value: unknown): SchemaViolation | undefined {
  const fn = compileSchema(schema);
  if (fn(value)) return undefined;
  const first = fn.errors?.[0];
  return first ? describe(first) : { path: '/', reason: 'invalid' };
}
