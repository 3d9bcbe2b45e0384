// Tenants' own task definitions (PUT/DELETE /api/v1/definitions/{id}): declarative kinds only,
// stored in tenant_definitions (migration 0008), kept in every process's Registry and fresh across
// processes by a NOTIFY per changed tenant plus a periodic full reload.
import type { Db } from '../storage/db.js';
import type { Signals } from '../events/signals.js';
import {
  tenantDefinitionsDelete, tenantDefinitionsExists, tenantDefinitionsListAllTenants, tenantDefinitionsListByTenant, tenantDefinitionsUpsert,
  tenantDefinitionsVersionsAllTenants, versionOfRows, type TenantDefinitionRow,
} from '../storage/queries/definitions.js';
import { checkDefinition, DefinitionError, type Registry } from './registry.js';
import { compileRe2, compileSchema, ENDLESS_RECURSION, knownFormats, markTenantSchema, releaseSchema, validateAgainst } from './schema.js';
import type { TaskDefinition } from './types.js';
import { isFramingHeader } from './http-client.js';
import { expandTemplate } from './http.js';

/** The kinds a tenant may define through the admin API, with the `config` keys each reads. */
export const DECLARATIVE_KINDS: Readonly<Record<string, readonly string[]>> = {
  http: ['method', 'url', 'headers'],
  agent: ['prompt', 'system', 'mode', 'model_tier'],
  approval: [],
};

/** Longest regular expression a tenant's schema may carry. */
const MAX_PATTERN_LENGTH = 500;
/**
 * Largest compiled RE2 program (RE2JS programSize(), about one instruction per character class or
 * literal after counted repetitions are expanded) a tenant's pattern may compile to. Matching is
 * linear in the input but, once RE2JS's DFA gives up, costs ~20 ns per live instruction per
 * character on the shared event loop: `^` + `[a-z]{0,1000}` x 30 (392 characters, 60,004
 * instructions) held it 47 s on a 250 KB string. Ordinary patterns stay far below: a UUID 40, an
 * ISO date-time 57, `^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$` 762; the
 * worst a 1,000-instruction pattern costs is ~5 s on a 256 KiB string (`a[ab]{996}$`).
 */
export const MAX_PATTERN_PROGRAM_SIZE = 1_000;
/**
 * RE2 instructions all of a schema's patterns may compile to together: each is compiled when the
 * schema is, on the shared event loop — 490 patterns of nearly 1,000 instructions (a 25 KB body)
 * held it 2.6 s. 50,000 is 65 e-mail patterns of 762.
 */
export const MAX_SCHEMA_PATTERN_PROGRAM = 50_000;
/**
 * Longest name list of a `dependentRequired` entry (draft-07: a `dependencies` entry that is an
 * array). Ajv compiles each list into one expression, whose code generation grows much faster than
 * the list: 400 names took 0.2 s, 600 0.9 s, 1,000 13 s and 2,000 overflowed the stack (a 15 KB
 * body), blocking every request meanwhile. 200 took 9 ms; many short lists stay linear.
 */
export const MAX_DEPENDENT_NAMES = 200;
/** Names all of a schema's `dependentRequired` lists hold together: 240 lists of 200 took 3.2 s to compile. */
export const MAX_DEPENDENT_NAMES_TOTAL = 2_000;
/**
 * Objects and arrays a tenant's schema (input or output) may hold, data keywords' values aside.
 * Compiling is synchronous on the shared event loop and grows faster than the schema: ~0.3–0.6 s
 * for 500 on a 2-core machine (3,000 properties took 5 s and then overflowed the stack).
 */
export const MAX_SCHEMA_NODES = 500;
/** Keywords whose values are data, not subschemas: not searched for keywords, and no `$ref` may point into them. */
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples']);
/**
 * Keywords whose value maps names to subschemas: there a key is a name, not a keyword (a property
 * named `default` is a schema, and is checked).
 */
