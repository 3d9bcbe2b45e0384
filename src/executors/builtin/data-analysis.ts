// Seed 004's `data_analysis` kind with real statistics over inline rows or CSV text:
// summary (count/mean/median/stddev/min/max), trend (least squares slope, intercept, r²),
// correlation (Pearson r per column pair) and prediction (linear extrapolation).
import { PermanentError, type TaskDefinition } from '../types.js';

type Row = Record<string, unknown>;

interface Input {
  data_source?: string;
  data?: unknown[];
  analysis_type: 'summary' | 'trend' | 'correlation' | 'prediction';
  parameters?: { columns?: string[]; x?: string; y?: string; horizon?: number };
  output_format?: 'json' | 'csv' | 'html';
}

/** Parses CSV text with a header line; handles quoted fields with commas and doubled quotes. */
export function parseCsv(text: string): Row[] {
  const lines: string[][] = [];
  let field = '';
  let row: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.some((f) => f.trim() !== '')) lines.push(row);
      row = [];
    } else field += c;
  }
  row.push(field);
  if (row.some((f) => f.trim() !== '')) lines.push(row);
  const [header, ...body] = lines;
  if (!header) return [];
  const names = header.map((h) => h.trim());
  return body.map((cells) => Object.fromEntries(names.map((n, i) => [n, cells[i]?.trim() ?? ''])));
}

function toRows(input: Input): Row[] {
  if (Array.isArray(input.data)) {
    const [first, ...rest] = input.data;
    if (Array.isArray(first)) {
      const names = first.map(String);
      return rest.map((r) => Object.fromEntries(names.map((n, i) => [n, (r as unknown[])[i]])));
    }
    return input.data.filter((r): r is Row => typeof r === 'object' && r !== null && !Array.isArray(r));
  }
  if (input.data_source !== undefined && /[,\n]/.test(input.data_source)) return parseCsv(input.data_source);
  throw new PermanentError('no data: pass rows in `data` or CSV text in `data_source`');
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Columns whose every non-empty value is a number. */
function numericColumns(rows: Row[]): string[] {
  const names = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) names.add(k);
  return [...names].filter((name) => {
    let seen = 0;
    for (const r of rows) {
      const v = r[name];
      if (v === undefined || v === null || v === '') continue;
      if (asNumber(v) === undefined) return false;
      seen++;
    }
    return seen > 0;
  });
}

const round = (x: number, digits = 6): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

/**
 * What to divide `values` by before their sums, squares and products, so finite data gives finite
 * figures (1e200 and -1e200 had an infinite variance; x of ±1e300 a NaN r²): their largest
 * magnitude when it is beyond 1e100 or below 1e-100 (a square would overflow or vanish), else 1 —
 * ordinary data is computed unscaled, to the last bit as before.
 */
function scaleOf(values: number[]): number {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m > 1e100 || (m > 0 && m < 1e-100) ? m : 1;
}

export function describeColumn(values: number[]) {
  const n = values.length;
  const sorted = [...values].sort((a, b) => a - b);
  const k = scaleOf(values);
  const scaled = values.map((v) => v / k);
  const m = scaled.reduce((s, v) => s + v, 0) / n;
  const median = n % 2 ? sorted[(n - 1) / 2]! : sorted[n / 2 - 1]! / 2 + sorted[n / 2]! / 2;
  const variance = n > 1 ? scaled.reduce((s, v) => s + (v - m) ** 2, 0) / (n - 1) : 0;
  return { count: n, mean: round(m * k), median: round(median), stddev: round(Math.sqrt(variance) * k), min: sorted[0]!, max: sorted[n - 1]! };
}

