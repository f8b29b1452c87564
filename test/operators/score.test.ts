import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { meanPoolModelBytes, writeLinearModel } from '../../lib/quality/onnx-model.ts';
import { fromOrdinal10, toOrdinal10 } from '../../lib/quality/scorer.ts';
import { mulberry32 } from '../../lib/quality/train.ts';
import { HashedNgramVectorizer } from '../../lib/quality/vectorizer.ts';
import { SequenceTokenizer } from '../../lib/quality/hf-tokenizer.ts';
import type { Rec } from '../../lib/operator.ts';
import { readJsonl, runOperator } from '../../lib/testing.ts';
import score from '../../operators/score.ts';
import { createStepContext } from '../../lib/context.ts';
import { validateOptions } from '../../lib/options.ts';
import { resumedRun } from '../checkpoint-helpers.ts';
import { JUNK } from '../../samples/make-quality-data.ts';

const SAMPLES = new URL('../../samples/', import.meta.url).pathname;
const MODEL = path.join(SAMPLES, 'quality-model.onnx');
const dir = mkdtempSync(path.join(os.tmpdir(), 'score-test-'));
const TOKENIZER = new URL('../fixtures/tiny-bert-tokenizer.json', import.meta.url).pathname;
const bertJson = JSON.parse(readFileSync(TOKENIZER, 'utf8')) as { model: { vocab: Record<string, number> } };

// Unseen prose (the sample model was trained without these chapters) and junk made from it.
const kjv = readJsonl(path.join(SAMPLES, 'kjv.jsonl'));
const passage = (text: string, from: number) => text.split('\n').slice(from, from + 6).join('\n');
const prose: Rec[] = kjv.slice(0, 60).map((r) => ({ id: `${r.id}/prose`, text: passage(r.text, 0), label: 1 }));
const rand = mulberry32(99);
const kinds = Object.keys(JUNK);
const junk: Rec[] = kjv.slice(60, 120).map((r, i) => ({ id: `${r.id}/${kinds[i % kinds.length]}`, text: JUNK[kinds[i % kinds.length]](rand, passage(r.text, 6), passage(r.text, 0)), label: 0 }));
const mixed = () => prose.flatMap((p, i) => [{ ...p }, { ...junk[i] }]);

function auc(pos: number[], neg: number[]): number {
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (pos.length * neg.length);
}

t.test('the shipped model scores unseen prose above junk made from it', async (t) => {
  const r = await runOperator(score, { model: MODEL, probabilities: 'quality_probs', workers: 0 }, mixed());
  t.equal(r.output.length, 120);
  t.same(r.output.map((x) => x.id), mixed().map((x) => x.id), 'order kept');
  const s = (label: number) => r.output.filter((x) => x.label === label).map((x) => x.quality_score as number);
  const a = auc(s(1), s(0));
  t.ok(a >= 0.95, `AUC prose vs junk ${a.toFixed(3)}`);
  const mean = (xs: number[]) => xs.reduce((p, q) => p + q, 0) / xs.length;
  t.ok(mean(s(1)) > 0.7 && mean(s(0)) < 0.3, `means ${mean(s(1)).toFixed(3)} / ${mean(s(0)).toFixed(3)}`);
  const first = r.output[0];
  const probs = first.quality_probs as Record<string, number>;
  t.same(Object.keys(probs), ['lq', 'hq']);
  t.ok(Math.abs(probs.hq - (first.quality_score as number)) < 1e-6 && Math.abs(probs.lq + probs.hq - 1) < 1e-6);
  t.equal(r.counters.histograms.score.count, 120, 'score histogram observed');
});

t.test('worker threads give the same scores in the same order', async (t) => {
  const inline = await runOperator(score, { model: MODEL, workers: 0, batchSize: 16 }, mixed(), { batchSize: 50 });
  const threaded = await runOperator(score, { model: MODEL, workers: 2, batchSize: 16 }, mixed(), { batchSize: 50 });
  t.same(threaded.output.map((x) => [x.id, x.quality_score]), inline.output.map((x) => [x.id, x.quality_score]));
});

