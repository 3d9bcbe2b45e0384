// An answer written as JSON — bare, or in a ```json fence as models often write it — parsed.

/** The JSON value `text` holds (an object or array, bare or fenced), or null. */
export function parseJsonAnswer(text: string | null): unknown {
  if (!text) return null;
  const t = text.trim();
  const fenced = t.match(/^```(?:json)?\s*([\s\S]*?)\s*```$/)?.[1] ?? t;
  if (!/^[[{]/.test(fenced)) return null;
  try {
    return JSON.parse(fenced) as unknown;
  } catch {
    return null;
  }
}
