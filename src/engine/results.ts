// What an attempt hands back, as it will be stored: its result and its steps' results as JSON
// the database takes, and an error as text.
import { PermanentError, type ExecutionResult } from '../executors/types.js';

/** An error's text for the task; never throws (a `message` getter can, and String() of some objects does). */
export const errorMessage = (err: unknown): string => {
  try {
    return (err instanceof Error ? err.message : String(err)) || 'unknown error';
  } catch {
    return 'unknown error (its message could not be read)';
  }
};

/** The most characters an attempt's result (output, usage, metadata) may take as JSON. */
export const MAX_OUTPUT_CHARS = 16 * 1024 * 1024;

/**
 * An executor's output as it will be stored (read back from its JSON), or why the result cannot
 * be written: JSON cannot hold it (a cycle, a BigInt, a throwing toJSON — or Infinity/NaN, which
 * JSON.stringify would silently write as null: an order total of 1e308 × 2 completed as
 * `"total": null`), or it is over MAX_OUTPUT_CHARS (a 57 MB correlation matrix ran PGlite out of
 * memory). Serializes what the completion will: outputs are small next to the attempt's work.
 */
export function asStored(r: ExecutionResult): { problem: string } | { output: () => unknown } {
  const result = [r.output, r.usage, r.metadata];
  let text: string;
  try {
    text = JSON.stringify(result);
    // a non-finite number shows as null: only then is the result walked again to look for one
    if (text.includes('null')) JSON.stringify(result, finiteNumbers);
  } catch (err) {
    return { problem: `output cannot be stored as JSON: ${errorMessage(err)}` };
  }
  if (text.length > MAX_OUTPUT_CHARS) return { problem: `output is ${text.length} characters as JSON, over the limit of ${MAX_OUTPUT_CHARS}` };
  // read back only for a schema check (definition tasks): the completion stores the object itself
  return { output: () => (JSON.parse(text) as unknown[])[0] ?? null };
}

function finiteNumbers(key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`${key ? `"${key}" is ` : ''}${value}, a number JSON cannot hold`);
  return value;
}

/**
 * A durable step's result as it is stored and replayed: read back from its JSON (undefined or a
 * function is null, NaN null, a Date its string), so the first run and a replay see the same
 * value. One JSON cannot hold (a BigInt, a cycle, a throwing toJSON) or over MAX_OUTPUT_CHARS
 * fails the attempt for good: the step's body has run, and every retry would run it again (its
 * charge, its email) only to fail at the same place.
 */
export function stepResult(name: string, value: unknown): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new PermanentError(`step ${JSON.stringify(name)}: its result cannot be stored as JSON: ${errorMessage(err)}`);
  }
  if (text === undefined) return null;
  if (text.length > MAX_OUTPUT_CHARS) throw new PermanentError(`step ${JSON.stringify(name)}: its result is ${text.length} characters as JSON, over the limit of ${MAX_OUTPUT_CHARS}`);
  return JSON.parse(text) as unknown;
}

