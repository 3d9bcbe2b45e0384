import { describe, expect, it } from 'vitest';
import { analyze, describeColumn, linearFit, parseCsv, pearson, dataAnalysis, MAX_CORRELATION_COLUMNS } from '../../src/executors/builtin/data-analysis.js';
import { calculateOrderTotal } from '../../src/executors/builtin/basic.js';
import { expandTemplate } from '../../src/executors/http.js';
import { isBlockedAddress, assertPublicUrl } from '../../src/executors/ssrf.js';
import { compileRe2, compileSchema, markTenantSchema, MAX_PATTERN_WORK, releaseSchema, validateAgainst } from '../../src/executors/schema.js';
import { checkDefinition, Registry } from '../../src/executors/registry.js';
import { PermanentError } from '../../src/executors/types.js';

describe('calculate-order-total', () => {
  it("matches seed 003's example to the cent", () => {
    const def = calculateOrderTotal(0.08);
    const out = def.handler!({ orderId: 'ORD-123', items: [{ id: 'ITEM-1', quantity: 2, price: 10.99 }, { id: 'ITEM-2', quantity: 1, price: 24.99 }] }, {} as never);
    expect(out).toEqual({ subtotal: 46.97, tax: 3.76, total: 50.73 });
  });
  it('honours a per-order tax rate and empty orders', () => {
    const def = calculateOrderTotal(0.08);
    expect(def.handler!({ orderId: 'x', items: [{ id: 'a', quantity: 3, price: 0.1 }], taxRate: 0.2 }, {} as never)).toEqual({ subtotal: 0.3, tax: 0.06, total: 0.36 });
    expect(def.handler!({ orderId: 'x', items: [] }, {} as never)).toEqual({ subtotal: 0, tax: 0, total: 0 });
  });
});

