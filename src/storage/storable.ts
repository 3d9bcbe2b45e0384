// PostgreSQL's text and jsonb hold neither NUL (U+0000) nor unpaired UTF-16 surrogates; a value
// with one fails its whole statement — and a completion statement writes a claim window's
// hundreds of tasks at once. What executors produce (outputs, errors, event payloads, step
// results: upstream bodies, model text) is made storable here, replacing each such character
// with U+FFFD. Client input never gets this far: the JSON body parser refuses it with a 400.

/** A NUL or an unpaired surrogate. */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

export function hasUnstorable(s: string): boolean {
  return UNSTORABLE.test(s);
}

/** The string with every NUL and unpaired surrogate replaced by U+FFFD. */
export function storableText(s: string): string {
  return UNSTORABLE.test(s) ? s.replace(UNSTORABLE_ALL, '\ufffd') : s;
}

/**
 * JSON.stringify writes NUL as `\u0000` and an unpaired surrogate as `\udXXX` (a paired one as
 * its characters), so in its output every such escape — one whose backslash is not itself
 * escaped — is one PostgreSQL refuses.
 */
const BAD_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g;

/** JSON text of `value` that PostgreSQL's jsonb accepts. */
export function storableJson(value: unknown): string {
  const text = JSON.stringify(value);
  return text !== undefined && text.includes('\\u') ? text.replace(BAD_ESCAPE, '$1\\ufffd') : text;
}
