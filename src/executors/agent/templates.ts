// Prompt templates for declarative `agent` definitions: `config.prompt` with {{field}} and
// {{field|default}} placeholders filled from the task input; optional {{#field}}…{{/field}}
// sections are kept only when the field is present (not null, empty, false or an empty list).
export function renderPrompt(template: string, input: Record<string, unknown>): string {
  const value = (k: string): unknown => k.split('.').reduce<unknown>((o, part) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[part] : undefined), input);
  const text = (v: unknown): string =>
    typeof v === 'string' ? v : Array.isArray(v) && v.every((x) => typeof x === 'string') ? v.join(', ') : JSON.stringify(v);
  return template
    .replace(/\{\{#([\w.]+)\}\}([\s\S]*?)\{\{\/\1\}\}/g, (_, k: string, body: string) => {
      const v = value(k);
      return v === undefined || v === null || v === '' || v === false || (Array.isArray(v) && v.length === 0) ? '' : body;
    })
    .replace(/\{\{\s*([\w.]+)\s*(?:\|([^}]*))?\}\}/g, (_, k: string, dflt: string | undefined) => {
      const v = value(k);
      return v === undefined || v === null ? (dflt ?? '') : text(v);
    });
}
