// `calculator`: evaluates arithmetic with a small recursive-descent parser (never eval): + - * /
// % ^ (or **), parentheses, unary minus, constants pi and e, and common Math functions.
import { ToolError, type AgentTool } from './types.js';

const FUNCS: Record<string, (...a: number[]) => number> = {
  sqrt: Math.sqrt, abs: Math.abs, round: Math.round, floor: Math.floor, ceil: Math.ceil,
  ln: Math.log, log: Math.log, log10: Math.log10, log2: Math.log2, exp: Math.exp,
  sin: Math.sin, cos: Math.cos, tan: Math.tan, asin: Math.asin, acos: Math.acos, atan: Math.atan,
  min: Math.min, max: Math.max, pow: Math.pow,
};
const CONSTS: Record<string, number> = { pi: Math.PI, e: Math.E };
/** Longer inputs are refused: a tool argument is not a program. */
export const MAX_EXPRESSION_CHARS = 1_000;

export function evaluate(expression: string): number {
  if (expression.length > MAX_EXPRESSION_CHARS) throw new ToolError(`expression longer than ${MAX_EXPRESSION_CHARS} characters`);
  const tokens = expression.match(/\d+\.?\d*(?:e[+-]?\d+)?|\.\d+|\*\*|[A-Za-z_][A-Za-z0-9_]*|[-+*/%^(),]|\S/gi) ?? [];
  let i = 0;
  const peek = () => tokens[i];
  const next = () => tokens[i++];
  const expect = (t: string) => {
    if (next() !== t) throw new ToolError(`expected "${t}" in expression`);
  };
  const expr = (): number => {
    let v = term();
    while (peek() === '+' || peek() === '-') v = next() === '+' ? v + term() : v - term();
    return v;
  };
  const term = (): number => {
    let v = unary();
    while (peek() === '*' || peek() === '/' || peek() === '%') {
      const op = next();
      const r = unary();
      v = op === '*' ? v * r : op === '/' ? v / r : v % r;
    }
    return v;
  };
  // a sign binds looser than a power, as in mathematics and Python: -2^2 is -4, 2^-1 is 0.5
  const unary = (): number => {
    if (peek() === '-') return next(), -unary();
    if (peek() === '+') return next(), unary();
    return power();
  };
  const power = (): number => {
    const base = primary();
    if (peek() === '^' || peek() === '**') {
      next();
      return base ** unary(); // right-associative: 2^3^2 is 2^9
    }
    return base;
  };
  const primary = (): number => {
    const t = next();
    if (t === undefined) throw new ToolError('unexpected end of expression');
    if (t === '(') {
      const v = expr();
      expect(')');
      return v;
    }
    if (/^(\d|\.\d)/.test(t)) return Number(t);
    const name = t.toLowerCase();
    // own names only: `constructor(5)` and `toString` are no functions of ours
    if (Object.hasOwn(CONSTS, name) && peek() !== '(') return CONSTS[name]!;
    const fn = Object.hasOwn(FUNCS, name) ? FUNCS[name] : undefined;
    if (!fn) throw new ToolError(`unknown symbol "${t}"`);
    expect('(');
    const args: number[] = [];
    if (peek() !== ')') {
      args.push(expr());
      while (peek() === ',') next(), args.push(expr());
    }
    expect(')');
    return fn(...args);
  };
  const v = expr();
  if (i < tokens.length) throw new ToolError(`unexpected "${tokens[i]}" in expression`);
  if (!Number.isFinite(v)) throw new ToolError('the result is not a finite number');
  return v;
}

export function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(12)));
}

export const calculatorTool: AgentTool = {
  spec: {
    name: 'calculator',
    description: 'Evaluate an arithmetic expression exactly. Supports + - * / % ^, parentheses, pi, e, sqrt, abs, round, floor, ceil, ln (log is ln too), log10, log2, exp, sin, cos, tan, min, max, pow.',
    parameters: {
      type: 'object',
      properties: { expression: { type: 'string', description: 'e.g. "(17 * 23) / 4 + sqrt(2)"' } },
      required: ['expression'],
    },
  },
  async run(args) {
    if (typeof args.expression !== 'string') throw new ToolError('expression (a string) is required');
    return formatNumber(evaluate(args.expression));
  },
};
