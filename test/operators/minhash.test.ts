import t from 'tap';
import minhash from '../../operators/minhash.ts';
import shingle from '../../operators/shingle.ts';
import normalize from '../../operators/normalize.ts';
import { internals, type Rec } from '../../lib/operator.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import { createMinHasher, estimateJaccard } from '../../lib/sketch/minhash.ts';
import { exactJaccard, recordShingles, shingleText } from '../../lib/text/shingle.ts';
import { BLOCK_BYTES } from '../../lib/sketch/signature-task.ts';

const load = (name: string) => readJsonl(new URL(`../../samples/${name}.jsonl`, import.meta.url));

t.test('normalize -> shingle -> minhash on real text: signatures of the shingles, in order', async (t) => {
  const input = [...load('handbook'), ...load('fortunes').slice(0, 500)];
  const normalized = (await runOperator(normalize, {}, input)).output;
  const shingled = (await runOperator(shingle, {}, normalized, { workers: 2 })).output;
  const run = await runOperator(minhash, {}, shingled, { workers: 2, batchSize: 128 });
  t.same(run.output.map((r) => r.id), normalized.map((r) => r.id), 'order kept');
  const hasher = createMinHasher({ perms: 128, seed: 1, scheme: 'oph' });
  let bad = 0;
  for (const rec of run.output) {
    const sig = internals(rec).signature!;
    const expected = hasher.signature(recordShingles(rec, { unit: 'word', n: 5 }));
    if (sig.length !== 128 || sig.some((v, i) => v !== expected[i])) bad++;
  }
  t.equal(bad, 0, 'every signature equals the kernel over the record\'s shingles');
  t.notOk(JSON.stringify(run.output[0]).includes('signature'), 'signatures stay internal');
});

t.test('without a shingle step, minhash shingles on its own (and stores the shingles)', async (t) => {
  const recs = load('kjv').slice(0, 30);
  const run = await runOperator(minhash, { scheme: 'classic', perms: 64, seed: 9, unit: 'char', n: 7 }, structuredClone(recs), { workers: 2 });
  const hasher = createMinHasher({ perms: 64, seed: 9, scheme: 'classic' });
  for (const rec of run.output) {
    const shingles = shingleText(rec.text, { unit: 'char', n: 7 });
    t.same(internals(rec).shingles, shingles);
    t.same(internals(rec).signature, hasher.signature(shingles));
  }
});

t.test('shingles from an earlier step win over minhash\'s own shingle options', async (t) => {
  const recs = (await runOperator(shingle, { unit: 'word', n: 3 }, load('gcide').slice(0, 50), { workers: 0 })).output;
  const run = await runOperator(minhash, { n: 9 }, recs, { workers: 1 });
  const hasher = createMinHasher({ scheme: 'oph' });
  for (const rec of run.output) t.same(internals(rec).signature, hasher.signature(shingleText(rec.text, { unit: 'word', n: 3 })));
});

t.test('worker threads and the main thread give identical signatures; emitField writes them', async (t) => {
  const recs = load('fortunes').slice(600, 1400);
  const a = await runOperator(minhash, { emitField: 'minhash' }, structuredClone(recs), { workers: 0 });
  const b = await runOperator(minhash, { emitField: 'minhash' }, structuredClone(recs), { workers: 2, batchSize: 50 });
  t.same(a.output.map((r) => r.minhash), b.output.map((r) => r.minhash));
  t.equal((a.output[0].minhash as number[]).length, 128);
  t.same(a.output[0].minhash, Array.from(internals(a.output[0]).signature!));
});

t.test('records hold views of small shared blocks, never of a whole chunk', async (t) => {
  const recs = load('fortunes').slice(0, 600);
  const run = await runOperator(minhash, {}, structuredClone(recs), { workers: 2, batchSize: 300 });
  const buffers = new Map<ArrayBufferLike, number>();
  for (const rec of run.output) {
    const { signature, shingles } = internals(rec);
    t.equal(signature!.buffer, shingles!.buffer, 'signature and shingles of a record share one block');
    t.ok(signature!.buffer.byteLength <= Math.max(BLOCK_BYTES, 4 * (128 + shingles!.length)), 'a record keeps at most one block alive');
    buffers.set(signature!.buffer, (buffers.get(signature!.buffer) ?? 0) + 1);
  }
  const perBlock = run.output.length / buffers.size;
  t.ok(perBlock > 2 && perBlock < 20, `a few short documents per block (${perBlock.toFixed(1)})`);
});

t.test('near-duplicates: estimated similarity tracks exact Jaccard on edited real documents', async (t) => {
  const base = load('handbook').filter((r) => r.text.split(' ').length > 200).slice(0, 30);
  const recs: Rec[] = [];
  for (const rec of base) {
    const words = rec.text.split(' ');
    // Drop every 20th word: a light edit leaving ~0.6-0.8 of the 5-gram shingles shared.
    recs.push(rec, { ...rec, id: `${rec.id}/edited`, text: words.filter((_, i) => i % 20 !== 7).join(' ') });
  }
  for (const scheme of ['classic', 'oph'] as const) {
    const out = (await runOperator(minhash, { scheme }, structuredClone(recs), { workers: 2 })).output;
    let sumErr = 0;
    for (let i = 0; i < out.length; i += 2) {
      const exact = exactJaccard(internals(out[i]).shingles!, internals(out[i + 1]).shingles!);
      const est = estimateJaccard(internals(out[i]).signature!, internals(out[i + 1]).signature!);
      sumErr += Math.abs(est - exact);
      t.ok(Math.abs(est - exact) < 4 * Math.sqrt((exact * (1 - exact)) / 128) + 0.02, `${scheme} ${out[i].id}: ${est.toFixed(3)} vs exact ${exact.toFixed(3)}`);
    }
    t.ok(sumErr / (out.length / 2) < 0.05, `${scheme}: mean absolute error ${(sumErr / (out.length / 2)).toFixed(4)}`);
  }
});

t.test('bad options are rejected before any data', async (t) => {
  await t.rejects(runOperator(minhash, { perms: 0 }, []), /perms: out of range/);
  await t.rejects(runOperator(minhash, { scheme: 'fast' }, []), /scheme/);
  await t.rejects(runOperator(minhash, { seed: -1 }, []), /seed/);
});
