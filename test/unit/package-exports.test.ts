import { describe, expect, it } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';

describe('package exports', () => {
  it('every export points at a file the build produces', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { exports: Record<string, string>; bin: Record<string, string> };
    for (const target of [...Object.values(pkg.exports), ...Object.values(pkg.bin)]) {
      const src = target.replace(/^(\.\/)?dist\//, 'src/').replace(/\.js$/, '.ts');
      expect(existsSync(new URL(`../../${src}`, import.meta.url)), src).toBe(true);
    }
  });
});
