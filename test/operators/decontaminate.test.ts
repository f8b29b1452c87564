import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import decontaminate from '../../operators/decontaminate.ts';
import { buildDecontFilter } from '../../lib/commands/decont-build.ts';
import { BloomFilter } from '../../lib/sketch/bloom.ts';
import { words } from '../../lib/text/ngrams.ts';
import { splitmix32 } from '../../lib/sketch/minhash.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import type { Rec } from '../../lib/operator.ts';
import { SAMPLES, tmpdir } from '../helpers.ts';

const kjv = readJsonl(path.join(SAMPLES, 'kjv.jsonl'));
const gcide = readJsonl(path.join(SAMPLES, 'gcide.jsonl'));
const fortunes = readJsonl(path.join(SAMPLES, 'fortunes.jsonl'));
const handbook = readJsonl(path.join(SAMPLES, 'handbook.jsonl'));

// Evaluation set from real text: two-verse passages of 100 KJV chapters, 100 dictionary entries,
// 100 English fortunes of at least 13 words. The training documents are the rest of the samples.
const evalSet: Rec[] = [
  ...kjv.slice(0, 100).map((d, i) => ({ id: `eval/kjv/${i}`, text: d.text.split('\n').slice(2, 4).join(' ') })),
  ...gcide.slice(0, 100).map((d, i) => ({ id: `eval/gcide/${i}`, text: d.text })),
  ...fortunes.filter((d) => d.lang === 'en' && words(d.text).length >= 13).slice(0, 100).map((d, i) => ({ id: `eval/fortunes/${i}`, text: d.text })),
];
// Examples shorter than 13 words have no 13-gram: they cannot be found (the build reports them).
const evalLong = evalSet.filter((e) => words(e.text).length >= 13);
const evalIds = new Set([...kjv.slice(0, 100), ...gcide.slice(0, 100)].map((d) => d.id));
const evalTexts = new Set(evalSet.map((e) => e.text));
const clean = [...kjv.slice(100), ...handbook, ...gcide.slice(100), ...fortunes.filter((d) => !evalTexts.has(d.text))].filter((d) => !evalIds.has(d.id));

const dir = tmpdir();
const evalFile = path.join(dir, 'eval.jsonl');
writeFileSync(evalFile, evalSet.map((e) => JSON.stringify(e)).join('\n') + '\n');
const bloom = path.join(dir, 'eval.bloom');

// Exact reference: the set of 13-gram strings of the evaluation set.
const exact = new Set<string>();
for (const e of evalSet) {
  const w = words(e.text);
  for (let i = 0; i + 13 <= w.length; i++) exact.add(w.slice(i, i + 13).join(' '));
}
function exactMatches(text: string): number {
  const w = words(text);
  let m = 0;
  for (let i = 0; i + 13 <= w.length; i++) if (exact.has(w.slice(i, i + 13).join(' '))) m++;
  return m;
}

/** Inserts `para` as a paragraph of `doc` at a seeded paragraph boundary, with case and punctuation changed. */
function plant(doc: Rec, para: string, next: () => number, k: number): Rec {
  const paras = doc.text.split('\n');
  const at = next() % (paras.length + 1);
  const variant = k % 3 === 0 ? para.toUpperCase() : k % 3 === 1 ? para.replace(/[,.;:]/g, ' -- ') : para;
  paras.splice(at, 0, variant);
  return { ...doc, id: `${doc.id}#planted`, text: paras.join('\n') };
}

t.before(async () => {
  const built = await buildDecontFilter({ inputs: [evalFile], n: 13, fpRate: 1e-6, out: bloom, log: () => {} });
  if (built.shortRecords !== evalSet.length - evalLong.length) throw new Error(`short records ${built.shortRecords}`);
});

t.test('every planted paragraph is found; clean documents pass', async (t) => {
  const next = splitmix32(42);
  const hosts = clean.filter((d) => words(d.text).length >= 30);
  const planted: Rec[] = [];
  for (let k = 0; k < 150; k++) {
    const host = hosts[next() % hosts.length];
    const e = evalLong[(k * 7) % evalLong.length];
    planted.push({ ...plant(host, e.text, next, k), id: `planted/${k}` });
  }
  const input = [...clean, ...planted];
  const r = await runOperator(decontaminate, { filter: bloom }, input);
  const droppedIds = new Set(r.dropped.map((d) => d.rec.id));
  const missed = planted.filter((p) => !droppedIds.has(p.id));
  t.same(missed.map((m) => m.id), [], 'all 150 planted documents are dropped');
  t.ok(r.dropped.every((d) => d.reason === 'contaminated'));
  // Clean documents that were dropped must truly share a 13-gram with the evaluation set.
  const cleanDropped = r.dropped.filter((d) => !String(d.rec.id).startsWith('planted/'));
  const falsePositives = cleanDropped.filter((d) => exactMatches(d.rec.text) === 0);
  t.equal(falsePositives.length, 0, `clean documents dropped without a real shared 13-gram: ${falsePositives.map((d) => d.rec.id)}`);
  t.ok(cleanDropped.length < clean.length * 0.02, `${cleanDropped.length} of ${clean.length} clean documents share real 13-grams with the eval set`);
  t.equal(r.output.length + r.dropped.length, input.length);
  t.equal(r.counters.dropped.contaminated, r.dropped.length);
  t.ok(r.counters.counters.ngrams_checked > 100_000);
});

