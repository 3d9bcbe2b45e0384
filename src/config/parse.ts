// Reading one setting's raw value (a flag or an environment variable) into a typed one. Every
// reader refuses what it cannot read with a ConfigError naming the setting: a mistyped value stops
// the start instead of quietly meaning something else. An empty value counts as unset.
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Raw = string | boolean | undefined;

/** The longest delay a Node timer honours (2^31 − 1 ms, about 24.8 days): a longer one fires after 1 ms (domain/time.ts's twin: config imports nothing from the project). */
export const MAX_TIMER_MS = 2_147_483_647;
/** The longest interval that may be stretched by +25 % jitter and still be one timer. */
export const MAX_JITTERED_TIMER_MS = Math.floor(MAX_TIMER_MS / 1.25);
/** 100 years: past it `now() - interval` leaves PostgreSQL's timestamp range. */
const MAX_DURATION_MS = 36_500 * 86_400_000;

/**
 * A decimal number as written (`42`, `-1.5`, `2e3`), spaces around it allowed: Number() alone also
 * read `0x10` as 16 and a blank as 0 (`TASKGATE_RATE_LIMIT_PER_MIN=' '` turned limits off).
 */
const DECIMAL = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;
const decimal = (raw: Raw): number => (typeof raw === 'string' && DECIMAL.test(raw) ? Number(raw) : NaN);

export function int(name: string, raw: Raw, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (raw === undefined || raw === '') return fallback;
  const n = decimal(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got ${String(raw)}`);
  return n;
}

export function num(name: string, raw: string | undefined, fallback: number, min = -Infinity, max = Infinity): number {
  if (raw === undefined || raw === '') return fallback;
  const n = decimal(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new ConfigError(`${name} must be a number between ${min} and ${max}, got ${raw}`);
  return n;
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

/** `1/true/yes/on` or `0/false/no/off` (any case); a bare flag is true; unset or empty is false. */
export function bool(name: string, raw: Raw): boolean {
  if (raw === true) return true;
  if (raw === undefined || raw === false || raw === '') return false;
  const v = raw.trim().toLowerCase();
  if (TRUE.includes(v)) return true;
  if (FALSE.includes(v)) return false;
  throw new ConfigError(`${name} must be true or false (also 1/0, yes/no, on/off), got ${raw}`);
}

/** One of `allowed`, or `fallback` when unset. */
export function oneOf<T extends string>(name: string, raw: Raw, allowed: readonly T[], fallback: T): T {
  if (raw === undefined || raw === '') return fallback;
  if (typeof raw === 'string' && (allowed as readonly string[]).includes(raw)) return raw as T;
  throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got ${String(raw)}`);
}

export function list(raw: string | undefined): string[] {
  return (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

export function str(raw: Raw): string | undefined {
  return typeof raw === 'string' && raw !== '' ? raw : undefined;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `30d`, `12h`, `90m`, `45s`, `500ms` → ms; `0`, `off` or unset → 0 (unless `offMeans` is
 * null: a flag such as `prune --older-than` has no "off", and its error does not offer one).
 * A bare number is refused (which unit?).
 */
export function parseDuration(name: string, raw: string | undefined, offMeans: string | null = 'keep everything'): number {
  if (offMeans !== null && (raw === undefined || raw === '' || raw === '0' || raw.toLowerCase() === 'off')) return 0;
  const m = /^(\d+)\s*(ms|s|m|h|d)$/.exec((raw ?? '').trim());
  const ms = m ? Number(m[1]) * DURATION_UNITS_MS[m[2]!]! : NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0 || ms > MAX_DURATION_MS) {
    throw new ConfigError(`${name} must be a duration such as 30d, 12h, 90m or 45s (at most 36500d)${offMeans === null ? '' : `, or 0 / off to ${offMeans}`}; got ${raw ?? 'nothing'}`);
  }
  return ms;
}
