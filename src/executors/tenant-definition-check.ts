// The check a tenant's own task definition passes, as it is written (PUT /api/v1/definitions/{id})
// and as a stored one loads: a declarative kind, that kind's config keys, and schemas held to
// tenant-schema-limits.ts.
import { checkDefinition, DefinitionError } from './registry.js';
import { compileSchema, ENDLESS_RECURSION, knownFormats, markTenantSchema, validateAgainst } from './schema.js';
import type { TaskDefinition } from './types.js';
import { isFramingHeader } from './http-client.js';
import { expandTemplate } from './http.js';
import { expandedSchemaSize, MAX_EXPANDED_SUBSCHEMAS, newWalk, schemaViolation } from './tenant-schema-limits.js';

/** The kinds a tenant may define through the admin API, with the `config` keys each reads. */
export const DECLARATIVE_KINDS: Readonly<Record<string, readonly string[]>> = {
  http: ['method', 'url', 'headers'],
  agent: ['prompt', 'system', 'mode', 'model_tier'],
  approval: [],
};

/** Values every schema is tried on once compiled: a `$ref` cycle that consumes nothing shows on all of them. */
const PROBES: readonly unknown[] = [null, true, 0, '', [], {}];

/** Whether an http definition's url template parses as a URL with its placeholders filled. */
function urlFillable(template: string): boolean {
  return ['1', ''].some((fill) => URL.canParse(expandTemplate(template, new Proxy({}, { get: () => fill }))));
}

/**
 * Checks a tenant's definition (the admin API's body, or a stored row): a declarative kind, its
 * executor's config keys only, schemas that compile and hold nothing schemaViolation() refuses.
 */
export function checkTenantDefinition(id: string, body: Record<string, unknown>, opts: { compile?: boolean } = {}): TaskDefinition {
  const kind = body.kind;
  if (typeof kind !== 'string' || !Object.hasOwn(DECLARATIVE_KINDS, kind)) {
    throw new DefinitionError(`kind must be one of ${Object.keys(DECLARATIVE_KINDS).join(', ')}`, 'kind');
  }
  const config = (body.config ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(config)) {
    if (!DECLARATIVE_KINDS[kind]!.includes(key)) throw new DefinitionError(`config.${key} is not a setting of kind ${kind}`, `config.${key}`);
  }
  if (kind === 'http' && (typeof config.url !== 'string' || !/^https?:\/\//i.test(config.url))) {
    // the call belongs to the definition: input only fills its {{input.…}} placeholders and the body
    throw new DefinitionError('kind http needs config.url, an http(s) URL (with {{input.field}} placeholders for values from the input)', 'config.url');
  }
  // a URL once its placeholders are filled (by a digit, which fits a host, a port and a path, or
  // by nothing), or every task of it would fail. Checked as a definition is written: a stored one
  // loads as before (it ran, or its tasks failed, under the version that took it)
  if (kind === 'http' && opts.compile !== false && !urlFillable(config.url as string)) {
    throw new DefinitionError('config.url is not a valid URL (with its {{input.field}} placeholders filled)', 'config.url');
  }
  for (const name of Object.keys((config.headers ?? {}) as Record<string, unknown>)) {
    // refused at run time anyway (http-client.ts): say so when the definition is written
    if (isFramingHeader(name)) throw new DefinitionError(`config.headers.${name} cannot be set: the HTTP client sets the message framing and connection headers`, `config.headers.${name}`);
  }
  for (const field of ['input_schema', 'output_schema'] as const) {
    const schema = body[field];
    const bad = schemaViolation(schema, field, newWalk(opts.compile === false ? undefined : knownFormats()));
    if (bad) throw new DefinitionError(`${bad.path} ${bad.why}`, bad.path);
    if (expandedSchemaSize(schema) > MAX_EXPANDED_SUBSCHEMAS) {
      throw new DefinitionError(`${field}: its $refs expand to more than ${MAX_EXPANDED_SUBSCHEMAS} subschemas, each of which a failing validation may visit (a $defs entry referred to from several branches at each of many levels doubles them per level)`, field);
    }
    if (schema && typeof schema === 'object') markTenantSchema(schema);
    if (opts.compile === false) continue;
    try {
      compileSchema((schema ?? {}) as Record<string, unknown>);
    } catch (err) {
      throw new DefinitionError(`${field}: ${(err as Error).message}`, field);
    }
    if (PROBES.some((v) => validateAgainst((schema ?? {}) as Record<string, unknown>, v)?.reason === ENDLESS_RECURSION)) {
      throw new DefinitionError(`${field}: ${ENDLESS_RECURSION} (a $ref cycle that never descends into the value)`, field);
    }
  }
  const { handler: _handler, ...rest } = body as Partial<TaskDefinition>;
  return checkDefinition({ ...rest, id, kind } as TaskDefinition, `definition ${id}`, opts);
}
