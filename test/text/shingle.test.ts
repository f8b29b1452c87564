import t from 'tap';
import { hashForm, normalizeText } from '../../lib/text/normalize.ts';
import { exactJaccard, recordShingles, shingleHashes, shingleScratch, shingleText } from '../../lib/text/shingle.ts';
import { internals } from '../../lib/operator.ts';
import { readJsonl } from '../../lib/testing.ts';

const samples = ['handbook', 'kjv', 'fortunes', 'gcide'].flatMap((f) => readJsonl(new URL(`../../samples/${f}.jsonl`, import.meta.url)));

function isSortedUnique(a: Uint32Array): boolean {
  for (let i = 1; i < a.length; i++) if (a[i] <= a[i - 1]) return false;
  return true;
}

t.test('word shingles: one per distinct n-gram, sorted and unique', async (t) => {
  const s = shingleHashes('a b c d e f g', { unit: 'word', n: 5 });
  t.equal(s.length, 3, 'seven words give three 5-grams');
  t.ok(isSortedUnique(s));
  const rep = shingleHashes('a b a b a b a b', { unit: 'word', n: 2 });
  t.equal(rep.length, 2, 'repeated n-grams count once ("a b" and "b a")');
  t.not(shingleHashes('a b c', { unit: 'word', n: 3 })[0], shingleHashes('c b a', { unit: 'word', n: 3 })[0], 'word order matters');
  t.not(shingleHashes('ab c', { unit: 'word', n: 1 }).join(), shingleHashes('a bc', { unit: 'word', n: 1 }).join(), 'word boundaries matter');
});

t.test('documents shorter than n get exactly one shingle of the whole text', async (t) => {
  const short = shingleHashes('just three words', { unit: 'word', n: 5 });
  t.equal(short.length, 1);
  t.not(short[0], shingleHashes('just three', { unit: 'word', n: 5 })[0]);
  t.equal(shingleHashes('', { unit: 'word', n: 5 }).length, 1, 'an empty text has one shingle too');
  t.same(shingleHashes('', { unit: 'word', n: 5 }), shingleText(' ,;. ', { unit: 'word', n: 5 }), 'text with no words hashes like the empty text');
  t.equal(shingleHashes('abc', { unit: 'char', n: 5 }).length, 1);
  t.equal(shingleHashes('abcde', { unit: 'char', n: 5 }).length, 1);
  t.equal(shingleHashes('abcdef', { unit: 'char', n: 5 }).length, 2);
});

t.test('char shingles run over code points of the hashing form, spaces included', async (t) => {
  t.same(shingleHashes('ab  cd', { unit: 'char', n: 3 }), shingleHashes('ab cd', { unit: 'char', n: 3 }));
  t.equal(shingleHashes('ab cd', { unit: 'char', n: 3 }).length, 3);
  // An astral code point is one token, not two surrogate halves; an astral symbol separates words.
  t.equal(shingleHashes('a\u{20000}b', { unit: 'char', n: 3 }).length, 1);
  t.equal(shingleHashes('a\u{20000}bc', { unit: 'char', n: 3 }).length, 2);
  t.same(shingleText('one😀two three', { unit: 'word', n: 1 }), shingleText('one two three', { unit: 'word', n: 1 }));
  t.same(shingleText('x\u{20000}y z', { unit: 'word', n: 1 }), shingleHashes(hashForm('x\u{20000}y z'), { unit: 'word', n: 1 }));
});

t.test('raw ASCII text shingles exactly like its hashing form, for every sample record', async (t) => {
  let checked = 0;
  for (const rec of samples) {
    for (const opts of [{ unit: 'word', n: 5 }, { unit: 'char', n: 7 }] as const) {
      const direct = shingleText(rec.text, opts);
      const viaForm = shingleHashes(hashForm(rec.text), opts);
      if (direct.length !== viaForm.length || direct.some((v, i) => v !== viaForm[i])) {
        t.fail(`record ${rec.id} (${opts.unit}) differs`);
        return;
      }
      checked++;
    }
  }
  t.equal(checked, samples.length * 2);
});

