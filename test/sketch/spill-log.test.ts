import t from 'tap';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SpillLog } from '../../lib/sketch/spill-log.ts';
import { readJsonl } from '../../lib/testing.ts';

const recs = [...readJsonl(new URL('../../samples/fortunes.jsonl', import.meta.url)), ...readJsonl(new URL('../../samples/handbook.jsonl', import.meta.url))];
const make = (memoryBytes: number, dir: string) =>
  new SpillLog<(typeof recs)[number]>({ memoryBytes, dir: () => dir, serialize: (r) => JSON.stringify(r), deserialize: (s) => JSON.parse(s), sizeOf: (r) => r.text.length * 2 });

t.test('memory then file, read back in order, twice, then removed', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spill-'));
  const log = make(50_000, dir);
  for (const r of recs) log.append(r);
  // Multi-byte text (ru, ja) crosses the 1 MiB read chunks; a 3 MB line crosses several.
  const big = { id: 'big', text: 'ж'.repeat(1_500_000) } as (typeof recs)[number];
  log.append(big);
  t.ok(log.spilledItems > recs.length / 2, `${log.spilledItems} spilled`);
  t.equal(readdirSync(dir).length, 1);
  const first = [...log.read(100, false)].flat();
  t.same(first, [...recs, big]);
  const second = [...log.read(77)].flat();
  t.same(second, [...recs, big]);
  t.equal(readdirSync(dir).length, 0, 'file removed after the last read');
});

t.test('everything in memory when it fits', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spill-'));
  const log = make(1 << 30, dir);
  for (const r of recs) log.append(r);
  t.equal(log.spilledItems, 0);
  t.equal(readdirSync(dir).length, 0);
  t.same([...log.read()].flat(), recs);
});

t.test('save and load: a new log continues from the saved state; appends after the save are discarded', async (t) => {
  for (const memoryBytes of [1 << 30, 50_000, 0]) {
    const work = mkdtempSync(path.join(os.tmpdir(), 'spill-'));
    const ckpt = mkdtempSync(path.join(os.tmpdir(), 'spill-ckpt-'));
    const half = recs.length >> 1;
    const a = make(memoryBytes, work);
    for (const r of recs.slice(0, half)) a.append(r);
    a.save(ckpt);
    // The interrupted run goes on and reads its log to the end (which removes its file).
    for (const r of recs.slice(half, half + 300)) a.append({ ...r, id: `lost-${r.id}` });
    t.equal([...a.read()].flat().length, half + 300);
    const b = make(memoryBytes, work);
    b.load(ckpt);
    t.equal(b.length, half);
    for (const r of recs.slice(half)) b.append(r);
    t.same([...b.read(64, false)].flat(), recs, `memoryBytes ${memoryBytes}: every item once, in order`);
    const whole = make(memoryBytes, work);
    for (const r of recs) whole.append(r);
    t.same([...whole.read(64, false)].flat(), recs);
    t.equal(b.spilledItems, whole.spilledItems, `${whole.spilledItems} spilled, as without the interruption`);
    t.equal(b.spilledBytes, whole.spilledBytes);
    whole.close();
    b.close();
    t.throws(() => {
      const c = make(memoryBytes, work);
      c.append(recs[0]);
      c.load(ckpt);
    }, /not empty/);
  }
});

t.test('checkpoint after checkpoint: the held items are appended to their copy, the latest checkpoint resumes', async (t) => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'spill-'));
  const a = make(200_000, work);
  const dirs: { dir: string; at: number }[] = [];
  for (let at = 0; at < recs.length; at += 400) {
    for (const r of recs.slice(at, at + 400)) a.append(r);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spill-ckpt-'));
    a.save(dir);
    dirs.push({ dir, at: Math.min(recs.length, at + 400) });
  }
  t.ok(a.spilledItems > 0 && a.spilledItems < recs.length - 400, `${recs.length - a.spilledItems} items held, ${a.spilledItems} spilled`);
  // Every checkpoint links the same copy of the held items, written once.
  const copies = dirs.map((d) => statSync(path.join(d.dir, 'memory.jsonl')).ino);
  t.equal(new Set(copies).size, 1);
  t.ok(statSync(path.join(dirs[0].dir, 'memory.jsonl')).size < 250_000, 'the held items once, not once per checkpoint');
  const last = dirs[dirs.length - 2];
  const b = make(200_000, work);
  b.load(last.dir);
  for (const r of recs.slice(last.at)) b.append(r);
  t.same([...b.read()].flat(), recs);
  a.close();
});
