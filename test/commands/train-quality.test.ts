import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { parseLabel, summarizeTraining, trainQuality } from '../../lib/commands/train-quality.ts';
import { OnnxModel } from '../../lib/quality/onnx-model.ts';
import { readModelConfig } from '../../lib/quality/model-config.ts';
import { HashedNgramVectorizer } from '../../lib/quality/vectorizer.ts';
import { readJsonl } from '../../lib/testing.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'train-quality-test-'));
const data = new URL('../../samples/quality.jsonl', import.meta.url).pathname;

t.test('label values', async (t) => {
  for (const v of [1, true, '1', 'hq', 'HQ', 'high', 'pos', 'positive', 'good']) t.equal(parseLabel(v), 1, JSON.stringify(v));
  for (const v of [0, false, '0', 'lq', 'low', 'neg', 'negative', 'bad']) t.equal(parseLabel(v), 0, JSON.stringify(v));
  for (const v of [2, 'maybe', null, undefined, {}]) t.equal(parseLabel(v), undefined, JSON.stringify(v));
});

t.test('trains on the sample data to high held-out accuracy; the ONNX model gives the same scores', async (t) => {
  const out = path.join(dir, 'q');
  const res = await trainQuality({ input: [data], out, dim: 1 << 15, holdout: 0.2, seed: 3 });
  t.equal(res.model, out + '.onnx');
  t.equal(res.examples, 1400);
  t.ok(res.holdout!.accuracy >= 0.93, `held-out accuracy ${res.holdout!.accuracy}`);
  t.ok(res.holdout!.auc >= 0.98, `held-out AUC ${res.holdout!.auc}`);
  t.equal(res.holdout!.n, 280);
  t.match(summarizeTraining(res), /^wrote .*q\.onnx and .*q\.json from 1400 labelled documents.*\ntrain: +accuracy .*\nheld out: accuracy \d+\.\d\d%, AUC 0\.\d+, log loss [\d.]+ \(280 documents/);
  const config = readModelConfig(res.model)!;
  t.equal(config.vectorizer.dim, 1 << 15);
  t.equal(config.outputKind, 'probability');
  t.same((config.metrics as { holdout: { n: number } }).holdout.n, 280);
  // The written model reproduces the trainer's accuracy on the whole set.
  const model = await OnnxModel.load(res.model);
  const vec = new HashedNgramVectorizer(config.vectorizer);
  const recs = readJsonl(data);
  let correct = 0;
  for (let i = 0; i < recs.length; i += 200) {
    const b = recs.slice(i, i + 200);
    const { data: s } = await model.runDense(config.input, vec.transformDense(b.map((r) => r.text)), b.length, config.vectorizer.dim, config.output);
    b.forEach((r, j) => (correct += +((s[j] >= 0.5 ? 1 : 0) === r.label)));
  }
  t.ok(correct / recs.length >= 0.95, `accuracy on all ${recs.length}: ${correct / recs.length}`);
  await model.close();
});

t.test('same seed, same model', async (t) => {
  const a = await trainQuality({ input: [data], out: path.join(dir, 'a.onnx'), dim: 4096, epochs: 2 });
  const b = await trainQuality({ input: [data], out: path.join(dir, 'b'), dim: 4096, epochs: 2 });
  t.equal(a.model, path.join(dir, 'a.onnx'));
  t.ok(readFileSync(a.model).equals(readFileSync(b.model)), 'byte-identical ONNX files');
});

t.test('labels as strings and booleans, gzip input, custom fields', async (t) => {
  const recs = readJsonl(data).slice(0, 400);
  const lines = recs.map((r, i) => JSON.stringify({ body: r.text, q: i % 2 ? (r.label ? 'hq' : 'lq') : r.label === 1 }));
  const file = path.join(dir, 'mixed.jsonl.gz');
  writeFileSync(file, gzipSync(lines.join('\n') + '\n'));
  const res = await trainQuality({ input: [file], out: path.join(dir, 'm'), labelField: 'q', textField: 'body', dim: 4096, holdout: 0.25 });
  t.equal(res.examples, 400);
  t.ok(res.holdout!.accuracy > 0.85, `accuracy ${res.holdout!.accuracy}`);
});

t.test('bad input: clear errors with file, line and id', async (t) => {
  const file = path.join(dir, 'bad.jsonl');
  writeFileSync(file, '{"id":"a","text":"x","label":1}\n{"id":"b","text":"y","label":"maybe"}\n');
  await t.rejects(trainQuality({ input: [file], out: path.join(dir, 'x') }), /bad\.jsonl:2 \(id "b"\): label field "label" is "maybe"/);
  writeFileSync(file, '{"id":"a","text":"x","label":1}\n{"id":"b","text":"y","label":1}\n');
  await t.rejects(trainQuality({ input: [file], out: path.join(dir, 'x') }), /need both positive and negative labels/);
  writeFileSync(file, '{"id":"a","text":"x","label":1}\nnot json\n');
  await t.rejects(trainQuality({ input: [file], out: path.join(dir, 'x') }), /bad\.jsonl:2: not valid JSON/);
  await t.rejects(trainQuality({ input: [file], out: path.join(dir, 'x'), holdout: 1 }), /holdout/);
});
