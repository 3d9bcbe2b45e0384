// Copies non-TypeScript runtime assets (SQL migrations) from src/ into dist/ after tsc. The
// target is replaced, not merged: a migration renamed or removed in src/ must not linger in dist/.
import { cpSync, rmSync } from 'node:fs';
rmSync('dist/storage/migrations', { recursive: true, force: true });
cpSync('src/storage/migrations', 'dist/storage/migrations', { recursive: true });
