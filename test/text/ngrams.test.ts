import t from 'tap';
import path from 'node:path';
import { ngramHashes, wordForm, words } from '../../lib/text/ngrams.ts';
import { readJsonl } from '../../lib/testing.ts';
import { SAMPLES } from '../helpers.ts';

const key = (h: { a: Uint32Array; b: Uint32Array }, i: number) => `${h.a[i]}:${h.b[i]}`;

t.test('word form: lowercase, punctuation stripped, digits kept', async (t) => {
  t.equal(wordForm('In the Beginning, God created—the heaven; and the earth (v. 1)!'), 'in the beginning god created the heaven and the earth v 1');
  t.same(words('Ünïcödé  WORDS, ﬁne.'), ['ünïcödé', 'words', 'fine']);
  t.same(words('add 3 and 4'), ['add', '3', 'and', '4']);
});

t.test('n-gram hashes: count, order and invariance under case and punctuation', async (t) => {
  const text = 'And God said, Let there be light: and there was light. And God saw the light, that it was good.';
  const h = ngramHashes(text, 13);
  t.equal(h.words, 20);
  t.equal(h.count, 8);
  const first = [...Array(h.count)].map((_, i) => key(h, i));
  t.equal(new Set(first).size, 8, 'distinct n-grams get distinct hashes');
  const h2 = ngramHashes(text.toUpperCase().replace(/[,.:]/g, ' ; '), 13);
  t.same([...Array(h2.count)].map((_, i) => key(h2, i)), first, 'same words, same hashes');
  // An n-gram is position independent: the 13 words starting at word 2 hash like the same words alone.
  const w = words(text);
  const alone = ngramHashes(w.slice(2, 15).join(' '), 13);
  t.equal(alone.count, 1);
  t.equal(key(alone, 0), first[2]);
  t.equal(ngramHashes('too short to have one', 13).count, 0);
  t.throws(() => ngramHashes('x', 0), /n-gram size/);
  // Digits are part of words unless folded.
  // (results are views over scratch buffers: take the key before the next call)
  const d1 = key(ngramHashes('add 3 and 4', 4), 0);
  const d2 = key(ngramHashes('add 5 and 6', 4), 0);
  t.not(d1, d2);
  const fold = { lowercase: true, stripPunctuation: true, foldDigits: true };
  const f1 = key(ngramHashes('add 3 and 4', 4, fold), 0);
  const f2 = key(ngramHashes('add 5 and 6', 4, fold), 0);
  t.equal(f1, f2);
});

t.test('non-ASCII text goes through the word form: the same as hashing its word form', async (t) => {
  for (const d of readJsonl(path.join(SAMPLES, 'fortunes.jsonl')).filter((r) => r.lang === 'ru').slice(0, 50)) {
    const a = ngramHashes(d.text, 5);
    const ka = [...Array(a.count)].map((_, i) => key(a, i));
    const b = ngramHashes(wordForm(d.text), 5);
    t.same([...Array(b.count)].map((_, i) => key(b, i)), ka, d.id);
  }
});

t.test('no 64-bit collisions among the distinct 13-grams of the samples', async (t) => {
  const byKey = new Map<string, string>();
  let collisions = 0;
  for (const file of ['kjv.jsonl', 'handbook.jsonl', 'gcide.jsonl']) {
    for (const d of readJsonl(path.join(SAMPLES, file))) {
      const w = words(d.text);
      const h = ngramHashes(d.text, 13);
      for (let i = 0; i < h.count; i++) {
        const gram = w.slice(i, i + 13).join(' ');
        const k = key(h, i);
        const prev = byKey.get(k);
        if (prev === undefined) byKey.set(k, gram);
        else if (prev !== gram) collisions++;
      }
    }
  }
  t.ok(byKey.size > 100_000, `${byKey.size} distinct 13-grams`);
  t.equal(collisions, 0);
});
