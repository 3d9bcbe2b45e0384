// Copies non-TypeScript runtime assets (SQL migrations) from src/ into dist/ after tsc. The
// target is replaced, not merged: a migration renamed or removed in src/ must not linger in dist/.
// Also marks the CLI executable: tsc writes a new file 0644, and `npx taskgate` runs the bin file
// itself (npm sets the bit only when it first links the package, so a rebuilt dist/ lost it).
import { chmodSync, cpSync, rmSync } from 'node:fs';
rmSync('dist/storage/migrations', { recursive: true, force: true });
cpSync('src/storage/migrations', 'dist/storage/migrations', { recursive: true });
chmodSync('dist/cli/main.js', 0o755);
