// Migrations are split into statements at line-final semicolons (storage/migrate.ts), but not
// inside a dollar-quoted function body, whose own statements end that way (migration 0010).
import { describe, expect, it } from 'vitest';
import { loadMigrations, splitStatements } from '../../src/storage/migrate.js';

describe('splitStatements', () => {
  it('splits at line-final semicolons and drops comment lines', () => {
    expect(splitStatements('-- a comment;\nCREATE TABLE a (x int);\n\nCREATE INDEX a_x ON a (x);\n')).toEqual([
      'CREATE TABLE a (x int)', 'CREATE INDEX a_x ON a (x)',
    ]);
  });

  it('keeps a function body whole', () => {
    const fn = 'CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n  RETURN 2;\nEND\n$$;';
    expect(splitStatements(`DROP FUNCTION g();\n${fn}\nSELECT 1;`)).toEqual([
      'DROP FUNCTION g()', fn.slice(0, -1), 'SELECT 1',
    ]);
  });

  it('splits the fair-claim migration into its index, the cap column, the old function’s drop and the new function', () => {
    const m = loadMigrations().find((x) => x.version === 10)!;
    const stmts = splitStatements(m.sql);
    expect(stmts.map((s) => s.split(/\s+/).slice(0, 2).join(' '))).toEqual(['CREATE INDEX', 'ALTER TABLE', 'DROP FUNCTION', 'CREATE FUNCTION']);
  });
});