t.test('raw text shingles exactly like the hashing form of normalize with its defaults: controls dropped, Turkish i folded', async (t) => {
  const texts = [
    'It matters not whether you win or lose; what matters is whether I\bI win or lose.',
    'ascii \x01with\x7f controls\x1f here and\ttabs\r\nand lines',
    'İSTANBUL BÜYÜK BİR ŞEHİR, KAPISI AÇIK',
    'istanbul büyük bir şehir, kapısı açık',
    'Iğdır ILIK IŞIK \x02 ünlü',
  ];
  for (const text of texts) {
    for (const opts of [{ unit: 'word', n: 2 }, { unit: 'char', n: 3 }] as const) {
      t.same(shingleText(text, opts), shingleHashes(hashForm(normalizeText(text)), opts), `${opts.unit}: ${JSON.stringify(text)}`);
    }
  }
  t.same(shingleText('whether I\bI win', { unit: 'word', n: 1 }), shingleText('whether II win', { unit: 'word', n: 1 }), 'a control joins the words around it');
  t.same(shingleText(texts[2], { unit: 'word', n: 3 }), shingleText(texts[3], { unit: 'word', n: 3 }), 'Turkish upper- and lower-case copies');
});

t.test('non-ASCII text: NFKC, case and punctuation folding apply before shingling', async (t) => {
  // Controls and invisible marks join words in the general path; emoji and symbols separate.
  for (const text of ['Zero\u200bwidth joins, soft\u00adhyphen too: é', 'tab\tand\x01control ü', 'Ⅻ ½ ﬁne ①②', 'مرحبا، بالعالم ١٢٣', '日本語のテキスト。句読点、あり']) {
    for (const unit of ['word', 'char'] as const) t.same(shingleText(text, { unit, n: 2 }), shingleHashes(hashForm(text), { unit, n: 2 }), `${unit}: ${text}`);
  }
  const a = shingleText('Ｈｅｌｌｏ Wörld — «Straße» 42 times, again', { unit: 'word', n: 2 });
  const b = shingleText('hello wörld straße 00 times again', { unit: 'word', n: 2 });
  t.same(a, b);
  const ru = samples.find((r) => r.id.startsWith('fortunes/ru/'));
  t.ok(ru, 'a Russian fortune exists in the samples');
  const upper = shingleText(ru!.text.toUpperCase(), { unit: 'word', n: 3 });
  t.same(upper, shingleText(ru!.text, { unit: 'word', n: 3 }), 'Cyrillic case is folded');
  t.ok(upper.length > 1);
});

t.test('a hashing form is split at spaces only: the folding normalize left out is not applied again', async (t) => {
  const opts = { unit: 'word', n: 1 } as const;
  const base = 'alpha beta gamma delta epsilon zeta';
  const forms = [
    ['case', hashForm('Alpha Beta Gamma Delta Epsilon Zeta', { lowercase: false })],
    ['punctuation', hashForm('alpha, beta; gamma. delta! epsilon zeta', { foldPunctuation: false })],
    ['digits', hashForm('alpha beta gamma delta epsilon zeta 1999', { foldDigits: false })],
  ] as const;
  for (const [what, form] of forms) {
    t.notSame(shingleHashes(form, opts), shingleHashes(hashForm(base), opts), `${what} kept by the form stays apart: ${form}`);
  }
  t.equal(shingleHashes('beta, alpha', opts).length, 2, '"beta," is one word of a form that keeps punctuation');
  // With the default folding both ways agree, astral characters included (char shingles count code points).
  for (const text of ['Emoji 😀 and 𝐛𝐨𝐥𝐝 𝟏𝟐 text', 'Gothic 𐌰𐌱𐌲 letters']) {
    for (const unit of ['word', 'char'] as const) t.same(shingleText(text, { unit, n: 2 }), shingleHashes(hashForm(text), { unit, n: 2 }), `${unit}: ${text}`);
  }
  t.equal(shingleHashes('😀😀😀', { unit: 'char', n: 3 }).length, 1, 'a form that keeps an emoji: three code points, one 3-gram');
});