t.test('annotate mode counts contaminated n-grams like an exact set', async (t) => {
  const next = splitmix32(9);
  const docs = clean.slice(0, 400).map((d, k) => (k % 4 === 0 ? plant(d, evalLong[k % evalLong.length].text, next, k) : d));
  const r = await runOperator(decontaminate, { filter: bloom, mode: 'annotate' }, docs);
  t.equal(r.output.length, docs.length);
  t.equal(r.dropped.length, 0);
  let mismatches = 0;
  for (const rec of r.output) if (rec.contaminated_ngrams !== exactMatches(rec.text)) mismatches++;
  t.equal(mismatches, 0, 'Bloom counts equal exact counts');
  t.ok(r.output.filter((x) => (x.contaminated_ngrams as number) > 0).length >= 100);
});

t.test('minMatches: a single shared 13-gram is not enough when 5 are required', async (t) => {
  const host = clean.find((d) => d.id.startsWith('handbook/en-US'))!;
  const w = words(kjv[5].text.split('\n').slice(2, 4).join(' '));
  const one = { ...host, id: 'one', text: host.text + '\n' + w.slice(0, 13).join(' ') };
  const eight = { ...host, id: 'eight', text: host.text + '\n' + w.slice(0, 20).join(' ') };
  t.ok(w.length >= 20);
  const r = await runOperator(decontaminate, { filter: bloom, minMatches: 5 }, [one, eight]);
  t.same(r.output.map((x) => x.id), ['one']);
  t.same(r.dropped.map((x) => x.rec.id), ['eight']);
  const r1 = await runOperator(decontaminate, { filter: bloom }, [one]);
  t.equal(r1.dropped.length, 1, 'default minMatches 1 drops it');
});

t.test('clear errors for missing or wrong filter files', async (t) => {
  await t.rejects(runOperator(decontaminate, { filter: path.join(dir, 'nope.bloom') }, []), /option filter: cannot read .*nope\.bloom.*decont build/);
  const plain = BloomFilter.create(10, 0.01);
  const other = path.join(dir, 'plain.bloom');
  plain.save(other);
  await t.rejects(runOperator(decontaminate, { filter: other }, []), /not a decontamination filter/);
  const err = await runOperator(decontaminate, { mode: 'strip' }, []).catch((e: Error) => e.message);
  t.match(err, /filter: required option missing/);
  t.match(err, /mode: expected one of "drop" \| "annotate", got "strip"/);
});

t.test('worker threads share the filter and give the same decisions in the same order', async (t) => {
  const next = splitmix32(77);
  const docs = clean.map((d, k) => (k % 10 === 0 ? plant(d, evalLong[k % evalLong.length].text, next, k) : d));
  const inline = await runOperator(decontaminate, { filter: bloom, mode: 'annotate', workers: 0 }, docs, { batchSize: 512 });
  const threaded = await runOperator(decontaminate, { filter: bloom, mode: 'annotate', workers: 2, parallelAfterChars: 0 }, docs, { batchSize: 512 });
  t.same(threaded.output.map((r) => [r.id, r.contaminated_ngrams]), inline.output.map((r) => [r.id, r.contaminated_ngrams]));
  t.equal(threaded.counters.counters.ngrams_checked, inline.counters.counters.ngrams_checked);
  const dropped = await runOperator(decontaminate, { filter: bloom, workers: 2, parallelAfterChars: 0 }, docs, { batchSize: 512 });
  t.same(dropped.output.map((r) => r.id), inline.output.filter((r) => r.contaminated_ngrams === 0).map((r) => r.id));
  t.equal(dropped.dropped.length, inline.output.filter((r) => (r.contaminated_ngrams as number) > 0).length);
  t.same(dropped.dropped.map((d) => d.rec.id), inline.output.filter((r) => (r.contaminated_ngrams as number) > 0).map((r) => r.id), 'drops in input order');
  t.same(threaded.counters.histograms.contaminated_ngrams, inline.counters.histograms.contaminated_ngrams, 'the same histogram');
});
