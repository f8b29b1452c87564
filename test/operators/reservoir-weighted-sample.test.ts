import t from 'tap';
import op from '../../operators/reservoir-weighted-sample.ts';
import tokens from '../../operators/tokens.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import { peekInternals, type Rec } from '../../lib/operator.ts';
import normalize from '../../operators/normalize.ts';
import { resumedRun, sameAsWhole } from '../checkpoint-helpers.ts';

const load = (f: string) => readJsonl(new URL(`../../samples/${f}.jsonl`, import.meta.url));
const counted = async (recs: Rec[]) => (await runOperator(tokens, {}, recs)).output;

t.test('token budget on real text: respected, emitted in input order, rest dropped', async (t) => {
  const recs = await counted(load('fortunes'));
  const total = recs.reduce((s, r) => s + (r.token_count as number), 0);
  const B = Math.round(total / 10);
  const run = await runOperator(op, { budgetTokens: B, seed: 1 }, recs);
  const got = run.output.reduce((s, r) => s + (r.token_count as number), 0);
  t.ok(got <= B && got > B * 0.95, `sample ${got} tokens for a budget of ${B} (source ${total})`);
  const pos = new Map(recs.map((r, i) => [r.id, i]));
  t.ok(run.output.every((r, i) => i === 0 || pos.get(r.id)! > pos.get(run.output[i - 1].id)!), 'input order');
  t.equal(run.dropped.length + run.output.length, recs.length);
  t.ok(run.dropped.every((d) => d.reason === 'not_sampled'));
  t.equal(run.counters.counters.sample_tokens, got);
});

t.test('weights from an expression shift the sample towards heavy records', async (t) => {
  const recs = load('gcide').map((r, i) => ({ ...r, q: i % 10 === 0 ? 1 : 0.01 }));
  const run = await runOperator(op, { count: 100, weight: 'q * 100 + 0', seed: 5 }, recs);
  t.equal(run.output.length, 100);
  const heavy = run.output.filter((r) => r.q === 1).length;
  // 125 heavy records with 100x the weight of 1117 light ones: about 88 of 100 draws are heavy (10 if uniform).
  t.ok(heavy > 70, `${heavy} of 100 sampled records are heavy`);
  t.equal(run.counters.counters.tokens_estimated, recs.length, 'no token_count: estimated');
});

t.test('seed reproducibility and spill == memory', async (t) => {
  const recs = await counted(load('kjv'));
  const opts = { budgetTokens: 40000, weight: 'log(token_count + 1)', seed: 3 };
  const a = await runOperator(op, opts, structuredClone(recs));
  const b = await runOperator(op, opts, structuredClone(recs));
  const c = await runOperator(op, { ...opts, memoryMB: 0.05 }, structuredClone(recs));
  const d = await runOperator(op, { ...opts, seed: 4 }, structuredClone(recs));
  const ids = (r: { output: Rec[] }) => r.output.map((x) => x.id).join();
  t.equal(ids(a), ids(b));
  t.ok(c.counters.counters.spilled_records > 10, `${c.counters.counters.spilled_records} records spilled`);
  t.same(c.output, a.output, 'spilled output identical to the in-memory output');
  t.not(ids(d), ids(a));
});

t.test('option errors name the option; bad weights name the record', async (t) => {
  await t.rejects(runOperator(op, { count: 5, weight: 'quality_score *' }, []), /^weight: unexpected end of expression/);
  await t.rejects(runOperator(op, { count: 5, weight: 'pow(q, 2)' }, []), /weight: unknown function "pow"/);
  await t.rejects(runOperator(op, {}, []), /count: give exactly one of count and budgetTokens/);
  await t.rejects(runOperator(op, { count: 1, budgetTokens: 10 }, []), /count: give exactly one/);
  const run = await runOperator(op, { count: 2, weight: 'q' }, [
    { id: 'a', text: 'x', q: 1 },
    { id: 'b', text: 'y' },
    { id: 'c', text: 'z', q: -1 },
  ]);
  t.same(run.output.map((r) => r.id), ['a']);
  t.match(run.errors, [
    { id: 'b', reason: 'bad_weight', message: /record b: weight "q": field "q" is missing/ },
    { id: 'c', reason: 'bad_weight', message: /expected a number >= 0/ },
  ]);
});

t.test('checkpoint, new step, restore: the same sample, drops and counters as one uninterrupted pass', async (t) => {
  t.equal(op.stateful, true);
  // Through normalize and tokens first: records carry internals (the hashing form) and step-written fields.
  const recs = await counted((await runOperator(normalize, {}, [...load('fortunes'), ...load('kjv'), ...load('handbook')])).output);
  t.ok(peekInternals(recs[0])?.hashText, 'records carry a hashing form');
  const half = recs.length >> 1;
  for (const options of [
    { budgetTokens: 30000, weight: 'log(token_count + 1)', seed: 2 },
    { budgetTokens: 30000, weight: 'log(token_count + 1)', seed: 2, memoryMB: 0.02 },
    { count: 300, seed: 7, memoryMB: 0.01 },
  ]) {
    const whole = await resumedRun(op, options, recs);
    t.match(whole.encoded, /"hashText":/, 'the sample keeps the internals');
    t.ok(whole.counters.counters.sampled > 50, `${whole.counters.counters.sampled} sampled`);
    if (options.memoryMB) t.ok(whole.counters.counters.spilled_records > 20, `${whole.counters.counters.spilled_records} spilled`);
    for (const [cut, lost] of [[half, 0], [half, 500], [37, 1000], [recs.length - 1, 1], [half, Infinity]]) {
      const resumed = await resumedRun(op, options, recs, { cut, lost, checkpointsBefore: 2, checkpointAfter: lost > 0 });
      const name = `${JSON.stringify(options)} checkpoints before, cut at ${cut}, ${lost} records lost after it`;
      sameAsWhole(t, resumed, whole, name);
    }
  }
});
