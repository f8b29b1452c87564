import t from 'tap';
import { readJsonl } from '../../lib/testing.ts';
import { densify, forEachTokenHash, HashedNgramVectorizer, vectorizerConfig } from '../../lib/quality/vectorizer.ts';

const kjv = readJsonl(new URL('../../samples/kjv.jsonl', import.meta.url));
const handbook = readJsonl(new URL('../../samples/handbook.jsonl', import.meta.url));

function tokens(text: string): number[] {
  const out: number[] = [];
  forEachTokenHash(text, true, 0, (h) => out.push(h));
  return out;
}

t.test('tokens: words, single punctuation marks, one token per run of line breaks', async (t) => {
  t.equal(tokens('Hello, world!').length, 4);
  t.equal(tokens('a\n\n\nb').length, 3);
  t.same(tokens('HELLO World'), tokens('hello world'), 'lowercased');
  t.same(tokens('Grüße   aus\tKöln'), tokens('grüße aus köln'), 'non-ASCII words lowercased, whitespace ignored');
  t.equal(tokens('Καλημέρα κόσμε').length, 2, 'Greek words are words');
  t.equal(tokens('日本語のテキスト').length, 1, 'a run of CJK letters is one token');
  t.not(tokens('end.')[1], tokens('end!')[1], 'punctuation marks hash apart');
  let n = 0;
  forEachTokenHash('one two three four', true, 7, () => n++);
  t.equal(n, 2, 'maxChars stops reading');
});

t.test('vectors are deterministic, unit length, and counts follow the text', async (t) => {
  const a = new HashedNgramVectorizer({ dim: 1 << 12 });
  const b = new HashedNgramVectorizer({ dim: 1 << 12 });
  for (const rec of [...kjv.slice(0, 20), ...handbook.slice(0, 20)]) {
    const x = a.transform(rec.text);
    const y = b.transform(rec.text);
    t.same([...x.indices], [...y.indices], `${rec.id}: same buckets`);
    t.same([...x.values], [...y.values], `${rec.id}: same values`);
    const norm = Math.sqrt(x.values.reduce((s, v) => s + v * v, 0));
    if (Math.abs(norm - 1) > 1e-5) t.fail(`${rec.id}: norm ${norm}`);
    t.equal(new Set(x.indices).size, x.indices.length, 'each bucket once');
  }
  // The same instance gives the same answer twice (scratch state is reset).
  const x1 = a.transform(kjv[0].text);
  a.transform(kjv[1].text);
  t.same([...a.transform(kjv[0].text).values], [...x1.values]);
  // Fixed hashes: these values are the contract between a saved model and this code.
  const v = new HashedNgramVectorizer({ dim: 1024 }).transform('Hello, world! Hello world.\nNew line');
  t.same([...v.indices], [797, 103, 597, 322, 1007, 412, 317, 16, 699, 193, 828, 346, 270, 472, 17, 838, 132]);
  t.equal(v.values[0], v.values[3], '"hello" and "world" both count twice');
  t.ok(Math.abs(v.values[0] / v.values[1] - 2) < 1e-6);
});

t.test('n-gram orders, seeds and weightings', async (t) => {
  const text = 'the cat sat on the mat';
  const uni = new HashedNgramVectorizer({ dim: 1 << 16, ngrams: 1 }).transform(text);
  const bi = new HashedNgramVectorizer({ dim: 1 << 16, ngrams: 2 }).transform(text);
  const tri = new HashedNgramVectorizer({ dim: 1 << 16, ngrams: 3 }).transform(text);
  t.equal(uni.indices.length, 5, '5 distinct words');
  t.equal(bi.indices.length, 10, '+5 bigrams');
  t.equal(tri.indices.length, 14, '+4 trigrams');
  const other = new HashedNgramVectorizer({ dim: 1 << 16, seed: 7 }).transform(text);
  t.not([...other.indices].join(), [...bi.indices].join(), 'another seed, other buckets');
  t.same(
    new HashedNgramVectorizer({ dim: 1 << 16, ngrams: 2 }).transform('the mat sat on the cat').indices.length,
    10,
  );
  const tf = new HashedNgramVectorizer({ dim: 1 << 16, weighting: 'tf' }).transform(text);
  t.ok(Math.abs(tf.values.reduce((s, v) => s + v, 0) - 1) < 1e-6, 'tf sums to 1');
  const logl2 = new HashedNgramVectorizer({ dim: 1 << 16, ngrams: 1, weighting: 'log-l2' }).transform(text);
  const the = logl2.values[0];
  t.ok(Math.abs(the / logl2.values[1] - (1 + Math.log(2))) < 1e-5, 'log-l2: 1 + ln(2) for a word seen twice');
  const odd = new HashedNgramVectorizer({ dim: 1000 }).transform(kjv[3].text);
  t.ok(Math.max(...odd.indices) < 1000, 'non-power-of-two dims work');
});

t.test('dense rows match sparse vectors', async (t) => {
  const v = new HashedNgramVectorizer({ dim: 4096 });
  const texts = kjv.slice(0, 4).map((r) => r.text);
  const dense = v.transformDense(texts);
  t.equal(dense.length, 4 * 4096);
  const x = v.transform(texts[2]);
  for (let i = 0; i < x.indices.length; i++) if (dense[2 * 4096 + x.indices[i]] !== x.values[i]) t.fail('mismatch');
  const nonZero = dense.subarray(2 * 4096, 3 * 4096).filter((z) => z !== 0).length;
  t.equal(nonZero, x.indices.length);
  const reuse = densify([x], 4096, new Float32Array(4096).fill(9));
  t.equal(reuse.filter((z) => z !== 0).length, x.indices.length, 'densify zeroes a reused buffer');
});

t.test('config errors name the field', async (t) => {
  t.throws(() => vectorizerConfig({ dim: 0 }), /vectorizer\.dim/);
  t.throws(() => vectorizerConfig({ ngrams: 9 }), /vectorizer\.ngrams/);
  t.throws(() => vectorizerConfig({ weighting: 'x' as never }), /vectorizer\.weighting/);
  t.throws(() => vectorizerConfig({ type: 'bow' as never }, 'm.json: vectorizer'), /m\.json: vectorizer\.type/);
});
