import t from 'tap';
import { statSync } from 'node:fs';
import path from 'node:path';
import { FitSample } from '../../lib/sketch/fit-sample.ts';
import { wordFeatures, type SparseFeatures } from '../../lib/sketch/kmeans.ts';
import { readJsonl } from '../../lib/testing.ts';
import { tmpdir } from '../helpers.ts';

const position = (i: number): SparseFeatures => ({ indices: Uint32Array.of(i), values: Float64Array.of(1) });

t.test('a uniform sample of the stream, reproducible from the seed', async (t) => {
  const n = 20000;
  const size = 1000;
  const means: number[] = [];
  for (const seed of [1, 2, 3]) {
    const s = new FitSample(size, seed, () => tmpdir());
    for (let i = 0; i < n; i++) s.offer(() => position(i));
    t.equal(s.items.length, size);
    const picked = s.items.map((f) => f.indices[0]);
    t.equal(new Set(picked).size, size, 'no document twice');
    means.push(picked.reduce((a, b) => a + b, 0) / size);
    // The mean position of a uniform sample: (n-1)/2, SD about n/sqrt(12 size) = 183.
    t.ok(Math.abs(means[means.length - 1] - (n - 1) / 2) < 5 * 183, `seed ${seed}: mean position ${means[means.length - 1]}`);
    const late = picked.filter((p) => p >= n / 2).length;
    t.ok(Math.abs(late - size / 2) < 5 * Math.sqrt(size / 4), `seed ${seed}: ${late} of ${size} from the second half`);
  }
  t.not(means[0], means[1]);
  const again = new FitSample(size, 1, () => tmpdir());
  for (let i = 0; i < n; i++) again.offer(() => position(i));
  t.equal(again.items.reduce((a, f) => a + f.indices[0], 0) / size, means[0]);
});

t.test('checkpoint after checkpoint: features of new slots appended, the copy compacted, the latest checkpoint resumes', async (t) => {
  // 30 passes over the KJV chapters: long texts, many replaced slots.
  const texts = readJsonl(new URL('../../samples/kjv.jsonl', import.meta.url)).map((r) => r.text as string);
  const docs: string[] = [];
  for (let copy = 0; copy < 30; copy++) for (const x of texts) docs.push(`${copy} ${x}`);
  const feats = (i: number) => () => wordFeatures(docs[i], 4096);
  const whole = new FitSample(100, 7, () => tmpdir());
  docs.forEach((_, i) => whole.offer(feats(i)));
  const work = tmpdir();
  const a = new FitSample(100, 7, () => work, 0);
  const saves: { dir: string; at: number; size: number }[] = [];
  for (let at = 0; at < docs.length; at += 300) {
    for (let i = at; i < Math.min(docs.length, at + 300); i++) a.offer(feats(i));
    const dir = tmpdir();
    a.save(dir);
    saves.push({ dir, at: Math.min(docs.length, at + 300), size: statSync(path.join(dir, 'features.bin')).size });
  }
  t.same(a.items, whole.items);
  t.ok(saves.some((s, i) => i > 0 && s.size < saves[i - 1].size), 'the copy was rewritten with the live slots only');
  // Latest first: resuming from a checkpoint cuts back the files it shares with later ones.
  for (const s of [saves[saves.length - 2], saves[5]]) {
    const b = new FitSample(100, 7, () => work);
    b.load(s.dir);
    for (let i = s.at; i < docs.length; i++) b.offer(feats(i));
    t.same(b.items, whole.items, `resumed after ${s.at} documents: the same sample`);
  }
  t.throws(() => new FitSample(50, 7, () => work).load(saves[0].dir), /fitting sample of 100 documents, this one holds 50/);
});