/** Centred sums of squares and products of xs and ys, each divided by its scale (kx, ky). */
function moments(xs: number[], ys: number[]) {
  const n = xs.length;
  const kx = scaleOf(xs);
  const ky = scaleOf(ys);
  const mx = xs.reduce((s, v) => s + v / kx, 0) / n;
  const my = ys.reduce((s, v) => s + v / ky, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! / kx - mx;
    const dy = ys[i]! / ky - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  return { kx, ky, mx, my, sxx, sxy, syy };
}

export function linearFit(xs: number[], ys: number[]) {
  const { kx, ky, mx, my, sxx, sxy, syy } = moments(xs, ys);
  if (sxx === 0) throw new PermanentError('x values are all equal: no trend can be fitted');
  const scaledSlope = sxy / sxx;
  const slope = scaledSlope * (ky / kx);
  const intercept = (my - scaledSlope * mx) * ky;
  const r2 = syy === 0 ? 1 : (sxy / sxx) * (sxy / syy);
  return { slope, intercept, r2 };
}

export function pearson(xs: number[], ys: number[]): number | null {
  const { sxx, sxy, syy } = moments(xs, ys);
  return sxx === 0 || syy === 0 ? null : sxy / Math.sqrt(sxx) / Math.sqrt(syy);
}

function pairs(rows: Row[], x: string | undefined, y: string): { xs: number[]; ys: number[] } {
  const xs: number[] = [];
  const ys: number[] = [];
  rows.forEach((r, i) => {
    const yv = asNumber(r[y]);
    const xv = x === undefined ? i : asNumber(r[x]);
    if (yv !== undefined && xv !== undefined) {
      xs.push(xv);
      ys.push(yv);
    }
  });
  if (xs.length < 2) throw new PermanentError(`need at least 2 numeric points in column ${y}`);
  return { xs, ys };
}

/** Columns a correlation matrix may span (its answer grows with their square). */
export const MAX_CORRELATION_COLUMNS = 100;

export function analyze(input: Input): Record<string, unknown> {
  const rows = toRows(input);
  if (rows.length === 0) throw new PermanentError('the data has no rows');
  const numeric = numericColumns(rows);
  const wanted = input.parameters?.columns?.length ? input.parameters.columns.filter((c) => numeric.includes(c)) : numeric;
  if (wanted.length === 0) throw new PermanentError('the data has no numeric columns');
  const base = { analysis_type: input.analysis_type, row_count: rows.length, columns: wanted };

  switch (input.analysis_type) {
    case 'summary': {
      // built as entries: a column named __proto__ assigned by key would set the object's prototype
      const stats = Object.fromEntries(
        wanted.map((c) => [c, describeColumn(rows.map((r) => asNumber(r[c])).filter((v): v is number => v !== undefined))]),
      );
      return { ...base, statistics: stats };
    }
    case 'trend':
    case 'prediction': {
      const x = input.parameters?.x;
      const y = input.parameters?.y ?? wanted.find((c) => c !== x);
      if (!y) throw new PermanentError('no numeric column to fit');
      const { xs, ys } = pairs(rows, x, y);
      const fit = linearFit(xs, ys);
      const trend = {
        x: x ?? '(row index)', y, points: xs.length,
        slope: round(fit.slope), intercept: round(fit.intercept), r_squared: round(fit.r2),
        direction: Math.abs(fit.slope) < 1e-12 ? 'flat' : fit.slope > 0 ? 'increasing' : 'decreasing',
      };
      if (input.analysis_type === 'trend') return { ...base, trend };
      const horizon = Math.min(Math.max(1, Math.floor(input.parameters?.horizon ?? 3)), 1000);
      // beyond the largest x, by the mean spacing of the x values — whatever order the rows are in
      let [first, last] = [xs[0]!, xs[0]!];
      for (const v of xs) [first, last] = [Math.min(first, v), Math.max(last, v)];
      const step = xs.length > 1 ? (last - first) / (xs.length - 1) : 1;
      const predictions = Array.from({ length: horizon }, (_, k) => {
        const xv = last + step * (k + 1);
        return { x: round(xv), y: round(fit.intercept + fit.slope * xv) };
      });
      return { ...base, trend, predictions };
    }
    case 'correlation': {
      if (wanted.length < 2) throw new PermanentError('correlation needs at least two numeric columns');
      // the matrix grows with the square of the columns: 2,500 one-digit columns (a 29 KB input)
      // made a 57 MB answer and held the event loop for seconds at a time
      if (wanted.length > MAX_CORRELATION_COLUMNS) {
        throw new PermanentError(`correlation takes at most ${MAX_CORRELATION_COLUMNS} numeric columns, the data has ${wanted.length}: choose some with parameters.columns`);
      }
      const known = new Map<string, number | null>();
      const coefficient = (a: string, b: string): number | null => {
        const key = a < b ? JSON.stringify([a, b]) : JSON.stringify([b, a]);
        if (known.has(key)) return known.get(key)!;
        const xs: number[] = [];
        const ys: number[] = [];
        for (const r of rows) {
          const av = asNumber(r[a]);
          const bv = asNumber(r[b]);
          if (av !== undefined && bv !== undefined) {
            xs.push(av);
            ys.push(bv);
          }
        }
        const r = xs.length >= 2 ? pearson(xs, ys) : null;
        const value = r === null ? null : round(r);
        known.set(key, value);
        return value;
      };
      const matrix = Object.fromEntries(wanted.map((a) => [a, Object.fromEntries(wanted.map((b) => [b, coefficient(a, b)]))]));
      const pairsOut = wanted.flatMap((a) => wanted.filter((b) => a < b).map((b) => ({ a, b, r: coefficient(a, b) })));
      return { ...base, correlation: matrix, pairs: pairsOut };
    }
  }
}

function render(result: Record<string, unknown>, format: 'csv' | 'html'): string {
  const stats = (result.statistics ?? result.correlation ?? { [String((result.trend as Row | undefined)?.y ?? 'value')]: result.trend ?? {} }) as Record<string, Row>;
  const keys = [...new Set(Object.values(stats).flatMap((v) => Object.keys(v ?? {})))];
  const rows = Object.entries(stats).map(([name, v]) => [name, ...keys.map((k) => String(v?.[k] ?? ''))]);
  // RFC 4180: a field holding a comma, a quote or a line break is quoted, its quotes doubled
  const field = (f: string) => (/[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f);
  if (format === 'csv') return [['column', ...keys], ...rows].map((r) => r.map(field).join(',')).join('\n');
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  return `<table><tr>${['column', ...keys].map((k) => `<th>${esc(k)}</th>`).join('')}</tr>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</table>`;
}

export const dataAnalysis: TaskDefinition = {
  id: 'data_analysis',
  name: 'Data analysis',
  description: 'Summary statistics, linear trend, Pearson correlation or linear prediction over inline rows (`data`) or CSV text (`data_source`).',
  version: '1.0.0',
  kind: 'function',
  type: 'AUTOMATED',
  input_schema: {
    type: 'object',
    properties: {
      data_source: { type: 'string', maxLength: 1_000_000 },
      // rows as objects, or a header row of names and then rows as arrays: a stray null or scalar
      // row failed the task with a TypeError after retries (or was dropped without a word)
      data: {
        type: 'array', maxItems: 100_000,
        anyOf: [{ items: { type: 'object' } }, { items: { type: 'array' } }],
        description: 'rows as objects, or a header row (column names) followed by rows as arrays',
      },
      analysis_type: { type: 'string', enum: ['summary', 'trend', 'correlation', 'prediction'] },
      parameters: {
        type: 'object',
        properties: {
          columns: { type: 'array', items: { type: 'string' } },
          x: { type: 'string' },
          y: { type: 'string' },
          horizon: { type: 'integer', minimum: 1, maximum: 1000 },
        },
      },
      // seed 004 lists pdf too; it cannot be rendered here, so it is refused at submit (422)
      // rather than accepted and failed
      output_format: { type: 'string', enum: ['json', 'csv', 'html'] },
    },
    // seed 004's data_source (CSV text here), or inline rows alone
    required: ['analysis_type'],
    if: { not: { required: ['data'] } },
    then: { required: ['data_source'] },
    additionalProperties: false,
  },
  output_schema: {
    type: 'object',
    properties: { analysis_type: { type: 'string' }, row_count: { type: 'integer' }, columns: { type: 'array' } },
    required: ['analysis_type', 'row_count', 'columns'],
  },
  handler(input: Input) {
    const result = analyze(input);
    if (input.output_format === 'csv' || input.output_format === 'html') return { ...result, rendered: render(result, input.output_format) };
    return result;
  },
};
