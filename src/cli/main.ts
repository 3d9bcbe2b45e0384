#!/usr/bin/env node
// The `taskgate` command's entry point: runs cli/commands.ts and turns a failure into exit code 1.
import { ConfigError } from '../config/index.js';
import { DataDirError } from '../storage/pglite.js';
import { MigrationLockError, SchemaTooNewError } from '../storage/migrate.js';
import { DatabaseConnectError } from '../storage/pg.js';
import { run } from './commands.js';

run(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof DataDirError || err instanceof SchemaTooNewError || err instanceof MigrationLockError || err instanceof DatabaseConnectError) {
    process.stderr.write(`taskgate: ${err.message}\n`);
  } else {
    process.stderr.write(`taskgate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
});
