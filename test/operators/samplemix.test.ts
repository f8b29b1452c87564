import t from 'tap';
import op from '../../operators/samplemix.ts';
import tokens from '../../operators/tokens.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import type { Rec } from '../../lib/operator.ts';
import { resumedRun, sameAsWhole } from '../checkpoint-helpers.ts';

const load = (f: string) => readJsonl(new URL(`../../samples/${f}.jsonl`, import.meta.url));
// A mixed corpus with a quality signal that is a real property of the text: the share of letters.
const corpus: Rec[] = (await runOperator(tokens, { mode: 'estimate' }, [...load('kjv'), ...load('gcide').slice(0, 600), ...load('fortunes').slice(0, 900)])).output.map((r) => ({
  ...r,
  quality_score: (r.text.match(/\p{L}/gu)?.length ?? 0) / Math.max(1, r.text.length),
}));
const sourceTokens = corpus.reduce((s, r) => s + (r.token_count as number), 0);
const fast = { clusters: 16, fitDocs: 800, iterations: 3 };
const counts = (out: Rec[]) => {
  const byId = new Map<string, number>();
  for (const r of out) byId.set(r.id, r.sampling_count as number);
  return byId;
};

t.test('small budgets drop low-weight data, large budgets repeat high-weight data', async (t) => {
  const small = await runOperator(op, { ...fast, budgetRatio: 0.25 }, structuredClone(corpus));
  const large = await runOperator(op, { ...fast, budgetRatio: 3 }, structuredClone(corpus));
  for (const [name, run, ratio] of [['small', small, 0.25], ['large', large, 3]] as const) {
    const out = run.output.reduce((s, r) => s + (r.token_count as number), 0);
    const target = ratio * sourceTokens;
    // Randomized rounding: the total is the target plus a sum of independent rounding errors.
    const sd = run.counters.counters.output_tokens_sd;
    t.ok(sd > 0 && sd < target * 0.1, `${name}: rounding SD ${sd}`);
    t.ok(Math.abs(out - target) < 4 * sd, `${name}: output ${out} tokens for a target of ${Math.round(target)} (SD ${sd})`);
    t.equal(run.counters.counters.output_tokens, out);
    t.equal(run.counters.histograms.sampling_count.count, corpus.length, 'one sampling_count observation per input record');
  }
  const sc = counts(small.output);
  const lc = counts(large.output);
  t.ok(small.dropped.length > corpus.length * 0.5, `small: ${small.dropped.length} of ${corpus.length} dropped`);
  t.ok(small.dropped.every((d) => d.reason === 'not_sampled' && d.rec.sampling_count === 0));
  t.ok([...lc.values()].filter((n) => n >= 2).length > corpus.length * 0.5, 'large: most records repeated');
  t.ok(large.dropped.length < corpus.length * 0.1, `large: only ${large.dropped.length} dropped`);
  // The dropped records of the small budget weigh less than its kept ones.
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const keptW = mean(small.output.map((r) => r.samplemix_weight as number));
  const dropW = mean(small.dropped.map((d) => d.rec.samplemix_weight as number));
  t.ok(keptW > dropW + 0.1, `kept weight ${keptW.toFixed(3)} > dropped weight ${dropW.toFixed(3)}`);
  // Counts follow weights: expected count is s * p, so count / weight is about constant.
  const top = large.output.filter((r) => (r.samplemix_weight as number) > 0.6);
  const low = large.output.filter((r) => (r.samplemix_weight as number) < 0.3);
  t.ok(mean(top.map((r) => r.sampling_count as number)) > 2 * mean(low.map((r) => r.sampling_count as number)));
  t.ok(sc.size > 0 && [...sc.values()].every((n) => n <= 2), 'a quarter budget never draws a record 3 times');
});

t.test('copies are adjacent, in input order; seeds reproduce; spill equals memory', async (t) => {
  const a = await runOperator(op, { ...fast, budgetRatio: 1.5, seed: 9 }, structuredClone(corpus));
  const pos = new Map(corpus.map((r, i) => [r.id, i]));
  t.ok(a.output.every((r, i) => i === 0 || pos.get(r.id)! >= pos.get(a.output[i - 1].id)!), 'input order, copies together');
  const b = await runOperator(op, { ...fast, budgetRatio: 1.5, seed: 9 }, structuredClone(corpus));
  t.same(b.output, a.output);
  const c = await runOperator(op, { ...fast, budgetRatio: 1.5, seed: 9, memoryMB: 0.2 }, structuredClone(corpus));
  t.ok(c.counters.counters.spilled_records > 500, `${c.counters.counters.spilled_records} records spilled`);
  t.same(c.output, a.output, 'spilled run gives the same output');
  const d = await runOperator(op, { ...fast, budgetRatio: 1.5, seed: 10 }, structuredClone(corpus));
  t.not(d.output.map((r) => r.id).join(), a.output.map((r) => r.id).join());
});

