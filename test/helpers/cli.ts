// The CLI in process, through its entry point (argument checks included): what it printed and the
// exit code it set (process.exitCode, reset after each call).
import { run } from '../../src/cli/commands.js';

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

export async function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  await run(args, { out: (t) => void out.push(t), err: (t) => void err.push(t), env });
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, out: out.join('\n'), err: err.join('\n') };
}
