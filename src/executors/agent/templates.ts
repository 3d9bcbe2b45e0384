// Prompt templates for declarative `agent` definitions: `config.prompt` with {{field}} and
// {{field|default}} placeholders filled from the task input; optional {{#field}}…{{/field}}
// sections are kept only when the field is present.
export function renderPrompt(template: string, input: Record<string, unknown>): string {
  const value = (k: string): unknown => k.split('.').reduce<unknown>((o, part) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[part] : undefined), input);
  const text = (v: unknown): string =>
    typeof v === 'string' ? v : Array.isArray(v) && v.every((x) => typeof x === 'string') ? v.join(', ') : JSON.stringify(v);
  return template
    .replace(/\{\{#([\w.]+)\}\}([\s\S]*?)\{\{\/\1\}\}/g, (_, k: string, body: string) => {
      const v = value(k);
      return v === undefined || v === null || v === '' || v === false ? '' : body;
    })
    .replace(/\{\{\s*([\w.]+)\s*(?:\|([^}]*))?\}\}/g, (_, k: string, dflt: string | undefined) => {
      const v = value(k);
      return v === undefined || v === null ? (dflt ?? '') : text(v);
    });
}