describe('data_analysis', () => {
  const rows = [
    { month: 1, sales: 10, cost: 5 },
    { month: 2, sales: 12, cost: 6 },
    { month: 3, sales: 14, cost: 7.5 },
    { month: 4, sales: 16, cost: 7.9 },
  ];
  it('computes summary statistics', () => {
    expect(describeColumn([1, 2, 3, 4])).toEqual({ count: 4, mean: 2.5, median: 2.5, stddev: 1.290994, min: 1, max: 4 });
    const out = analyze({ data_source: 'inline', data: rows, analysis_type: 'summary' }) as any;
    expect(out.row_count).toBe(4);
    expect(out.statistics.sales).toMatchObject({ count: 4, mean: 13, median: 13, min: 10, max: 16 });
  });
  it('fits a least-squares trend with r²', () => {
    expect(linearFit([0, 1, 2, 3], [1, 3, 5, 7])).toEqual({ slope: 2, intercept: 1, r2: 1 });
    const out = analyze({ data_source: 'inline', data: rows, analysis_type: 'trend', parameters: { x: 'month', y: 'sales' } }) as any;
    expect(out.trend).toMatchObject({ slope: 2, intercept: 8, r_squared: 1, direction: 'increasing' });
    // predictions go beyond the largest x, whatever order the rows are in
    const shuffled = analyze({ analysis_type: 'prediction', data: [{ x: 3, y: 30 }, { x: 1, y: 10 }, { x: 2, y: 20 }], parameters: { x: 'x', y: 'y', horizon: 2 } }) as any;
    expect(shuffled.predictions).toEqual([{ x: 4, y: 40 }, { x: 5, y: 50 }]);
  });
  it('computes Pearson correlation', () => {
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1);
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeNull();
    // finite data gives finite figures, however large (squares of 1e200 overflowed to Infinity)
    expect(describeColumn([1e200, -1e200])).toMatchObject({ mean: 0, median: 0, stddev: expect.closeTo(Math.SQRT2 * 1e200, -190) });
    expect(describeColumn([1.7e308, 1.7e308]).mean).toBe(1.7e308);
    const big = linearFit([-1e300, 0, 1e300], [1, 3, 5]);
    expect(big.r2).toBeCloseTo(1);
    expect(big.slope).toBeCloseTo(2e-300, 310);
    expect(big.intercept).toBeCloseTo(3);
    expect(pearson([-1e300, 0, 1e300], [1e-300, 2e-300, 3e-300])).toBeCloseTo(1);
    const out = analyze({ data_source: 'inline', data: rows, analysis_type: 'correlation', parameters: { columns: ['sales', 'cost'] } }) as any;
    expect(out.correlation.sales.sales).toBe(1);
    expect(out.pairs[0].r).toBeGreaterThan(0.95);
  });
  it('refuses a correlation over more than MAX_CORRELATION_COLUMNS columns (its answer grows with their square)', () => {
    const n = MAX_CORRELATION_COLUMNS + 1;
    const names = Array.from({ length: n }, (_, i) => `c${i}`);
    const data = [names, ...[1, 2, 3].map((k) => names.map((_, i) => (i * k) % 7))];
    expect(() => analyze({ data_source: 'inline', data, analysis_type: 'correlation' })).toThrow(`correlation takes at most ${MAX_CORRELATION_COLUMNS} numeric columns, the data has ${n}`);
    const some = analyze({ data_source: 'inline', data, analysis_type: 'correlation', parameters: { columns: ['c1', 'c2'] } }) as any;
    expect(some.pairs).toEqual([{ a: 'c1', b: 'c2', r: 1 }]);
  });
  it("keeps a column named __proto__ (assigned by key it set the statistics object's prototype)", () => {
    const out = analyze({ data_source: '"__proto__",constructor\n1,2\n3,4', analysis_type: 'summary' }) as any;
    expect(Object.keys(out.statistics)).toEqual(['__proto__', 'constructor']);
    expect(JSON.parse(JSON.stringify(out)).statistics.__proto__).toMatchObject({ count: 2, mean: 2 });
    const corr = analyze({ data_source: '"__proto__",b\n1,2\n3,5', analysis_type: 'correlation' }) as any;
    expect(Object.keys(corr.correlation)).toEqual(['__proto__', 'b']);
  });
  it('predicts by linear extrapolation', () => {
    const out = analyze({ data_source: 'inline', data: rows, analysis_type: 'prediction', parameters: { x: 'month', y: 'sales', horizon: 2 } }) as any;
    expect(out.predictions).toEqual([{ x: 5, y: 18 }, { x: 6, y: 20 }]);
  });
  it('reads CSV text with quotes', () => {
    expect(parseCsv('a,b\n1,"x, y"\n2,"say ""hi"""\n')).toEqual([{ a: '1', b: 'x, y' }, { a: '2', b: 'say "hi"' }]);
    const out = analyze({ data_source: 'x,y\n1,2\n2,4\n3,6', analysis_type: 'trend', parameters: { x: 'x', y: 'y' } }) as any;
    expect(out.trend.slope).toBe(2);
  });
  it('refuses data it cannot analyse, permanently', () => {
    expect(() => analyze({ data_source: 'sales-db', analysis_type: 'summary' })).toThrow(PermanentError);
    expect(() => analyze({ data_source: 'a\nx\ny', analysis_type: 'summary' })).toThrow(/numeric/);
  });
  it('renders csv and html', () => {
    const out = dataAnalysis.handler!({ data_source: 'a,b\n1,2\n3,4', analysis_type: 'summary', output_format: 'csv' }, {} as never) as any;
    expect(out.rendered.split('\n')[0]).toBe('column,count,mean,median,stddev,min,max');
    // RFC 4180: a column name with a comma or a quote is quoted, its quotes doubled
    const quoted = dataAnalysis.handler!({ data_source: '"price, usd","say ""hi"""\n1,2\n3,4', analysis_type: 'summary', output_format: 'csv' }, {} as never) as any;
    expect(quoted.rendered.split('\n')[1]).toMatch(/^"price, usd",2,2,/);
    expect(quoted.rendered.split('\n')[2]).toMatch(/^"say ""hi""",2,3,/);
    const html = dataAnalysis.handler!({ data_source: 'a,b\n1,2\n3,4', analysis_type: 'summary', output_format: 'html' }, {} as never) as any;
    expect(html.rendered).toContain('<table>');
  });
});

describe('http executor helpers', () => {
  it('expands URL templates with encoded input values', () => {
    expect(expandTemplate('https://x/{{input.id}}/q?s={{ input.q.s }}', { id: 'a b', q: { s: '&' } })).toBe('https://x/a%20b/q?s=%26');
  });
  it('blocks private, loopback, link-local and metadata addresses', async () => {
    for (const ip of ['127.0.0.1', '10.1.2.3', '192.168.0.1', '172.16.5.5', '169.254.169.254', '::1', 'fe80::1', 'fc00::1', '0.0.0.0', '::ffff:127.0.0.1']) {
      expect(isBlockedAddress(ip), ip).toBe(true);
    }
    expect(isBlockedAddress('93.184.216.34')).toBe(false);
    await expect(assertPublicUrl(new URL('http://127.0.0.1:1/'), [])).rejects.toThrow(/refusing/);
    await expect(assertPublicUrl(new URL('http://127.0.0.1:1/'), ['127.0.0.0/8'])).resolves.toBeUndefined();
    await expect(assertPublicUrl(new URL('file:///etc/passwd'), [])).rejects.toThrow(/http/);
  });
});