const SCHEMA_MAP_KEYWORDS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas', 'dependencies']);
/** Keywords that refer to a schema by URI (its fragment a JSON Pointer or an anchor). */
const REF_KEYWORDS = new Set(['$ref', '$dynamicRef', '$recursiveRef']);
/** Values every schema is tried on once compiled: a `$ref` cycle that consumes nothing shows on all of them. */
const PROBES: readonly unknown[] = [null, true, 0, '', [], {}];

/**
 * Longest array a tenant's schema may ask `uniqueItems` of when its items are not of scalar types:
 * Ajv then compares every pair of items (deep equality), synchronously — 30,000 small items took
 * ~9 s of the shared event loop. Scalar-typed items are checked in one pass with a hash instead.
 */
export const MAX_UNIQUE_ITEMS = 100;
const SCALAR_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null']);

/** Whether Ajv checks `uniqueItems` of this schema node in linear time, or a small maxItems bounds it. */
function cheapUniqueItems(node: Record<string, unknown>): boolean {
  const items = node.items;
  if (items && typeof items === 'object' && !Array.isArray(items)) {
    const type = (items as Record<string, unknown>).type;
    const types = Array.isArray(type) ? type : [type];
    if (types.length > 0 && types.every((t) => typeof t === 'string' && SCALAR_TYPES.has(t))) return true;
  }
  return typeof node.maxItems === 'number' && node.maxItems <= MAX_UNIQUE_ITEMS;
}

/** Whether an http definition's url template parses as a URL with its placeholders filled. */
function urlFillable(template: string): boolean {
  return ['1', ''].some((fill) => URL.canParse(expandTemplate(template, new Proxy({}, { get: () => fill }))));
}

/** Why a tenant's regular expression is refused, if it is: too long, not RE2 syntax, or compiling to too large a program. */
function badPattern(p: string, walk: SchemaWalk): string | undefined {
  if (p.length > MAX_PATTERN_LENGTH) return `is longer than ${MAX_PATTERN_LENGTH} characters`;
  // (the schema's compile refused it too, but named only the schema, not the pattern's place)
  const size = compileRe2(p);
  if (typeof size !== 'number') return `is not an RE2 regular expression (no lookaround, no backreferences): ${size.error}`;
  if (size > MAX_PATTERN_PROGRAM_SIZE) {
    return `compiles to ${size} RE2 instructions, more than ${MAX_PATTERN_PROGRAM_SIZE} (counted repetitions such as {0,1000} multiply them; use maxLength for a length)`;
  }
  if ((walk.patternProgram -= size) < 0) {
    return `brings the schema's patterns to more than ${MAX_SCHEMA_PATTERN_PROGRAM} RE2 instructions together (this one: ${size})`;
  }
  return undefined;
}

/**
 * Whether a `$ref`'s JSON Pointer fragment passes through a data keyword (`#/default`,
 * `#/$defs/u/examples/0`): Ajv follows it and compiles that data as a schema, which
 * schemaViolation() never looked at. Segments are unescaped as Ajv does (percent, then ~1 ~0) and
 * read as schemaViolation() walks: a name under SCHEMA_MAP_KEYWORDS, a keyword (or index) elsewhere.
 */
function refIntoData(ref: string): boolean {
  let names = false;
  // (a pointer Ajv cannot resolve either: the compile refuses it)
  for (const seg of pointerSegments(ref) ?? []) {
    if (!names && DATA_KEYWORDS.has(seg)) return true;
    names = !names && SCHEMA_MAP_KEYWORDS.has(seg);
  }
  return false;
}

/**
 * The segments of a `$ref`'s JSON Pointer fragment (`#/a/b`), unescaped as Ajv does (percent,
 * then ~1 ~0); [] for a ref without one, undefined for one Ajv cannot resolve either.
 */
