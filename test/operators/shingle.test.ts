import t from 'tap';
import shingle from '../../operators/shingle.ts';
import normalize from '../../operators/normalize.ts';
import { internals, type Rec } from '../../lib/operator.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import { recordShingles, shingleText } from '../../lib/text/shingle.ts';

const load = (name: string) => readJsonl(new URL(`../../samples/${name}.jsonl`, import.meta.url));

t.test('word 5-gram shingles of every record, in input order, from worker threads', async (t) => {
  const recs = [...load('fortunes').slice(0, 600), ...load('handbook')];
  const ids = recs.map((r) => r.id);
  const run = await runOperator(shingle, {}, recs, { workers: 2, batchSize: 100 });
  t.same(run.output.map((r) => r.id), ids, 'order kept');
  let mismatches = 0;
  for (const rec of run.output) {
    const expected = shingleText(rec.text, { unit: 'word', n: 5 });
    const got = internals(rec).shingles!;
    if (got.length !== expected.length || got.some((v, i) => v !== expected[i])) mismatches++;
  }
  t.equal(mismatches, 0, 'shingles equal the kernel on every record');
  t.notOk('shingles' in run.output[0], 'shingles stay internal');
  t.equal(JSON.parse(JSON.stringify(run.output[0])).text, run.output[0].text);
  t.equal(run.counters.histograms.shingles.count, recs.length, 'a shingle-count histogram per record');
});

t.test('after normalize the hashing form is shingled; char unit and emitField', async (t) => {
  const normalized = (await runOperator(normalize, {}, load('kjv').slice(0, 40))).output;
  const run = await runOperator(shingle, { unit: 'char', n: 9, seed: 5, emitField: 'shingles' }, normalized, { workers: 1 });
  for (const rec of run.output) {
    const expected = recordShingles(rec, { unit: 'char', n: 9, seed: 5 });
    t.same(rec.shingles, Array.from(expected), `${rec.id}`);
  }
  t.ok((run.output[0].shingles as number[]).length > 1000, 'a chapter has thousands of character 9-grams');
});

t.test('in the main thread (workers: 0) the result is the same', async (t) => {
  const recs = load('gcide').slice(0, 300);
  const a = await runOperator(shingle, { workers: 0 }, structuredClone(recs));
  const b = await runOperator(shingle, { workers: 2 }, structuredClone(recs));
  t.same(a.output.map((r) => Array.from(internals(r).shingles!)), b.output.map((r) => Array.from(internals(r).shingles!)));
});

t.test('the shingle-count histogram is the same with worker threads (its sample follows input order)', async (t) => {
  // More documents than the histogram's 4,096-value sample, in small batches computed ahead.
  const base = [...load('kjv'), ...load('gcide'), ...load('fortunes'), ...load('handbook')];
  const recs = [0, 1].flatMap((k) => base.map((r) => ({ ...r, id: `${r.id}/${k}` })));
  const a = await runOperator(shingle, { workers: 0 }, structuredClone(recs), { batchSize: 64 });
  const b = await runOperator(shingle, { workers: 2 }, structuredClone(recs), { batchSize: 64 });
  t.ok(a.counters.histograms.shingles.count > 4096);
  t.same(b.counters.histograms.shingles, a.counters.histograms.shingles);
});

t.test('a record without string text is an error naming it, the rest go on', async (t) => {
  const recs: Rec[] = [{ id: 'a', text: 'one two three four five six' }, { id: 'b' } as unknown as Rec, { id: 'c', text: 'short' }];
  const run = await runOperator(shingle, { workers: 0 }, recs);
  t.same(run.output.map((r) => r.id), ['a', 'c']);
  t.equal(run.errors.length, 1);
  t.match(run.errors[0], { reason: 'no_text', id: 'b', message: /record b/ });
  t.equal(internals(run.output[1]).shingles!.length, 1, 'a document shorter than n gets one shingle');
});

t.test('bad options are rejected before any data', async (t) => {
  await t.rejects(runOperator(shingle, { unit: 'line' }, []), /unit/);
  await t.rejects(runOperator(shingle, { n: 0 }, []), /n: out of range/);
});