describe("tenants' patterns", () => {
  it('match a string only while its length times the pattern\'s RE2 instructions stays within MAX_PATTERN_WORK', () => {
    const pattern = '^[ab]*a[ab]{400}$';
    const longest = Math.floor(MAX_PATTERN_WORK / (compileRe2(pattern) as number));
    const cheap = { type: 'string', pattern: '^[ab]*$' };
    const heavy = { type: 'string', pattern };
    markTenantSchema(cheap);
    markTenantSchema(heavy);
    // a cheap pattern matches strings far longer than any input
    expect(validateAgainst(cheap, 'ab'.repeat(500_000))).toBeUndefined();
    // a heavy one matches up to its bound; a string past it that the pattern would match does not
    expect(validateAgainst(heavy, `a${'b'.repeat(400)}`)).toBeUndefined();
    expect(validateAgainst(heavy, `${'b'.repeat(longest - 401)}a${'b'.repeat(400)}`)).toBeUndefined();
    expect(validateAgainst(heavy, `${'b'.repeat(longest)}a${'b'.repeat(400)}`)).toMatchObject({ reason: expect.stringContaining('pattern') });
    expect(longest).toBeLessThan(256 * 1024); // within what one input may hold
  });
});

describe('schemas and registry', () => {
  it('validates with JSON Schema 2020-12 and draft-07, giving the failing path', () => {
    expect(validateAgainst({ type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] }, {})).toEqual({ path: '/a', reason: "must have required property 'a'" });
    expect(validateAgainst({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'string', format: 'email' }, 'nope')?.reason).toContain('email');
    expect(validateAgainst({ type: 'array', prefixItems: [{ type: 'string' }] }, [1])?.path).toBe('/0');
  });
  it("releases a compiled schema (a replaced tenant definition's): the next use compiles it afresh", () => {
    for (const draft of [{}, { $schema: 'http://json-schema.org/draft-07/schema#' }]) {
      const schema = { ...draft, type: 'object', required: ['a'] };
      const first = compileSchema(schema);
      expect(compileSchema(schema)).toBe(first); // cached
      releaseSchema(schema);
      // Ajv would hand back its own cached validator if it still held the schema
      const second = compileSchema(schema);
      expect(second).not.toBe(first);
      expect([first({}), second({})]).toEqual([false, false]); // the released validator still works
    }
  });
  it('refuses malformed definitions', () => {
    expect(() => checkDefinition({ id: 'bad id', kind: 'function' } as never, 'x')).toThrow(/id/);
    expect(() => checkDefinition({ id: 'ok', kind: 'function' } as never, 'x')).toThrow(/handler/);
    expect(() => checkDefinition({ id: 'ok', kind: 'http', input_schema: { type: 'nope' } } as never, 'x')).toThrow(/Schema/);
    const r = new Registry().addDefinition({ id: 'ok', kind: 'http' } as never);
    expect(r.get('t', 'ok')).toMatchObject({ name: 'ok', version: '1.0.0', input_schema: {} });
  });
});

describe("hideAddresses: a configured http definition's errors name no address", () => {
  it('replaces IPv4 and IPv6 addresses with their ports, and nothing else', async () => {
    const { hideAddresses } = await import('../../src/executors/http.js');
    const cases: [string, string][] = [
      ['connect ECONNREFUSED 127.0.0.1:19209', "connect ECONNREFUSED the definition's address"],
      ['connect ECONNREFUSED ::1:8080', "connect ECONNREFUSED the definition's address"],
      ['connect ETIMEDOUT 2001:db8::5:443', "connect ETIMEDOUT the definition's address"],
      ['connect ECONNREFUSED [::ffff:10.0.0.1]:80', "connect ECONNREFUSED the definition's address"],
      ['connect EHOSTUNREACH fe80::1%eth0', "connect EHOSTUNREACH the definition's address"],
      ['upstream answered 503', 'upstream answered 503'],
      ['read ECONNRESET at 12:30', 'read ECONNRESET at 12:30'],
    ];
    for (const [text, shown] of cases) expect(hideAddresses(text), text).toBe(shown);
  });
});
