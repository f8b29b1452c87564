import t from 'tap';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { emptyDir, keepInCheckpoint, LineWriter, readFileLines, readLines, resumeFromCheckpoint } from '../../lib/sketch/spill-file.ts';
import { readJsonl } from '../../lib/testing.ts';
import { tmpdir } from '../helpers.ts';

const texts = readJsonl(new URL('../../samples/fortunes.jsonl', import.meta.url)).map((r) => JSON.stringify(r));

t.test('LineWriter and readLines: lines of real text, lines longer than a read, characters across reads', async (t) => {
  const dir = tmpdir();
  const file = path.join(dir, 'lines.jsonl');
  // 'x' + 'ж'... puts every 2-byte character at an odd offset, so the 1 MiB reads cut one in half.
  const long = 'x' + 'ж'.repeat(1_300_000);
  const lines = [...texts, long, '', 'после', long + 'ñ', ...texts];
  const w = new LineWriter(file);
  for (const l of lines) w.line(l);
  w.close();
  t.equal(w.bytes, statSync(file).size);
  t.equal(readFileSync(file, 'utf8'), lines.map((l) => l + '\n').join(''));
  t.same([...readFileLines(file)], lines);
  // A byte range: from the start of a line to the end of another.
  const starts = [0];
  for (const l of lines) starts.push(starts[starts.length - 1] + Buffer.byteLength(l) + 1);
  const fd = openSync(file, 'r');
  t.same([...readLines(fd, starts[5], starts[texts.length + 3])], lines.slice(5, texts.length + 3));
  t.same([...readLines(fd, starts[3], starts[3])], []);
  closeSync(fd);
});

t.test('LineWriter: binary sections between lines, small and larger than its buffer', async (t) => {
  const file = path.join(tmpdir(), 'mixed.bin');
  const small = new Uint8Array(Uint32Array.of(1, 2, 0xffffffff).buffer);
  const big = new Uint8Array(1_500_000).map((_, i) => (i * 7) & 0xff);
  const w = new LineWriter(file);
  w.line(texts[0]);
  w.bytesOut(small);
  w.bytesOut(big);
  w.line('ünïcode');
  for (let i = 0; i < 2000; i++) w.bytesOut(small);
  w.close();
  const expected = Buffer.concat([Buffer.from(texts[0] + '\n'), small, big, Buffer.from('ünïcode\n'), ...Array.from({ length: 2000 }, () => small)]);
  t.ok(readFileSync(file).equals(expected));
  t.equal(w.bytes, expected.length);
});

t.test('keepInCheckpoint / resumeFromCheckpoint: a link, later appends cut back, the checkpoint copy intact', async (t) => {
  const work = tmpdir();
  const ckpt = tmpdir();
  const file = path.join(work, 'spill.jsonl');
  writeFileSync(file, 'kept 1\nkept 2\n');
  keepInCheckpoint(file, path.join(ckpt, 'spill.jsonl'));
  t.equal(statSync(file).ino, statSync(path.join(ckpt, 'spill.jsonl')).ino, 'a hard link, not a copy');
  // The interrupted run appends after the checkpoint, then its working name goes away.
  writeFileSync(file, 'kept 1\nkept 2\nlost 3\n');
  emptyDir(work);
  t.same(readdirSync(work), []);
  const again = path.join(work, 'resumed.jsonl');
  const fd = resumeFromCheckpoint(path.join(ckpt, 'spill.jsonl'), again, 14);
  t.same([...readLines(fd)], ['kept 1', 'kept 2'], 'cut back to the checkpoint');
  closeSync(fd);
  t.equal(readFileSync(path.join(ckpt, 'spill.jsonl'), 'utf8'), 'kept 1\nkept 2\n');
  mkdirSync(path.join(work, 'sub'));
  emptyDir(work);
  t.notOk(existsSync(again));
});
