import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { readJsonl } from '../../lib/testing.ts';
import { floatRows, linearModelBytes, meanPoolModelBytes, OnnxModel, ort, writeLinearModel } from '../../lib/quality/onnx-model.ts';
import { mulberry32 } from '../../lib/quality/train.ts';
import { HashedNgramVectorizer } from '../../lib/quality/vectorizer.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-model-test-'));
const docs = readJsonl(new URL('../../samples/handbook.jsonl', import.meta.url)).slice(0, 30);

function randomFloats(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

t.test('binary logistic regression: written, loaded by onnxruntime, agrees with JS', async (t) => {
  const dim = 1 << 12;
  const weights = randomFloats(dim, 1);
  const file = path.join(dir, 'lr.onnx');
  writeLinearModel(file, { dim, weights, bias: Float32Array.of(-0.25), classes: 1, metadata: { task: 'test' } });
  const model = await OnnxModel.load(file);
  t.same(model.inputs(), [{ name: 'input', type: 'float32', shape: ['batch', dim] }]);
  t.same(model.outputNames, ['score']);
  const vec = new HashedNgramVectorizer({ dim });
  const texts = docs.map((d) => d.text);
  const { data, cols } = await model.runDense('input', vec.transformDense(texts), texts.length, dim, 'score');
  t.equal(cols, 1);
  let worst = 0;
  texts.forEach((text, i) => {
    const x = vec.transform(text);
    let z = -0.25;
    for (let k = 0; k < x.indices.length; k++) z += weights[x.indices[k]] * x.values[k];
    worst = Math.max(worst, Math.abs(1 / (1 + Math.exp(-z)) - data[i]));
  });
  t.ok(worst < 1e-5, `max |onnx - js| = ${worst}`);
  const spread = Math.max(...data) - Math.min(...data);
  t.ok(spread > 0.01, 'scores differ between documents');
  await model.close();
});

t.test('softmax model: rows are distributions equal to the JS softmax', async (t) => {
  const dim = 256;
  const classes = 3;
  const weights = randomFloats(dim * classes, 2);
  const bias = Float32Array.of(0.1, -0.2, 0.3);
  const file = path.join(dir, 'mc.onnx');
  writeFileSync(file, linearModelBytes({ dim, weights, bias, classes }));
  const model = await OnnxModel.load(file, { threads: 2 });
  t.same(model.outputNames, ['probabilities']);
  const vec = new HashedNgramVectorizer({ dim });
  const texts = docs.slice(0, 5).map((d) => d.text);
  const { data, cols } = await model.runDense('input', vec.transformDense(texts), texts.length, dim, 'probabilities');
  t.equal(cols, 3);
  texts.forEach((text, i) => {
    const x = vec.transform(text);
    const z = [...bias];
    for (let k = 0; k < x.indices.length; k++) for (let c = 0; c < classes; c++) z[c] += weights[x.indices[k] * classes + c] * x.values[k];
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    for (let c = 0; c < classes; c++) t.ok(Math.abs(e[c] / s - data[i * 3 + c]) < 1e-5, `doc ${i} class ${c}`);
  });
  await model.close();
});

t.test('mean-pool classifier graph: embedding Gather, masked mean, Gemm', async (t) => {
  const vocab = 7;
  const hidden = 3;
  const embeddings = randomFloats(vocab * hidden, 3);
  const weights = randomFloats(hidden * 2, 4);
  const bias = Float32Array.of(0.5, -0.5);
  const file = path.join(dir, 'mp.onnx');
  writeFileSync(file, meanPoolModelBytes({ embeddings, vocab, hidden, weights, bias, classes: 2 }));
  const model = await OnnxModel.load(file);
  t.same(model.inputNames, ['input_ids', 'attention_mask']);
  const ids = [[1, 4, 6, 0], [2, 2, 0, 0]];
  const mask = [[1, 1, 1, 0], [1, 1, 0, 0]];
  const res = await model.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat(), BigInt), [2, 4]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(mask.flat(), BigInt), [2, 4]),
  });
  const { data } = floatRows(res.logits, 2, 'logits');
  ids.forEach((row, b) => {
    const used = row.filter((_, j) => mask[b][j]);
    const pooled = [0, 1, 2].map((h) => used.reduce((s, id) => s + embeddings[id * hidden + h], 0) / used.length);
    for (let c = 0; c < 2; c++) {
      const want = bias[c] + pooled.reduce((s, p, h) => s + p * weights[h * 2 + c], 0);
      t.ok(Math.abs(want - data[b * 2 + c]) < 1e-5, `row ${b} class ${c}: ${want} vs ${data[b * 2 + c]}`);
    }
  });
});

t.test('errors name the file', async (t) => {
  await t.rejects(OnnxModel.load(path.join(dir, 'missing.onnx')), /cannot read ONNX model .*missing\.onnx/);
  const bad = path.join(dir, 'bad.onnx');
  writeFileSync(bad, 'not a model');
  await t.rejects(OnnxModel.load(bad), /cannot load ONNX model .*bad\.onnx/);
  t.throws(() => linearModelBytes({ dim: 4, weights: new Float32Array(3), bias: new Float32Array(1), classes: 1 }), /weights: expected 4 values/);
});
