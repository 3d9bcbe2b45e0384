// Reading a command line against what the command declares (cli/specs.ts): its arguments and its
// flags, each a switch or one taking a value. A misspelt flag, a value flag without its value or a
// stray word is a UsageError (exit 2) instead of being dropped: `tasks list --key` (key forgotten)
// once ran with the admin key, and `tasks list --stauts FAILED` listed every task.
import { UsageError, type Flags } from './shared.js';

export interface FlagSpec {
  /** The value's placeholder in help (`N`, `URL`); absent for a switch, which takes no value. */
  readonly value?: string;
  readonly about: string;
}

export interface CommandSpec {
  /** The words after `taskgate` that name it: `tasks list`. */
  readonly name: string;
  /** What follows the name in the usage line (flags in brackets are optional). */
  readonly synopsis: string;
  readonly about: string;
  /** Its positional arguments, all required, e.g. `['TASK_ID']`. */
  readonly args: readonly string[];
  readonly flags: Readonly<Record<string, FlagSpec>>;
}

/** Any of these anywhere on the line (before a `--`) asks for help: nothing else runs. */
export const HELP_FLAGS: readonly string[] = ['--help', '-h'];

interface FlagSeen {
  /** As written, without `=value`: `--stauts`, `-x`. */
  readonly written: string;
  readonly name: string;
  /** `--name=value` or `--name value`; undefined when none was given. */
  readonly value: string | undefined;
  readonly inline: boolean;
}

export interface Scanned {
  /** The words that are not flags or flag values: the command's name, then its arguments. */
  readonly words: string[];
  readonly flags: FlagSeen[];
  readonly help: boolean;
  /** For each word that directly follows a switch, that switch (`--force true`: a value a switch cannot take). */
  readonly afterSwitch: Map<number, string>;
}

/**
 * Splits argv into words and flags. `valueFlags` (every command's, whose kinds agree) says which
 * flags take the next word as their value — not when it starts with `--` or asks for help, so a
 * forgotten value is seen as missing rather than eating the next flag. Unknown flags take no value.
 */
export function scan(argv: readonly string[], valueFlags: ReadonlySet<string>): Scanned {
  const words: string[] = [];
  const flags: FlagSeen[] = [];
  const afterSwitch = new Map<number, string>();
  let help = false;
  let lastSwitch: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const wasSwitch = lastSwitch;
    lastSwitch = undefined;
    if (arg === '--') {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (HELP_FLAGS.includes(arg)) {
      help = true;
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      const written = `--${name}`;
      if (eq > 0) {
        flags.push({ written, name, value: arg.slice(eq + 1), inline: true });
      } else if (valueFlags.has(name)) {
        const next = argv[i + 1];
        const takes = next !== undefined && !next.startsWith('--') && !HELP_FLAGS.includes(next);
        flags.push({ written, name, value: takes ? next : undefined, inline: false });
        if (takes) i++;
      } else {
        flags.push({ written, name, value: undefined, inline: false });
        lastSwitch = written;
      }
    } else if (/^-[^\d]/.test(arg)) {
      // a short option: none is defined but -h
      flags.push({ written: arg, name: arg, value: undefined, inline: false });
    } else {
      if (wasSwitch) afterSwitch.set(words.length, wasSwitch);
      words.push(arg);
    }
  }
  return { words, flags, help, afterSwitch };
}

/** Checks what `scan` found against the command (`path` words name it); its arguments and flags. */
export function check(spec: CommandSpec, scanned: Scanned, path: number): { args: string[]; flags: Flags } {
  for (const f of scanned.flags) {
    if (!Object.hasOwn(spec.flags, f.name)) {
      const near = closest(f.name, Object.keys(spec.flags));
      throw new UsageError(`unknown option ${f.written} for taskgate ${spec.name}${near ? ` (did you mean --${near}?)` : ''}`);
    }
  }
  const flags: Flags = {};
  for (const f of scanned.flags) {
    const want = spec.flags[f.name]!.value;
    if (want === undefined) {
      if (f.inline) throw new UsageError(`${f.written} takes no value (got "${f.value}")`);
      flags[f.name] = true;
    } else {
      if (f.value === undefined || f.value.trim() === '') throw new UsageError(`${f.written} needs a value (${f.written} ${want})`);
      flags[f.name] = f.value;
    }
  }
  const args = scanned.words.slice(path);
  if (args.length < spec.args.length) throw new UsageError(`taskgate ${spec.name} needs ${spec.args.slice(args.length).join(' ')}`);
  if (args.length > spec.args.length) {
    const at = path + spec.args.length;
    const after = scanned.afterSwitch.get(at);
    const takes = spec.args.length === 0 ? `taskgate ${spec.name} takes no arguments` : `taskgate ${spec.name} takes only ${spec.args.join(' ')}`;
    const why = after ? `${takes}; ${after} takes no value` : takes;
    throw new UsageError(`unexpected argument '${scanned.words[at]}' (${why})`);
  }
  return { args, flags };
}

/** `Usage:` line, what the command does, and one line per flag. */
export function commandHelp(spec: CommandSpec): string {
  const rows: [string, string][] = Object.entries(spec.flags).map(([name, f]) => [`--${name}${f.value ? ` ${f.value}` : ''}`, f.about]);
  rows.push(['-h, --help', 'this help']);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  const usage = `Usage: taskgate ${spec.name}${spec.synopsis ? ' ' + spec.synopsis : ''}`;
  return `${usage}\n\n${spec.about}\n\nOptions:\n${rows.map(([left, about]) => `  ${left.padEnd(width)}${about}`).join('\n')}`;
}

/** The known name nearest to a misspelt one, if it is close (at most 2 edits, fewer than half its length). */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(name.replace(/^-+/, ''), k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= 2 && bestDistance * 2 < (best?.length ?? 0) ? best : undefined;
}

/** Edits (insert, delete, replace, swap two neighbours) from a to b: `stauts` → `status` is 1. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