t.test('the score histogram is the same with worker threads (its sample follows input order)', async (t) => {
  // Past the histogram's 4,096-value sample, values are kept by their position in the stream.
  const many = Array.from({ length: 42 }, (_, k) => mixed().map((r) => ({ ...r, id: `${r.id}/${k}` }))).flat();
  const inline = await runOperator(score, { model: MODEL, workers: 0, batchSize: 16 }, many, { batchSize: 64 });
  const threaded = await runOperator(score, { model: MODEL, workers: 2, batchSize: 16 }, many, { batchSize: 64 });
  t.equal(inline.counters.histograms.score.count, many.length);
  t.same(threaded.counters.histograms.score, inline.counters.histograms.score);
});

t.test('ordinal 0-10 scale: round(10 * unit score)', async (t) => {
  t.same([0, 0.04, 0.05, 0.26, 0.5, 0.94, 0.96, 1].map(toOrdinal10), [0, 0, 1, 3, 5, 9, 10, 10]);
  t.same([0, 3, 10].map(fromOrdinal10), [0, 0.3, 1]);
  for (let g = 0; g <= 10; g++) t.equal(toOrdinal10(fromOrdinal10(g)), g, `grade ${g} round-trips`);
  const unit = await runOperator(score, { model: MODEL, workers: 0 }, mixed());
  const ord = await runOperator(score, { model: MODEL, workers: 0, scale: 'ordinal10', field: 'q10' }, mixed());
  ord.output.forEach((x, i) => {
    if (x.q10 !== Math.round(10 * (unit.output[i].quality_score as number))) t.fail(`${x.id}: ${x.q10}`);
  });
  t.ok(ord.output.every((x) => Number.isInteger(x.q10)));
  t.ok(new Set(ord.output.map((x) => x.q10)).size >= 3, 'several grades used');
});

t.test('dense and sparse layouts of the same weights give the same scores', async (t) => {
  const dim = 1 << 12;
  const r = mulberry32(5);
  const weights = Float32Array.from({ length: dim }, () => r() * 4 - 2);
  const config = { format: 'mixstream-quality-model', version: 1, vectorizer: { type: 'hashed-ngrams', dim }, output: 'score', outputKind: 'probability', classes: ['lq', 'hq'] };
  for (const layout of ['dense', 'sparse'] as const) {
    writeLinearModel(path.join(dir, `${layout}.onnx`), { dim, weights, bias: Float32Array.of(0.3), classes: 1, layout });
    writeFileSync(path.join(dir, `${layout}.json`), JSON.stringify({ ...config, input: layout === 'dense' ? 'input' : 'indices' }));
  }
  const a = await runOperator(score, { model: 'dense.onnx', workers: 0 }, mixed(), { baseDir: dir });
  const b = await runOperator(score, { model: 'sparse.onnx', workers: 0 }, mixed(), { baseDir: dir });
  const worst = Math.max(...a.output.map((x, i) => Math.abs((x.quality_score as number) - (b.output[i].quality_score as number))));
  t.ok(worst < 1e-5, `max difference ${worst}`);
  // And both equal the JS computation.
  const vec = new HashedNgramVectorizer({ dim });
  const x = vec.transform(a.output[3].text);
  let z = 0.3;
  for (let i = 0; i < x.indices.length; i++) z += weights[x.indices[i]] * x.values[i];
  t.ok(Math.abs(1 / (1 + Math.exp(-z)) - (a.output[3].quality_score as number)) < 1e-5);
});

