#!/usr/bin/env node
// The `taskgate` command's entry point: runs cli/commands.ts and turns a failure into exit code 1.
import { ConfigError } from '../config/index.js';
import { DataDirError } from '../storage/pglite.js';
import { MigrationLockError, SchemaTooNewError } from '../storage/migrate.js';
import { DatabaseConnectError } from '../storage/pg.js';
import { run } from './commands.js';

type ListenError = Error & { code?: unknown; syscall?: unknown; address?: unknown; port?: unknown };

/**
 * One line for a listen that failed for a reason the operator fixes with a setting (a port in
 * use printed net's raw EADDRINUSE stack), else undefined.
 */
function listenProblem(err: unknown): string | undefined {
  // (net's own error, or one that carries it as its cause)
  let e = err as ListenError | undefined;
  for (let depth = 0; e instanceof Error && e.syscall !== 'listen' && depth < 4; depth++) e = e.cause as ListenError | undefined;
  if (!(e instanceof Error) || e.syscall !== 'listen') return undefined;
  const where = typeof e.address === 'string' && typeof e.port === 'number' ? `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}` : 'the address';
  if (e.code === 'EADDRINUSE') return `cannot listen on ${where}: the port is already in use (another taskgate?) — stop it, or choose another port with --port or PORT`;
  if (e.code === 'EACCES') return `cannot listen on ${where}: permission denied (ports below 1024 need privileges) — choose another port with --port or PORT`;
  if (e.code === 'EADDRNOTAVAIL') return `cannot listen on ${where}: no such address on this machine — choose another with --host or HOST`;
  return undefined;
}

run(process.argv.slice(2)).catch((err: unknown) => {
  const listen = listenProblem(err);
  if (listen) {
    process.stderr.write(`taskgate: ${listen}\n`);
  } else if (err instanceof ConfigError || err instanceof DataDirError || err instanceof SchemaTooNewError || err instanceof MigrationLockError || err instanceof DatabaseConnectError) {
    process.stderr.write(`taskgate: ${err.message}\n`);
  } else {
    process.stderr.write(`taskgate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
});