t.test('alpha 0 is quality only, alpha 1 is diversity only; crowded clusters score low', async (t) => {
  // 300 near-copies of one verse crowd a cluster of their own.
  const verse = corpus[0].text.split('\n').slice(0, 3).join('\n');
  const crowd: Rec[] = Array.from({ length: 300 }, (_, i) => ({ ...corpus[0], id: `crowd/${i}`, text: `${verse}\n${i}`, token_count: 60 }));
  const recs = [...corpus, ...crowd];
  const q = await runOperator(op, { ...fast, budgetRatio: 1, alpha: 0 }, structuredClone(recs));
  const all = [...q.output, ...q.dropped.map((d) => d.rec)];
  const qs = recs.map((r) => r.quality_score as number);
  const [lo, hi] = [Math.min(...qs), Math.max(...qs)];
  t.ok(all.every((r) => Math.abs((r.samplemix_weight as number) - ((r.quality_score as number) - lo) / (hi - lo)) < 1e-5), 'weight = normalized quality');
  const d = await runOperator(op, { ...fast, budgetRatio: 1, alpha: 1 }, structuredClone(recs));
  const dall = [...d.output, ...d.dropped.map((x) => x.rec)];
  t.ok(dall.every((r) => r.samplemix_weight === r.diversity), 'weight = diversity');
  const crowdDiv = dall.filter((r) => r.id.startsWith('crowd/')).map((r) => r.diversity as number);
  const otherDiv = dall.filter((r) => !r.id.startsWith('crowd/')).map((r) => r.diversity as number);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  t.ok(mean(crowdDiv) < mean(otherDiv) / 2, `crowded copies: diversity ${mean(crowdDiv).toFixed(3)} vs the rest ${mean(otherDiv).toFixed(3)}`);
  t.ok(Math.min(...dall.map((r) => r.diversity as number)) === 0 && Math.max(...dall.map((r) => r.diversity as number)) === 1, 'min-max normalized');
});

t.test('option and record errors', async (t) => {
  await t.rejects(runOperator(op, { budgetRatio: 1, quality: 'quality_score +' }, []), /^quality: unexpected end of expression/);
  await t.rejects(runOperator(op, { quality: 'q' }, []), /budgetTokens: give exactly one of budgetTokens and budgetRatio/);
  await t.rejects(runOperator(op, { budgetRatio: 1, alpha: 2 }, []), /alpha: out of range/);
  const run = await runOperator(op, { budgetRatio: 1 }, [{ id: 'a', text: 'some text here' }, { id: 'b', text: 'more text', quality_score: 3 }]);
  t.match(run.errors, [{ id: 'a', reason: 'bad_quality', message: /record a: quality "quality_score": field "quality_score" is missing/ }]);
  t.equal(run.output.length + run.dropped.length, 1 + (run.output.length > 1 ? run.output.length - 1 : 0));
});

t.test('checkpoint, new step, restore: the same output, drops and counters as one uninterrupted pass', async (t) => {
  t.equal(op.stateful, true);
  const half = corpus.length >> 1;
  t.ok(half > fast.fitDocs, 'the fitting sample is full before the half: the generator has drawn when the checkpoint is taken');
  for (const options of [
    { ...fast, budgetRatio: 1, seed: 3, memoryMB: 256 },
    { ...fast, budgetRatio: 0.5, seed: 3, memoryMB: 0.05 },
  ]) {
    const whole = await resumedRun(op, options, corpus);
    if (options.memoryMB < 1) t.ok(whole.counters.counters.spilled_records > 500, `${whole.counters.counters.spilled_records} spilled`);
    for (const [cut, lost] of [[half, 0], [half, 400], [300, 900], [corpus.length - 1, 1], [half, Infinity]]) {
      const resumed = await resumedRun(op, options, corpus, { cut, lost, checkpointsBefore: 2, checkpointAfter: lost > 0 });
      const name = `${JSON.stringify(options)} checkpoints before, cut at ${cut}, ${lost} records lost after it`;
      sameAsWhole(t, resumed, whole, name);
    }
  }
});