t.test('model errors at create time name the option', async (t) => {
  // A model of another width beside the shipped vectorizer config.
  writeLinearModel(path.join(dir, 'narrow.onnx'), { dim: 1000, weights: new Float32Array(1000), bias: new Float32Array(1), classes: 1 });
  copyFileSync(path.join(SAMPLES, 'quality-model.json'), path.join(dir, 'narrow.json'));
  await t.rejects(runOperator(score, { model: 'narrow.onnx' }, [], { baseDir: dir }), /option model: input "input" has shape \[batch, 1000\] but the vectorizer in .*narrow\.json gives 65536 features/);
  writeLinearModel(path.join(dir, 'bare.onnx'), { dim: 10, weights: new Float32Array(10), bias: new Float32Array(1), classes: 1 });
  await t.rejects(runOperator(score, { model: 'bare.onnx' }, [], { baseDir: dir }), /option model: .*bare\.onnx has no vectorizer config beside it .*set option tokenizer/);
  await t.rejects(runOperator(score, { model: 'missing.onnx' }, [], { baseDir: dir }), /cannot read ONNX model .*missing\.onnx/);
  await t.rejects(runOperator(score, { model: MODEL, outputName: 'nope' }, []), /option outputName: the model has no output "nope" \(outputs: score\)/);
  await t.rejects(runOperator(score, {}, []), /model: set exactly one of `model` .* or `rules`/);
  await t.rejects(runOperator(score, { model: MODEL, rules: ['c4'] }, []), /rules: set exactly one/);
  await t.rejects(runOperator(score, { rules: ['c4'], probabilities: 'p' }, []), /probabilities: only used with `model`/);
  await t.rejects(runOperator(score, { rules: ['c4'], ruleOptions: { fineweb: {} } }, []), /ruleOptions\.fineweb: rule set "fineweb" is not in `rules`/);
  await t.rejects(runOperator(score, { model: MODEL, keepTop: 1.5 }, []), /keepTop: out of range/);
});

t.test('records without text are errors, not crashes', async (t) => {
  const r = await runOperator(score, { model: MODEL, workers: 0 }, [{ id: 'a', text: 'In the beginning.' }, { id: 'b' } as unknown as Rec]);
  t.equal(r.output.length, 1);
  t.match(r.errors[0], { reason: 'no_text', id: 'b' });
});