function pointerSegments(ref: string): string[] | undefined {
  const hash = ref.indexOf('#');
  if (hash < 0 || ref[hash + 1] !== '/') return [];
  try {
    return ref.slice(hash + 2).split('/').map((raw) => decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~'));
  } catch {
    return undefined; // the compile refuses it
  }
}

/** Whether `node`'s value `v` under key `k` maps names to subschemas (a `properties` value), as the walks read it. */
function mapsNames(names: boolean, node: object, k: string, v: unknown): boolean {
  return !names && !Array.isArray(node) && SCHEMA_MAP_KEYWORDS.has(k) && !Array.isArray(v);
}

/**
 * Most subschemas a tenant's schema may stand for with its `$ref`s followed: a validation that
 * fails visits every branch of `anyOf`/`allOf`/`oneOf`, so shared `$defs` referred to from two
 * branches at each of N levels cost 2^N — a 1.8 KB schema (N=22) held the event loop every
 * tenant shares 9 s per submit, and at N=23 its check ran the process out of memory.
 */
export const MAX_EXPANDED_SUBSCHEMAS = 20_000;

/**
 * How many subschemas `root` stands for with its local `$ref`s (`#`, `#/pointer`, `#anchor`)
 * inlined, up to `limit + 1` (it stops counting there). A `$ref` back to a schema it is inside of
 * (a tree: recursion that descends into the value) counts once.
 */
export function expandedSchemaSize(root: unknown, limit = MAX_EXPANDED_SUBSCHEMAS): number {
  const anchors = new Map<string, unknown>();
  const collect = (node: unknown, names: boolean): void => {
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (!names && (k === '$anchor' || k === '$dynamicAnchor') && typeof v === 'string') anchors.set(v, node);
      else if (names || !DATA_KEYWORDS.has(k)) collect(v, mapsNames(names, node, k, v));
    }
  };
  collect(root, false);
  const resolve = (ref: string): unknown => {
    if (ref === '#' || ref === '') return root;
    if (!ref.startsWith('#')) return undefined; // remote: the compile refuses it
    if (ref[1] !== '/') return anchors.get(ref.slice(1));
    let node: unknown = root;
    const segments = pointerSegments(ref);
    if (!segments) return undefined;
    for (const seg of segments) node = node && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
    return node;
  };
  const memo = new Map<object, number>();
  const inside = new Set<object>();
  const size = (node: unknown, names: boolean): number => {
    if (!node || typeof node !== 'object') return 0;
    if (inside.has(node)) return 1;
    const known = memo.get(node);
    if (known !== undefined) return known;
    inside.add(node);
    let n = 1;
    for (const [k, v] of Object.entries(node)) {
      if (n > limit) break;
      if (names) n += size(v, false);
      else if (DATA_KEYWORDS.has(k)) continue;
      else if (REF_KEYWORDS.has(k) && typeof v === 'string') n += size(resolve(v), false);
      else n += size(v, mapsNames(false, node, k, v));
    }
    inside.delete(node);
    n = Math.min(n, limit + 1);
    memo.set(node, n);
    return n;
  };
  return size(root, false);
}

interface SchemaWalk {
  /** Objects and arrays still allowed (from MAX_SCHEMA_NODES). */
  nodes: number;
  /** RE2 instructions still allowed to the schema's patterns (from MAX_SCHEMA_PATTERN_PROGRAM). */
  patternProgram: number;
  /** Names still allowed to its dependentRequired lists (from MAX_DEPENDENT_NAMES_TOTAL). */
  dependentNames: number;
  /** The formats validation checks, when a definition is being written. */
  formats?: ReadonlySet<string>;
}

const newWalk = (formats?: ReadonlySet<string>): SchemaWalk => ({
  nodes: MAX_SCHEMA_NODES, patternProgram: MAX_SCHEMA_PATTERN_PROGRAM, dependentNames: MAX_DEPENDENT_NAMES_TOTAL, formats,
});

