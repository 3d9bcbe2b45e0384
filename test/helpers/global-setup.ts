// Vitest's global setup: the servers under test serve the compiled SDK (dist/sdk, for the
// dashboard) and some suites spawn the built CLI (dist/cli). `npm test` builds first (pretest);
// a bare `npx vitest run …` on a fresh clone would fail those for want of dist/, so it is built
// here when missing. (A stale dist/ is not detected: rebuild with `npm run build`.)
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  if (existsSync(`${root}dist/cli/main.js`) && existsSync(`${root}dist/sdk/index.js`)) return;
  process.stderr.write('dist/ is missing: running `npm run build` first\n');
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
}