t.test('tokenizer.json + transformer-shaped model (embedding, mean pool, Gemm)', async (t) => {
  // Embeddings: dimension 0 is +1 for words of running text, -1 for [UNK] and punctuation.
  const tok = new SequenceTokenizer(bertJson, 'tiny');
  const vocab = Object.keys(bertJson.model.vocab).length;
  const hidden = 2;
  const good = new Set(['the', 'lord', 'said', 'un', '##know', '##n', 'cafe', 'run', '##ning']);
  const embeddings = new Float32Array(vocab * hidden);
  for (const [w, id] of Object.entries(bertJson.model.vocab)) {
    embeddings[id * hidden] = good.has(w) ? 1 : -1;
    embeddings[id * hidden + 1] = id / vocab;
  }
  const weights = Float32Array.of(-2, 2, 0.5, -0.5); // [hidden, classes]
  const bias = Float32Array.of(0, 0);
  writeFileSync(path.join(dir, 'tiny.onnx'), meanPoolModelBytes({ embeddings, vocab, hidden, weights, bias, classes: 2 }));
  copyFileSync(TOKENIZER, path.join(dir, 'tokenizer.json'));
  const docs: Rec[] = [
    { id: 'prose', text: 'The Lord said, the lord said unknown running.' },
    { id: 'junk', text: '!!! ### ... ,,, $$$ unx zzz !!!' },
    { id: 'long', text: 'the lord said '.repeat(100) },
  ];
  const r = await runOperator(score, { model: 'tiny.onnx', tokenizer: 'tokenizer.json', maxLength: 16, probabilities: 'p', workers: 0 }, docs, { baseDir: dir });
  const by = Object.fromEntries(r.output.map((x) => [x.id, x]));
  t.ok((by.prose.quality_score as number) > 0.8, `prose ${by.prose.quality_score}`);
  t.ok((by.junk.quality_score as number) < 0.2, `junk ${by.junk.quality_score}`);
  // JS reference: mean of the embeddings of the (truncated) ids, head, softmax.
  for (const d of docs) {
    const ids = tok.encode(d.text, 16);
    const pooled = [0, 1].map((h) => ids.reduce((s, id) => s + embeddings[id * hidden + h], 0) / ids.length);
    const z = [0, 1].map((c) => bias[c] + pooled[0] * weights[c] + pooled[1] * weights[2 + c]);
    const p1 = Math.exp(z[1]) / (Math.exp(z[0]) + Math.exp(z[1]));
    t.ok(Math.abs(p1 - (by[d.id].quality_score as number)) < 1e-5, `${d.id}: ${p1} vs ${by[d.id].quality_score}`);
  }
  t.same(Object.keys(by.prose.p as object), ['class_0', 'class_1']);
  // A regression head: one output column mapped from [0, 5].
  writeFileSync(path.join(dir, 'reg.onnx'), meanPoolModelBytes({ embeddings, vocab, hidden, weights: Float32Array.of(5, 0), bias: Float32Array.of(2.5), classes: 1 }));
  const reg = await runOperator(score, { model: 'reg.onnx', tokenizer: 'tokenizer.json', outputKind: 'regression', range: [0, 5], workers: 0 }, docs.slice(0, 2), { baseDir: dir });
  t.ok((reg.output[0].quality_score as number) > 0.8 && (reg.output[1].quality_score as number) < 0.2, 'regression mapped onto [0, 1]');
  await t.rejects(runOperator(score, { model: 'tiny.onnx', tokenizer: 'missing.json' }, [], { baseDir: dir }), /option tokenizer: cannot read tokenizer/);
  await t.rejects(runOperator(score, { model: MODEL, tokenizer: 'tokenizer.json' }, [], { baseDir: dir }), /option model: a tokenizer model needs an input "input_ids" \(inputs: input\)/);
});

