import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { encodeBatch, openOutput } from '../../lib/io/output.ts';
import type { Rec } from '../../lib/operator.ts';
import { SAMPLES, tmpdir } from '../helpers.ts';

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

t.test('opening a file output removes the unfinished files of killed runs, not those of running ones', async (t) => {
  const dir = tmpdir('mixstream-output-');
  const file = path.join(dir, 'out.jsonl');
  // The pid of a process that has exited.
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  t.ok(/^\d+$/.test(gone));
  const stale = `out.jsonl.partial-${gone}`;
  const running = `out.jsonl.partial-${process.ppid}`;
  for (const name of [stale, running, 'out.jsonl.partial-x1', 'other.jsonl.partial-1']) writeFileSync(path.join(dir, name), 'partial\n');
  const out = openOutput(file);
  out.stream.end('{"id":"a"}\n');
  await out.done;
  t.same(readdirSync(dir).sort(), ['other.jsonl.partial-1', 'out.jsonl', 'out.jsonl.partial-x1', running].sort());
  t.equal(readFileSync(file, 'utf8'), '{"id":"a"}\n');
});
