import t from 'tap';
import keepTop from '../../operators/keep-top.ts';
import { gopherQuality } from '../../lib/quality/gopher-quality.ts';
import { resolveRuleOptions } from '../../lib/quality/rules.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import type { Rec } from '../../lib/operator.ts';
import { resumedRun } from '../checkpoint-helpers.ts';

const gq = resolveRuleOptions('gopher-quality');
function scoredCorpus(): Rec[] {
  const recs = ['kjv', 'handbook', 'gcide', 'fortunes'].flatMap((f) => readJsonl(new URL(`../../samples/${f}.jsonl`, import.meta.url)));
  // Interleave deterministically so the stream is not sorted by source.
  recs.sort((a, b) => hash(a.id) - hash(b.id));
  for (const r of recs) {
    const m = gopherQuality.evaluate(r.text, gq as never).metrics;
    r.quality_score = (m.alpha_words_ratio ?? 0) * (m.avg_word_length || 0);
  }
  return recs;
}
function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

t.test('stream mode keeps the target share of a real corpus', async (t) => {
  const input = scoredCorpus();
  const run = await runOperator(keepTop, { fraction: 0.15, warmup: 500 }, input);
  const share = run.output.length / input.length;
  t.ok(Math.abs(share - 0.15) < 0.01, `kept ${share}`);
  t.equal(run.counters.dropped.below_top_fraction, input.length - run.output.length);
  t.match(run.logs.join('\n'), /kept \d+ of 3554 records/);
  t.equal(run.counters.histograms.quality_score.count, input.length);
});

t.test('exact mode keeps exactly round(f*n) highest', async (t) => {
  const input = scoredCorpus();
  const run = await runOperator(keepTop, { fraction: 0.1, mode: 'exact', memoryBytes: 50_000 }, input);
  t.equal(run.output.length, Math.round(0.1 * input.length));
  t.ok(run.counters.counters.spilled_records > 1000, `${run.counters.counters.spilled_records} records spilled`);
  const cut = Math.min(...run.output.map((r) => r.quality_score as number));
  for (const { rec } of run.dropped) t.ok((rec.quality_score as number) <= cut);
});

t.test('any numeric field; missing values', async (t) => {
  const recs: Rec[] = Array.from({ length: 100 }, (_, i) => ({ id: `r${i}`, text: '', len: (i * 37) % 100 }));
  recs.push({ id: 'nolen', text: '' });
  const run = await runOperator(keepTop, { field: 'len', fraction: 0.2, mode: 'exact' }, recs);
  t.same(run.output.map((r) => r.len).sort((a, b) => (a as number) - (b as number)), Array.from({ length: 20 }, (_, i) => 80 + i));
  t.equal(run.errors.length, 1);
  t.match(run.errors[0].message, /record nolen: field "len" is missing/);
  const dropped = await runOperator(keepTop, { field: 'len', fraction: 0.2, missing: 'drop' }, recs.map((r) => ({ ...r })));
  t.equal(dropped.counters.dropped.missing_len, 1);
});

t.test('options are validated', async (t) => {
  await t.rejects(runOperator(keepTop, {}, []), /fraction: required/);
  await t.rejects(runOperator(keepTop, { fraction: 0 }, []), /fraction: out of range/);
  await t.rejects(runOperator(keepTop, { fraction: 0.1, mode: 'fast' }, []), /mode/);
});

t.test('checkpoint, new step, restore: the same output and drops as one uninterrupted step', async (t) => {
  t.equal(keepTop.stateful, true);
  const input = scoredCorpus();
  const half = Math.floor(input.length / 2) + 17;
  for (const options of [
    { fraction: 0.15, warmup: 500 },
    { fraction: 0.15, warmup: 2500 },
    { fraction: 0.1, mode: 'exact' },
    { fraction: 0.1, mode: 'exact', memoryBytes: 50_000 },
  ]) {
    const whole = await resumedRun(keepTop, options, input);
    t.ok(whole.output.length > 1000 && whole.dropped.length > 1000, 'records kept and dropped');
    for (const lost of [0, 400]) {
      const r = await resumedRun(keepTop, options, input, { cut: half, lost });
      t.ok(r.output === whole.output, `${JSON.stringify(options)}, ${lost} lost: same output`);
      t.same(r.dropped, whole.dropped, `${JSON.stringify(options)}, ${lost} lost: same drops`);
    }
  }
});
