import { describe, expect, it } from 'vitest';
import { readFileSync, existsSync, statSync } from 'node:fs';

describe('package exports', () => {
  it('every export points at a file the build produces', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { exports: Record<string, string>; bin: Record<string, string> };
    for (const target of [...Object.values(pkg.exports), ...Object.values(pkg.bin)]) {
      const src = target.replace(/^(\.\/)?dist\//, 'src/').replace(/\.js$/, '.ts');
      expect(existsSync(new URL(`../../${src}`, import.meta.url)), src).toBe(true);
    }
  });

  it('the built bin is executable (`npx taskgate` runs the file itself)', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { bin: Record<string, string> };
    for (const target of Object.values(pkg.bin)) {
      const file = new URL(`../../${target.replace(/^\.\//, '')}`, import.meta.url);
      expect(readFileSync(file, 'utf8').startsWith('#!/usr/bin/env node'), target).toBe(true);
      expect(statSync(file).mode & 0o111, target).not.toBe(0);
    }
  });
});
