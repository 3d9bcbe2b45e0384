// JSON Schema validation for task definitions' input and output (2020-12 by default, draft-07
// when a schema says so). Compiled validators are cached per schema object. Tenants' schemas (the
// admin API) compile apart: their regular expressions run on RE2 (linear time), since a pattern
// with catastrophic backtracking would stall every tenant's requests on the shared event loop.
import { Ajv2020 } from 'ajv/dist/2020.js';
import AjvDraft07 from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ErrorObject, Options, ValidateFunction } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types/index.js';
import { RE2JS } from 're2js';

// ajv-formats is CommonJS with a default export
const addFormats = addFormatsModule as unknown as (ajv: unknown) => void;
const Ajv07 = AjvDraft07 as unknown as typeof import('ajv').default;

/**
 * The most matching work (characters × RE2 instructions) one tenant pattern may do on one string:
 * RE2 is linear in the input but, once its DFA gives up, costs ~20 ns per instruction per
 * character on the event loop every tenant shares — `a[ab]{996}$` held it 5.3 s on a 256 KiB
 * string. 10^7 bounds a match at ~0.2 s: `^[a-z]+$` (6 instructions) still matches 1.6 million
 * characters, a 762-instruction email pattern 13,000. A longer string does not match.
 */
export const MAX_PATTERN_WORK = 10_000_000;

/** RE2 syntax (no lookaround, no backreferences), matched in time linear in the input. */
class Re2Pattern {
  readonly #re: RE2JS;
  readonly #maxLength: number;
  constructor(readonly pattern: string) {
    this.#re = RE2JS.compile(pattern);
    this.#maxLength = Math.floor(MAX_PATTERN_WORK / Math.max(1, this.#re.programSize()));
  }
  test(s: string): boolean {
    return s.length <= this.#maxLength && this.#re.test(s);
  }
  /** Ajv keys a compiled pattern by this: it must differ between patterns. */
  toString(): string {
    return `re2:${this.pattern}`;
  }
}
/** The size of the RE2 program a tenant's pattern compiles to (RE2JS programSize()), or why RE2 refuses it (its syntax error). */
export function compileRe2(pattern: string): number | { error: string } {
  try {
    return RE2JS.compile(pattern).programSize();
  } catch (err) {
    return { error: (err as Error).message };
  }
}
const re2: RegExpEngine = Object.assign((pattern: string) => new Re2Pattern(pattern), { code: 're2js' });

// ownProperties: `required: ["constructor"]` is not met by what every object inherits.
// logger: a schema that fails to compile is the caller's 400, not generated code on stderr.
const opts: Options = { allErrors: false, strict: false, validateFormats: true, ownProperties: true, logger: false };
// inlineRefs off: inlining every $ref target compiled a 29 KB schema of 1,000 refs in 61 s (0.6 s without)
// loopRequired: a `required` list checked in a loop, not unrolled into code — 240 subschemas of
// 100 required names each took 0.8 s to compile unrolled, 0.09 s so
const tenantOpts: Options = { ...opts, inlineRefs: false, loopRequired: 8, code: { regExp: re2 } };
/** One Ajv per draft and origin, made on first use: most processes never compile a draft-07 or a tenant's schema. */
const instances = new Map<string, Ajv2020>();
function ajvFor(draft07: boolean, tenantSchema: boolean): Ajv2020 {
  const key = `${draft07 ? '07' : '2020'}:${tenantSchema ? 'tenant' : 'trusted'}`;
  let ajv = instances.get(key);
  if (!ajv) {
    const o = tenantSchema ? tenantOpts : opts;
    ajv = draft07 ? (new Ajv07(o) as unknown as Ajv2020) : new Ajv2020(o);
    addFormats(ajv);
    instances.set(key, ajv);
  }
  return ajv;
}

let formats: ReadonlySet<string> | undefined;
/** The `format` names validation checks (ajv-formats' full set): any other would be ignored, as JSON Schema allows. */
export function knownFormats(): ReadonlySet<string> {
  return (formats ??= new Set(Object.keys(ajvFor(false, true).formats)));
}

const cache = new WeakMap<object, ValidateFunction>();
/** Schemas from tenants: compiled by the tenant instances whenever (and wherever) they compile. */
const tenantSchemas = new WeakSet<object>();

/** Marks a schema as a tenant's (before it first compiles). */
export function markTenantSchema(schema: object): void {
  tenantSchemas.add(schema);
}

export class SchemaError extends Error {
  override name = 'SchemaError';
}

export function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  let fn = cache.get(schema);
  if (fn) return fn;
  const draft07 = typeof schema.$schema === 'string' && schema.$schema.includes('draft-07');
  try {
    fn = ajvFor(draft07, tenantSchemas.has(schema)).compile(schema);
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
  for (const ajv of instances.values()) ajv.removeSchema(schema);
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

/** A schema whose references lead back to itself without descending into the value. */
export const ENDLESS_RECURSION = 'the schema refers back to itself without end for this value';

/**
 * Validates; returns the first violation (path as JSON Pointer) or undefined when valid. A schema
 * that recurses without end (`{"$ref": "#"}`, or a cycle only some values enter) is a violation,
 * not a stack overflow thrown at the caller.
 */
export function validateAgainst(schema: Record<string, unknown>, value: unknown): SchemaViolation | undefined {
  const fn = compileSchema(schema);
  try {
    if (fn(value)) return undefined;
  } catch (err) {
    if (err instanceof RangeError) return { path: '/', reason: ENDLESS_RECURSION };
    throw err;
  }
  const first = fn.errors?.[0];
  return first ? describe(first) : { path: '/', reason: 'invalid' };
}