/**
 * The first thing a tenant's schema may not hold (dotted path and why; `names`: `node` maps names
 * to subschemas, such as a `properties` value, so its keys are not keywords): an `$id` (every tenant's
 * schemas compile into one shared validator, where an `$id` is global: a second tenant or a
 * replace using it would be refused, and a `$ref` could reach another tenant's schema), a `$ref`
 * into a data keyword (refIntoData: the walk skips those), a `pattern` / `patternProperties`
 * regular expression over MAX_PATTERN_LENGTH or MAX_PATTERN_PROGRAM_SIZE, or all of them over
 * MAX_SCHEMA_PATTERN_PROGRAM (patterns run on RE2, see schema.ts: their syntax is checked when the
 * schema compiles), a `dependentRequired` list over MAX_DEPENDENT_NAMES names, or all of them over
 * MAX_DEPENDENT_NAMES_TOTAL (`walk` counts both down), a `uniqueItems` whose check
 * could take quadratic time (cheapUniqueItems), or more than MAX_SCHEMA_NODES objects and arrays
 * (`walk.nodes` counts them down across the walk), and — when `walk.formats` lists the formats
 * validation checks (a definition being written; stored ones keep theirs) — a `format` that is
 * none of them: JSON Schema ignores an unknown format, so a typo such as "emial" would accept anything.
 */
function schemaViolation(
  node: unknown,
  path: string,
  walk: SchemaWalk = newWalk(),
  names = false,
): { path: string; why: string } | undefined {
  if (!node || typeof node !== 'object') return undefined;
  if (--walk.nodes < 0) return { path, why: `makes the schema larger than ${MAX_SCHEMA_NODES} objects and arrays` };
  if (!names && !Array.isArray(node) && (node as Record<string, unknown>).uniqueItems === true && !cheapUniqueItems(node as Record<string, unknown>)) {
    return { path: `${path}.uniqueItems`, why: `needs items of scalar types (items.type string, number, integer, boolean or null) or maxItems of at most ${MAX_UNIQUE_ITEMS}: other items are compared pairwise` };
  }
  for (const [k, v] of Object.entries(node)) {
    const at = `${path}.${k}`;
    if (k === '$id' && typeof v === 'string') return { path: at, why: "is not allowed in a tenant's definition" };
    if (REF_KEYWORDS.has(k) && typeof v === 'string' && refIntoData(v)) {
      return { path: at, why: `points into a data keyword (${[...DATA_KEYWORDS].join(', ')}): its value is data, not a schema` };
    }
    if (!names && k === 'format' && typeof v === 'string' && walk.formats && !walk.formats.has(v)) {
      return { path: at, why: `is not a format Taskgate checks (one of ${[...walk.formats].join(', ')}): an unknown format would accept any value` };
    }
    if (k === 'pattern' && typeof v === 'string') {
      const why = badPattern(v, walk);
      if (why) return { path: at, why };
    }
    if (k === 'patternProperties' && v && typeof v === 'object' && !Array.isArray(v)) {
      for (const p of Object.keys(v)) {
        const why = badPattern(p, walk);
        if (why) return { path: at, why: `key ${JSON.stringify(p.slice(0, 40))} ${why}` };
      }
    }
    if (!names && (k === 'dependentRequired' || k === 'dependencies') && v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [name, list] of Object.entries(v)) {
        if (!Array.isArray(list)) continue;
        if (list.length > MAX_DEPENDENT_NAMES) return { path: `${at}.${name}`, why: `lists ${list.length} names, more than ${MAX_DEPENDENT_NAMES}` };
        if ((walk.dependentNames -= list.length) < 0) {
          return { path: `${at}.${name}`, why: `brings the schema's dependentRequired lists to more than ${MAX_DEPENDENT_NAMES_TOTAL} names together` };
        }
      }
    }
    if (!names && DATA_KEYWORDS.has(k)) continue;
    const found = schemaViolation(v, at, walk, mapsNames(names, node, k, v));
    if (found) return found;
  }
  return undefined;
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
