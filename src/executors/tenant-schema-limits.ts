// The limits a tenant's JSON Schema (a definition's input_schema / output_schema) is held to, and
// the walk that checks them: tenant schemas compile and validate synchronously on the event loop
// every tenant shares, so each limit below bounds a measured stall.
import { compileRe2 } from './schema.js';

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

export interface SchemaWalk {
  /** Objects and arrays still allowed (from MAX_SCHEMA_NODES). */
  nodes: number;
  /** RE2 instructions still allowed to the schema's patterns (from MAX_SCHEMA_PATTERN_PROGRAM). */
  patternProgram: number;
  /** Names still allowed to its dependentRequired lists (from MAX_DEPENDENT_NAMES_TOTAL). */
  dependentNames: number;
  /** The formats validation checks, when a definition is being written. */
  formats?: ReadonlySet<string>;
}

export const newWalk = (formats?: ReadonlySet<string>): SchemaWalk => ({
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
export function schemaViolation(
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
