import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { encodeBatch } from '../../lib/io/output.ts';
import type { Rec } from '../../lib/operator.ts';
import { SAMPLES } from '../helpers.ts';

const records: Rec[] = readFileSync(path.join(SAMPLES, 'kjv.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

t.test('a batch encodes to NDJSON in pieces of whole lines of about 32K characters', async (t) => {
  const pieces = encodeBatch(records);
  t.equal(pieces.join(''), records.map((r) => JSON.stringify(r) + '\n').join(''), 'the pieces joined are the batch, one object per line');
  t.ok(pieces.length > 3, `${pieces.length} pieces`);
  for (const p of pieces) t.ok(p.endsWith('\n'), 'a piece ends with a whole line');
  for (const p of pieces.slice(0, -1)) {
    const withoutLast = p.slice(0, p.lastIndexOf('\n', p.length - 2) + 1);
    t.ok(p.length >= 32 * 1024 && withoutLast.length < 32 * 1024, 'cut right after the lines reach 32K characters');
  }
  t.ok(pieces.at(-1)!.length <= 32 * 1024 + Math.max(...records.map((r) => JSON.stringify(r).length)));
});

t.test('a record longer than a piece ends the piece it joins; an empty batch makes none', async (t) => {
  const big: Rec = { id: 'big', text: 'x'.repeat(100_000) };
  const pieces = encodeBatch([{ id: 'a', text: 'a' }, big, { id: 'b', text: 'b' }]);
  t.same(pieces, [JSON.stringify({ id: 'a', text: 'a' }) + '\n' + JSON.stringify(big) + '\n', JSON.stringify({ id: 'b', text: 'b' }) + '\n']);
  t.same(encodeBatch([]), []);
});
