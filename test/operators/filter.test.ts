import t from 'tap';
import filter from '../../operators/filter.ts';
import { RULE_SETS } from '../../lib/quality/rules.ts';
import { resolveRuleOptions } from '../../lib/quality/rules.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import { internals, type Rec } from '../../lib/operator.ts';
import { hashForm } from '../../lib/text/normalize.ts';
import normalize from '../../operators/normalize.ts';
import exactDedup from '../../operators/exact-dedup.ts';

const load = (f: string) => readJsonl(new URL(`../../samples/${f}.jsonl`, import.meta.url));
const corpus = () => [...load('handbook'), ...load('kjv'), ...load('gcide').slice(0, 300), ...load('fortunes').slice(0, 300)];

t.test('drops with the first failing reason and counts per reason', async (t) => {
  const input = corpus();
  const run = await runOperator(filter, { rules: ['gopher-quality'] }, input);
  t.equal(run.output.length + run.dropped.length, input.length);
  const opts = resolveRuleOptions('gopher-quality');
  const expected: Record<string, number> = {};
  for (const r of corpus()) {
    const res = RULE_SETS['gopher-quality'].evaluate(r.text, opts);
    if (!res.pass) expected[res.reasons[0]] = (expected[res.reasons[0]] ?? 0) + 1;
  }
  t.same(run.counters.dropped, expected);
  t.ok(run.counters.dropped.gopher_short_doc > 0);
  for (const { rec, reason } of run.dropped) t.ok(reason.startsWith('gopher_'), `${rec.id}: ${reason}`);
  // Kept records are untouched (no annotation unless asked).
  t.notOk('quality_rules' in run.output[0]);
});

t.test('several rule sets: first failure wins, C4 rewrites the text of kept records', async (t) => {
  const input = load('handbook');
  const originals = new Map(input.map((r) => [r.id, r.text]));
  const run = await runOperator(filter, { rules: ['c4', 'fineweb'] }, input);
  t.ok(run.output.length > 0 && run.dropped.length > 0);
  for (const r of run.output) t.ok(r.text.length < originals.get(r.id)!.length, `${r.id} edited`);
  t.ok(run.counters.counters.c4_lines_dropped_no_terminal_punc > 0);
  t.equal(run.counters.counters.texts_edited, run.output.length);
  const reasons = new Set(Object.keys(run.counters.dropped));
  t.ok(reasons.has('too_few_sentences'));
  const noEdit = await runOperator(filter, { rules: ['c4'], applyEdits: false }, load('handbook'));
  for (const r of noEdit.output) t.equal(r.text, originals.get(r.id));
});

t.test('C4\'s edits make the hashing form again, with normalize\'s folding: later steps compare the emitted text', async (t) => {
  const body = 'This is the first proper sentence of the article.\nHere is a second sentence from 2024 that ends well.\nA third sentence appears right here.\nThe fourth sentence is also present.\nFinally the fifth sentence closes it.';
  const input = [
    { id: 'd1', text: `Home | News | Sports\n${body}\nShare on Twitter` },
    { id: 'd2', text: `Menu | Login\n${body}\nCopyright 2024` },
  ];
  const normalized = await runOperator(normalize, { foldDigits: false }, input);
  const filtered = await runOperator(filter, { rules: ['c4'] }, normalized.output);
  t.equal(filtered.output[0].text, filtered.output[1].text, 'C4 leaves the same text');
  for (const rec of filtered.output) t.equal(internals(rec).hashText, hashForm(rec.text, { foldDigits: false }), `${rec.id}: the hashing form of the edited text, digits kept`);
  const deduped = await runOperator(exactDedup, { emit: 'all' }, filtered.output);
  t.same(deduped.output.map((r) => r.dup_of), [null, 'd1']);
});