t.test('rule sets: score = share of rules passed, failures listed', async (t) => {
  const r = await runOperator(score, { rules: ['gopher-quality', 'fineweb'] }, mixed());
  for (const x of r.output) {
    const failed = x.quality_score_failed as string[];
    t.ok(Array.isArray(failed));
    if (failed.length === 0 && x.quality_score !== 1) t.fail(`${x.id}: no failures but score ${x.quality_score}`);
  }
  const withFailures = r.output.filter((x) => (x.quality_score_failed as string[]).length > 0);
  t.ok(withFailures.length > 0, 'some documents fail rules');
  const x = withFailures[0];
  const n = (x.quality_score_failed as string[]).length;
  const total = Math.round(n / (1 - (x.quality_score as number)));
  t.ok(total >= 10, `rules counted: ${total}`);
  r.output.forEach((y) => {
    const k = (y.quality_score_failed as string[]).length;
    if (Math.abs((y.quality_score as number) - (1 - k / total)) > 1e-9) t.fail(`${y.id}`);
  });
  const mean = (label: number) => {
    const xs = r.output.filter((y) => y.label === label).map((y) => y.quality_score as number);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  t.ok(mean(1) > mean(0), `rules also rank prose above junk: ${mean(1).toFixed(3)} vs ${mean(0).toFixed(3)}`);
  const ord = await runOperator(score, { rules: ['c4'], scale: 'ordinal10' }, mixed().slice(0, 10));
  t.ok(ord.output.every((y) => Number.isInteger(y.quality_score)));
});

t.test('keepTop keeps the best fraction, drops the rest as below_top_fraction', async (t) => {
  const q = readJsonl(path.join(SAMPLES, 'quality.jsonl'));
  const exact = await runOperator(score, { model: MODEL, keepTop: 0.25, keepTopMode: 'exact', workers: 0 }, q);
  t.equal(exact.output.length, Math.round(0.25 * q.length), 'exact: round(fraction * n)');
  t.equal(exact.dropped.length, q.length - exact.output.length);
  t.ok(exact.dropped.every((d) => d.reason === 'below_top_fraction'));
  const minKept = Math.min(...exact.output.map((x) => x.quality_score as number));
  const maxDropped = Math.max(...exact.dropped.map((d) => d.rec.quality_score as number));
  t.ok(minKept >= maxDropped, 'every kept score >= every dropped score');
  t.ok(exact.output.every((x) => x.label === 1), 'the top quarter is all prose');
  const ids = exact.output.map((x) => x.id);
  t.same(ids, q.map((x) => x.id).filter((id) => ids.includes(id)), 'input order kept');
  const stream = await runOperator(score, { model: MODEL, keepTop: 0.25, keepTopWarmup: 200, workers: 0 }, q);
  const share = stream.output.length / q.length;
  t.ok(Math.abs(share - 0.25) <= 0.01, `stream: kept ${(share * 100).toFixed(2)}%`);
  t.match(stream.logs.join('\n'), /keepTop 0\.25: kept/);
});

t.test('keepTop resumes exactly from a checkpoint (new step, restore), stream and exact, rules and model', async (t) => {
  const stateful = score.stateful as (o: { keepTop?: number }) => boolean;
  t.equal(stateful({ keepTop: 0.2 }), true);
  t.equal(stateful({}), false, 'without keepTop the step keeps no state across records');
  const q = readJsonl(path.join(SAMPLES, 'quality.jsonl'));
  const cut = 613;
  for (const options of [
    { rules: ['gopher-quality', 'fineweb'], keepTop: 0.3, keepTopWarmup: 300 },
    { rules: ['gopher-quality', 'fineweb'], keepTop: 0.3, keepTopMode: 'exact', keepTopMemoryMB: 1 },
    { model: MODEL, keepTop: 0.25, keepTopWarmup: 1000, workers: 0 },
    { model: MODEL, keepTop: 0.25, keepTopMode: 'exact', keepTopMemoryMB: 1, workers: 1, batchSize: 16 },
  ]) {
    // Worker threads score exactly as the step's thread does (tested above), and start slowly:
    // the uninterrupted reference runs in the thread, the threaded step resumes once.
    const whole = await resumedRun(score, { ...options, workers: 0 }, q);
    t.ok(whole.dropped.length > 500, `${whole.dropped.length} dropped`);
    for (const lost of options.workers ? [150] : [0, 150]) {
      const r = await resumedRun(score, options, q, { cut, lost });
      t.ok(r.output === whole.output, `${JSON.stringify(options)}, ${lost} lost: same output`);
      t.same(r.dropped, whole.dropped, `${JSON.stringify(options)}, ${lost} lost: same drops`);
    }
  }
});

t.test('with worker threads, records still being scored at a barrier are handed on by drain', async (t) => {
  const q = readJsonl(path.join(SAMPLES, 'quality.jsonl'));
  const options = { model: MODEL, workers: 1, batchSize: 16 };
  const step = await score.create(validateOptions(options, score.options, []) as never, createStepContext({ op: 'score', log: () => {} }));
  t.equal(step.checkpoint, undefined, 'without keepTop there is no state to checkpoint');
  const first = await step.process(q.slice(0, 100).map((r) => ({ ...r })));
  const drained = await step.drain!();
  await step.close?.();
  t.ok(first.length < 100 && drained.length > 0, `${drained.length} records still in the workers after process`);
  t.same([...first, ...drained].map((r) => r.id), q.slice(0, 100).map((r) => r.id), 'all of them, in order');
  const whole = await runOperator(score, { model: MODEL, workers: 0 }, q);
  const r = await resumedRun(score, options, q, { cut: 100, lost: 150 });
  t.ok(r.output === whole.output.map((x) => JSON.stringify(x) + '\n').join(''), 'a resumed threaded step: same output as an uninterrupted one');
});
