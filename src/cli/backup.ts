// `taskgate backup --out FILE` (a client command: the server's online PGlite backup over HTTP) and
// `taskgate restore FILE --data-dir DIR` (offline: loads a backup into a data directory that has
// no database yet, never over one).
import { createWriteStream, existsSync, linkSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { loadConfig } from '../config/index.js';
import { downloadBackup } from '../sdk/backup.js';
import { DataDirError, restorePglite } from '../storage/pglite.js';
import { commandHelp } from './args.js';
import { cliConnection, exitCodeFor, need, type CliIo, type Flags } from './shared.js';
import { SERVER_COMMANDS } from './specs.js';

/** A size as people read it: `4.7 MB`, `812 kB`, `93 B`. */
function size(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : bytes >= 1e3 ? `${Math.round(bytes / 1e3)} kB` : `${bytes} B`;
}

/** `arg` as a POSIX shell word: left bare when it holds only characters no shell treats specially. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** A backup never replaces a file unasked: exit 1, one line. */
function exists(io: CliIo, out: string): number {
  io.err(`taskgate: ${out} already exists: choose another --out, or pass --force to overwrite it`);
  return 1;
}

/** `taskgate backup --out FILE [--force]`; returns the exit code. */
export async function runBackup(flags: Flags, io: CliIo): Promise<number> {
  let out: string | undefined;
  let partial: string | undefined;
  try {
    out = need(flags, 'out');
    const force = flags.force === true;
    // checked before asking: the server builds the whole dump for each request
    if (!force && existsSync(out)) return exists(io, out);
    const download = await downloadBackup({ ...cliConnection(flags, io), fetch: io.fetch, signal: io.signal });
    // written beside FILE, then put in its place whole: a download that breaks off leaves no
    // truncated backup, nor (with --force) destroys the previous one
    partial = `${out}.partial-${process.pid}`;
    await pipeline(Readable.fromWeb(download.body as NodeReadableStream<Uint8Array>), createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
    if (force) renameSync(partial, out);
    else linkSync(partial, out); // EEXIST if FILE appeared meanwhile: still not overwritten
    rmSync(partial, { force: true });
    partial = undefined;
    const bytes = statSync(out).size;
    if (flags.json === true) io.out(JSON.stringify({ path: resolve(out), bytes, server_file_name: download.fileName ?? null }));
    else io.out(`${resolve(out)} (${size(bytes)})`);
    return 0;
  } catch (err) {
    if (partial) rmSync(partial, { force: true });
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (out && code === 'EEXIST') return exists(io, out);
    if (typeof code === 'string' && (err as NodeJS.ErrnoException).syscall !== undefined) {
      io.err(`taskgate: cannot write ${out}: ${(err as Error).message}`);
      return 1;
    }
    try {
      return exitCodeFor(err, io, commandHelp(SERVER_COMMANDS.backup!));
    } catch {
      // the answer broke off mid-body (the server stopped): nothing was written
      io.err(`taskgate: the backup's download failed: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  }
}

/** `taskgate restore FILE [--data-dir DIR]`; returns the exit code. */
export async function runRestore(file: string, flags: Flags, io: CliIo): Promise<number> {
  const { dataDir } = loadConfig(flags, io.env);
  let archive: Blob;
  try {
    archive = new Blob([readFileSync(file)]);
  } catch (err) {
    io.err(`taskgate: cannot read ${file}: ${(err as Error).message}`);
    return 1;
  }
  try {
    const version = await restorePglite(dataDir, archive, file);
    io.out(`Restored ${file} into ${resolve(dataDir)} (schema version ${version}).`);
    io.err(`Next: taskgate serve --data-dir ${shellQuote(dataDir)}. The API keys are those of the backup (admin.key is not in it: copy yours\n` +
      'into the directory for the client commands that read it); tasks RUNNING at the backup run again once their lease runs out.');
    return 0;
  } catch (err) {
    if (!(err instanceof DataDirError)) throw err;
    io.err(`taskgate: ${err.message}`);
    return 1;
  }
}