t.test('annotate mode keeps everything and writes every reason', async (t) => {
  const input = load('fortunes').slice(0, 200);
  const run = await runOperator(filter, { rules: ['gopher-quality', { set: 'fineweb', shortLineRatio: 0.9 }], mode: 'annotate' }, input);
  t.equal(run.output.length, 200);
  t.equal(run.dropped.length, 0);
  const note = run.output[0].quality_rules as Record<string, { pass: boolean; reasons: string[]; metrics: Record<string, number> }>;
  t.same(Object.keys(note), ['gopher-quality', 'fineweb']);
  const failing = run.output.find((r) => (r.quality_rules as any)['gopher-quality'].reasons.length > 1);
  t.ok(failing, 'some record lists several failed rules');
  t.ok(run.counters.counters.failed_gopher_short_doc > 0);
  t.type(note['gopher-quality'].metrics.words, 'number');
  // JSON output carries the annotation.
  t.match(JSON.stringify(run.output[0]), /"quality_rules":\{"gopher-quality":\{"pass":(true|false),"reasons":/);
});

t.test('drop mode with annotate writes results on kept records', async (t) => {
  const run = await runOperator(filter, { rules: ['gopher-quality'], annotate: true, annotateField: 'gq', metrics: false }, load('kjv').slice(0, 20));
  t.ok(run.output.length > 0);
  for (const r of run.output) t.same(r.gq, { 'gopher-quality': { pass: true, reasons: [] } });
});

t.test('threshold overrides change decisions', async (t) => {
  const input = load('fortunes').slice(0, 300);
  const strict = await runOperator(filter, { rules: ['gopher-quality'] }, input);
  const loose = await runOperator(filter, { rules: [{ set: 'gopher-quality', minDocWords: 5, disable: ['gopher_enough_stop_words'] }] }, load('fortunes').slice(0, 300));
  t.ok(loose.output.length > strict.output.length);
});

t.test('numeric field range', async (t) => {
  const recs: Rec[] = [0.1, 0.5, 0.9, 0.3, 0.7].map((s, i) => ({ id: `r${i}`, text: 'x', quality_score: s }));
  const run = await runOperator(filter, { field: 'quality_score', min: 0.5 }, recs);
  t.same(run.output.map((r) => r.id), ['r1', 'r2', 'r4']);
  t.same(run.counters.dropped, { quality_score_below_min: 2 });
  const both = await runOperator(filter, { field: 'quality_score', min: 0.2, max: 0.8 }, recs.map((r) => ({ ...r })));
  t.same(both.output.map((r) => r.id), ['r1', 'r3', 'r4']);
  t.same(both.counters.dropped, { quality_score_below_min: 1, quality_score_above_max: 1 });
  const missing = [{ id: 'a', text: 'x' }, { id: 'b', text: 'x', quality_score: 'high' }, { id: 'c', text: 'x', quality_score: 0.9 }];
  const err = await runOperator(filter, { field: 'quality_score', min: 0.5 }, missing.map((r) => ({ ...r })));
  t.same(err.output.map((r) => r.id), ['c']);
  t.equal(err.errors.length, 2);
  t.match(err.errors[0].message, /record a: field "quality_score" is missing/);
  const dropped = await runOperator(filter, { field: 'quality_score', min: 0.5, missing: 'drop' }, missing.map((r) => ({ ...r })));
  t.same(dropped.counters.dropped, { missing_quality_score: 2 });
  const kept = await runOperator(filter, { field: 'quality_score', min: 0.5, missing: 'keep' }, missing.map((r) => ({ ...r })));
  t.equal(kept.output.length, 3);
});

t.test('bad options are all reported with their paths', async (t) => {
  await t.rejects(runOperator(filter, { rules: ['gopher-qualty'] }, []), /rules\[0\]/);
  await t.rejects(runOperator(filter, { rules: [{ set: 'c4', minNumSentences: 'five', bogus: 1 }] }, []), /rules\[0\]\.minNumSentences[\s\S]*rules\[0\]\.bogus/);
  await t.rejects(runOperator(filter, {}, []), /nothing to filter/);
  await t.rejects(runOperator(filter, { field: 'score' }, []), /needs `min`/);
  await t.rejects(runOperator(filter, { field: 'score', min: 2, max: 1 }, []), /above max/);
});

t.test('a record without text is an error, not a crash', async (t) => {
  const run = await runOperator(filter, { rules: ['fineweb'] }, [{ id: 'x' } as unknown as Rec]);
  t.equal(run.errors.length, 1);
  t.equal(run.errors[0].reason, 'no_text');
});

t.test('worker threads give the same output as the step\'s own thread', async (t) => {
  const opts = { rules: ['c4', 'gopher-quality', 'fineweb'], annotate: true };
  const inline = await runOperator(filter, { ...opts, workers: 0 }, corpus());
  const threaded = await runOperator(filter, { ...opts, workers: 2, parallelAfterDocs: 0 }, corpus());
  t.same(threaded.output.map((r) => [r.id, r.text, r.quality_rules]), inline.output.map((r) => [r.id, r.text, r.quality_rules]));
  t.same(threaded.counters.dropped, inline.counters.dropped);
  t.same(threaded.counters.counters, inline.counters.counters);
  t.same(threaded.dropped.map((d) => d.rec.id), inline.dropped.map((d) => d.rec.id));
});
