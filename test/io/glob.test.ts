import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expandGlob, isGlob } from '../../lib/io/glob.ts';
import { tmpdir } from '../helpers.ts';

t.test('globs expand to sorted files', async (t) => {
  const dir = tmpdir();
  for (const f of ['a/x1.jsonl', 'a/x2.jsonl', 'a/y.json', 'a/b/x3.jsonl', 'a/b/c/x4.jsonl.gz', 'a/.hidden.jsonl', 'c.jsonl']) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), '{}\n');
  }
  const rel = (l: string[]) => l.map((p) => path.relative(dir, p));
  t.same(rel(expandGlob('a/*.jsonl', dir)), ['a/x1.jsonl', 'a/x2.jsonl']);
  t.same(rel(expandGlob('a/x?.jsonl', dir)), ['a/x1.jsonl', 'a/x2.jsonl']);
  t.same(rel(expandGlob('a/x[2-9].jsonl', dir)), ['a/x2.jsonl']);
  t.same(rel(expandGlob('a/**/*.jsonl*', dir)), ['a/b/c/x4.jsonl.gz', 'a/b/x3.jsonl', 'a/x1.jsonl', 'a/x2.jsonl']);
  t.same(rel(expandGlob(path.join(dir, '*.jsonl'))), ['c.jsonl'], 'absolute patterns');
  t.same(rel(expandGlob('a/*', dir)), ['a/x1.jsonl', 'a/x2.jsonl', 'a/y.json'], 'directories and dot files are not matched');
  t.same(rel(expandGlob('missing.jsonl', dir)), ['missing.jsonl'], 'plain paths pass through');
  t.same(expandGlob('nothing/*.jsonl', dir), []);
  t.ok(isGlob('a/*.x'));
  t.notOk(isGlob('a/b.x'));
});
