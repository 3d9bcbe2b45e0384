// What `taskgate restore` checks in an archive before PGlite loads it, and how a failed load is
// described. PGlite 0.5 gunzips through a DecompressionStream whose write and close promises it
// never awaits: a damaged gzip made its error an unhandled rejection, a stack after our message.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

/** Why `archive` cannot be a backup (a gzip that does not inflate, neither gzip nor tar), or undefined. */
export async function archiveProblem(archive: Blob): Promise<string | undefined> {
  const head = new Uint8Array(await archive.slice(0, 512).arrayBuffer());
  if (head[0] === 0x1f && head[1] === 0x8b) {
    // streamed to nothing: a backup of a large database inflates to several times its size
    try {
      await pipeline(Readable.fromWeb(archive.stream() as never), createGunzip(), new Writable({ write: (_chunk, _enc, done) => done() }));
      return undefined;
    } catch (err) {
      return `is damaged: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  // a plain tar (PGlite's dumpDataDir('none')) has "ustar" at offset 257 of its first header
  if (Buffer.from(head.subarray(257, 262)).toString('latin1') === 'ustar') return undefined;
  return 'is neither a gzip file nor a tar archive';
}

/**
 * Emscripten's errno numbers (WASI's), as PGlite's file system throws them: `{ name: 'ErrnoError',
 * errno: 51 }` on a full disk, not an Error (measured: PGlite 0.5.16, a 3 MB tmpfs).
 */
const WASI_ERRNO: Readonly<Record<number, string>> = { 2: 'EACCES', 19: 'EDQUOT', 29: 'EIO', 44: 'ENOENT', 51: 'ENOSPC', 63: 'EPERM', 69: 'EROFS' };

/** The POSIX code of a file-system failure: Node's `code`, or PGlite's ErrnoError number. */
export function fsErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, errno, name } = err as { code?: unknown; errno?: unknown; name?: unknown };
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  if (name === 'ErrnoError' && typeof errno === 'number') return WASI_ERRNO[errno];
  return undefined;
}

/** A thrown value as one line: an Error's message, else the name, code, errno and message it carries. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err !== 'object' || err === null) return String(err);
  const { name, code, errno, message } = err as Record<string, unknown>;
  const known = fsErrorCode(err);
  const parts = [
    typeof name === 'string' ? name : 'error',
    known ?? (typeof code === 'string' || typeof code === 'number' ? String(code) : undefined),
    typeof errno === 'number' ? `(errno ${errno})` : undefined,
    typeof message === 'string' && message !== '' ? `: ${message}` : undefined,
  ].filter((p) => p !== undefined);
  return parts.join(' ').replace(' :', ':');
}

/**
 * Runs `load` with the zlib errors that PGlite leaves unhandled caught (its gunzip of what is not
 * gzip, e.g. a tar whose later header is damaged); any other unhandled rejection still ends the
 * process as Node would. Listens a turn of the event loop longer: Node reports unhandled rejections
 * after the microtasks drain, by which time `load` has already settled.
 */
export async function withoutZlibRejections<T>(load: () => Promise<T>): Promise<T> {
  const onRejection = (reason: unknown): void => {
    const code = (reason as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && code.startsWith('Z_')) return;
    throw reason;
  };
  process.on('unhandledRejection', onRejection);
  try {
    return await load();
  } finally {
    await new Promise((resolve) => setImmediate(resolve));
    process.off('unhandledRejection', onRejection);
  }
}