t.test('invisible characters are dropped and every whitespace separates, as in the hashing form', async (t) => {
  const words = 'the same sentence written out in plain words';
  for (const mark of ['\u200e', '\u200f', '\u061c', '\u202a', '\u202e', '\u2066', '\u180e', '\u200c', '\u200d', '\u{e0041}', '\ufe0f', '\u{e0100}']) {
    const marked = words.split(' ').map((w) => mark + w).join(' ');
    t.equal(hashForm(marked + ' é').slice(0, -2), words, `U+${mark.codePointAt(0)!.toString(16)} dropped from the hashing form`);
    t.same(shingleText(marked + ' é', { unit: 'word', n: 3 }), shingleText(words + ' é', { unit: 'word', n: 3 }), `U+${mark.codePointAt(0)!.toString(16)} does not hide a copy`);
  }
  for (const space of ['\x0b', '\x0c', '\u0085']) {
    t.equal(hashForm(`alpha${space}beta é`), 'alpha beta é', `U+${space.charCodeAt(0).toString(16)} separates words`);
    t.same(shingleText(`alpha${space}beta é`, { unit: 'word', n: 1 }), shingleHashes('alpha beta é', { unit: 'word', n: 1 }));
  }
});

t.test('recordShingles uses the hashing form written by normalize when present', async (t) => {
  const rec = { id: 'x', text: 'Original Text here, with words enough to shingle twice' };
  const plain = recordShingles(rec, { unit: 'word', n: 3 });
  t.same(plain, shingleText(rec.text, { unit: 'word', n: 3 }));
  internals(rec).hashText = 'something else entirely said here';
  t.same(recordShingles(rec, { unit: 'word', n: 3 }), shingleHashes('something else entirely said here', { unit: 'word', n: 3 }));
});

t.test('seed changes every hash; exactJaccard on real near-duplicates', async (t) => {
  const text = samples[0].text;
  const s0 = shingleText(text, { unit: 'word', n: 5 });
  const s1 = shingleText(text, { unit: 'word', n: 5, seed: 1 });
  t.equal(s0.length, s1.length);
  t.equal(exactJaccard(s0, s1), 0, 'different seeds share no hashes');
  t.equal(exactJaccard(s0, s0), 1);
  const words = text.split(' ');
  const edited = words.slice(0, Math.floor(words.length / 2)).join(' ');
  const j = exactJaccard(s0, shingleText(edited, { unit: 'word', n: 5 }));
  t.ok(j > 0.3 && j < 0.7, `half a document shares about half its shingles (${j})`);
});

t.test('bad options are errors', async (t) => {
  t.throws(() => shingleHashes('a b', { unit: 'line' as 'word', n: 2 }), /unit/);
  t.throws(() => shingleHashes('a b', { unit: 'word', n: 0 }), /n must be/);
  t.throws(() => shingleHashes('a b', { unit: 'word', n: 2, seed: -1 }), /seed/);
});

t.test('shingleScratch gives the same sets as shingleText / shingleHashes, as a view reused by the next call', async (t) => {
  for (const opts of [{ unit: 'word', n: 5 }, { unit: 'char', n: 4, seed: 3 }] as const) {
    for (const rec of samples.slice(0, 120)) {
      t.same(shingleScratch(rec.text, opts, true), shingleText(rec.text, opts));
      const form = hashForm(rec.text);
      t.same(shingleScratch(form, opts, false), shingleHashes(form, opts));
    }
  }
  const a = shingleScratch('one two three four five six', { unit: 'word', n: 5 }, true);
  const copy = a.slice();
  const b = shingleScratch('seven eight nine ten eleven twelve', { unit: 'word', n: 5 }, true);
  t.equal(a.buffer, b.buffer, 'both are views of one scratch buffer');
  t.notSame(a, copy, 'the first view now shows the second set');
  t.same(shingleScratch('short', { unit: 'word', n: 5 }, true), shingleText('short', { unit: 'word', n: 5 }), 'a text shorter than n: one shingle');
});
